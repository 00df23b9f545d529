"""The follow-ups' queries of ``SqlStore`` (a mixin over its ``engine``): which checkpoints are due, which
requests can be measured, which owe an owner's reminder, which surveys are unanswered; and the claim the
follow-ups fire under (``claim_followups``): a batch of those requests locked ``FOR UPDATE SKIP LOCKED``
in one write transaction, so concurrent runs take disjoint batches and never conflict. The writes
themselves go through the store's ``_write_claimed`` (the same effects as every other change)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, exists, func, select

from connectors.db.engine import read_transaction, write_transaction
from connectors.db.tables import checkpoints, requests
from connectors.ports import FollowupApply, FollowupClaim
from states.checkpoints import CLOSED_STATUSES, CheckpointStatus
from states.companions import REMINDER_PENDING
from states.lifecycle import State
from states.request import TrainingRequest


def _last_sent() -> ColumnElement[datetime]:
    """When a sent checkpoint's survey, or its last reminder, went out."""
    return func.coalesce(checkpoints.c.last_reminder_at, checkpoints.c.sent_at)


def _timer_conditions(claim: FollowupClaim) -> list[ColumnElement[bool]]:
    """The checkpoint rows a claim selects (``due`` / ``unanswered``), as ``due_checkpoints`` and
    ``unanswered_checkpoints`` select them."""
    if claim.at is None:
        raise ValueError(f"a {claim.kind!r} claim needs its time (at)")
    if claim.kind == "due":
        return [checkpoints.c.status == CheckpointStatus.SCHEDULED.value, checkpoints.c.due_at <= claim.at]
    if claim.kind != "unanswered":
        raise ValueError(f"unknown follow-up claim {claim.kind!r}")
    conds = [checkpoints.c.status == CheckpointStatus.SENT.value, _last_sent() <= claim.at]
    if claim.max_reminders is not None:
        conds.append(checkpoints.c.reminders_sent < claim.max_reminders)
    if claim.min_reminders is not None:
        conds.append(checkpoints.c.reminders_sent >= claim.min_reminders)
    return conds


def _apply_with(apply: FollowupApply, keys: list[str], request: TrainingRequest) -> dict[str, int]:
    return apply(request, keys)


