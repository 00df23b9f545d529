"""The follow-ups' reads of ``SqlStore`` (a mixin over its ``engine``): which checkpoints are due, which
requests can be measured, which owe an owner's reminder, which surveys are unanswered. Reads only:
every write goes through the store's transactions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, and_, exists, func, select

from connectors.db.engine import read_transaction
from connectors.db.tables import checkpoints, requests
from states.checkpoints import CLOSED_STATUSES, CheckpointStatus
from states.companions import REMINDER_PENDING
from states.lifecycle import State


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
        last = func.coalesce(checkpoints.c.last_reminder_at, checkpoints.c.sent_at)
        conds = [checkpoints.c.status == CheckpointStatus.SENT.value, last <= sent_before]
        if max_reminders is not None:
            conds.append(checkpoints.c.reminders_sent < max_reminders)
        if min_reminders is not None:
            conds.append(checkpoints.c.reminders_sent >= min_reminders)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(checkpoints.c.request_id, checkpoints.c.key)
                                .where(*conds).order_by(last, checkpoints.c.key).limit(limit)).all()
        return [(r.request_id, r.key) for r in rows]