class FollowupQueries:
    engine: Engine

    def due_checkpoints(self, now: datetime, limit: int = 1000) -> list[tuple[int, str]]:
        """(request id, checkpoint key) of scheduled checkpoints due by ``now``, oldest first."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(checkpoints.c.request_id, checkpoints.c.key)
                                .where(checkpoints.c.status == CheckpointStatus.SCHEDULED.value,
                                       checkpoints.c.due_at <= now)
                                .order_by(checkpoints.c.due_at, checkpoints.c.key).limit(limit)).all()
        return [(r.request_id, r.key) for r in rows]

    def count_due_checkpoints(self, now: datetime) -> int:
        """How many scheduled checkpoints are due by ``now`` (a progress display's total)."""
        with read_transaction(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(checkpoints).where(
                checkpoints.c.status == CheckpointStatus.SCHEDULED.value, checkpoints.c.due_at <= now)).scalar_one())

    def measurable_requests(self, after_id: int = 0, limit: int = 500) -> list[int]:
        """Ids above ``after_id`` of delivered requests with checkpoints, none of them still open."""
        open_checkpoint = exists().where(and_(checkpoints.c.request_id == requests.c.id,
                                              checkpoints.c.status.notin_([s.value for s in CLOSED_STATUSES])))
        any_checkpoint = exists().where(checkpoints.c.request_id == requests.c.id)
        with read_transaction(self.engine) as conn:
            return list(conn.execute(select(requests.c.id).where(
                requests.c.state == State.DELIVERED.value, requests.c.id > after_id, any_checkpoint, ~open_checkpoint)
                .order_by(requests.c.id).limit(limit)).scalars())

    def requests_owing_reminders(self, after_id: int = 0, limit: int = 500) -> list[int]:
        """Ids above ``after_id`` of requests whose document holds a pending reminder (ascending)."""
        pattern = f"%{REMINDER_PENDING}%"
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(requests.c.id).where(
                requests.c.id > after_id, requests.c.document.like(pattern)).order_by(requests.c.id).limit(limit)).all()
        return [int(r.id) for r in rows]

    def unanswered_checkpoints(self, sent_before: datetime, limit: int = 1000,
                               max_reminders: int | None = None,
                               min_reminders: int | None = None) -> list[tuple[int, str]]:
        """Sent checkpoints without an answer whose survey (or last reminder) went out by ``sent_before``
        and, given ``max_reminders``, that may still be reminded (else those that may not would fill
        every batch of ``limit`` and starve the rest)."""
        last = _last_sent()
        conds = [checkpoints.c.status == CheckpointStatus.SENT.value, last <= sent_before]
        if max_reminders is not None:
            conds.append(checkpoints.c.reminders_sent < max_reminders)
        if min_reminders is not None:
            conds.append(checkpoints.c.reminders_sent >= min_reminders)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(checkpoints.c.request_id, checkpoints.c.key)
                                .where(*conds).order_by(last, checkpoints.c.key).limit(limit)).all()
        return [(r.request_id, r.key) for r in rows]

    # --- the claim the follow-ups fire under ---------------------------------------------------------

    def claim_followups(self, claim: FollowupClaim, actor: str, apply: FollowupApply, limit: int = 1000,
                        per_commit: int = 20) -> dict[str, int]:
        """See ``connectors.ports.RequestStore.claim_followups``. Each round locks up to ``per_commit``
        request rows above the last one looked at (``FOR UPDATE SKIP LOCKED``: rows another run or a
        person holds are skipped, never waited for), reads their matching timers under the lock, and
        writes every changed request in the same transaction; a crash rolls the whole round back."""
        counts: dict[str, int] = {"checked": 0}
        owing = claim.kind == "owing_reminders"
        conds = [] if owing else _timer_conditions(claim)
        if owing:
            wanted: ColumnElement[bool] = requests.c.document.like(f"%{REMINDER_PENDING}%")
        else:
            wanted = requests.c.id.in_(select(checkpoints.c.request_id).where(*conds))
        last = 0
        while counts["checked"] < limit:
            room = limit - counts["checked"]
            with write_transaction(self.engine) as conn:
                rows = conn.execute(
                    select(requests.c.id, requests.c.version, requests.c.document, requests.c.head_seq,
                           requests.c.head_hash)
                    .where(requests.c.id > last, wanted).order_by(requests.c.id).limit(min(per_commit, room))
                    .with_for_update(skip_locked=True, of=requests)).all()
                if not rows:
                    break
                keys: dict[int, list[str]] = {}
                if not owing:
                    for rid, key in conn.execute(
                            select(checkpoints.c.request_id, checkpoints.c.key)
                            .where(*conds, checkpoints.c.request_id.in_([r.id for r in rows]))
                            .order_by(checkpoints.c.request_id, checkpoints.c.due_at, checkpoints.c.key)):
                        keys.setdefault(rid, []).append(key)
                for row in rows:
                    found = keys.get(row.id, [])
                    if not owing and not found:
                        continue  # its timers moved on between the two statements (another run committed)
                    counts["checked"] += 1 if owing else len(found)
                    done = self._write_claimed(conn, row, actor, partial(_apply_with, apply, found))
                    for name, value in done.items():
                        counts[name] = counts.get(name, 0) + value
                last = rows[-1].id
            if len(rows) < min(per_commit, room):
                break
        return counts

    def _write_claimed(self, conn: Connection, row: Any, actor: str,
                       apply: Callable[[TrainingRequest], dict[str, int]]) -> dict[str, int]:
        """Apply to the claimed request (its locked row) and write its changes in ``conn`` (SqlStore)."""
        raise NotImplementedError
