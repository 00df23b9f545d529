"""The fake store's follow-up queries (a mixin of ``InMemoryStore``): due and unanswered checkpoints, the
requests to measure or owing reminders, and ``claim_followups`` as ``SqlStore.claim_followups`` claims them."""

from __future__ import annotations

import builtins
import threading
from datetime import datetime
from typing import TYPE_CHECKING

from connectors.ports import FollowupApply, FollowupClaim
from states.checkpoints import CLOSED_STATUSES, CheckpointStatus
from states.companions import REMINDER_PENDING
from states.lifecycle import State

if TYPE_CHECKING:
    from connectors.testing.store import _Row, _Timer
    from states.request import TrainingRequest


class InMemoryFollowups:
    _lock: threading.RLock
    _rows: dict[int, _Row]
    _timers: dict[str, _Timer]

    def get(self, request_id: int) -> TrainingRequest:
        raise NotImplementedError

    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        raise NotImplementedError

    def due_checkpoints(self, now: datetime, limit: int = 1000) -> builtins.list[tuple[int, str]]:
        """(request id, checkpoint key) of scheduled checkpoints due by ``now``, oldest first."""
        with self._lock:
            due = [t for t in self._timers.values()
                   if t.status == CheckpointStatus.SCHEDULED.value and t.due_at <= now]
        due.sort(key=lambda t: (t.due_at, t.key))
        return [(t.request_id, t.key) for t in due[:limit]]

    def count_due_checkpoints(self, now: datetime) -> int:
        """How many scheduled checkpoints are due by ``now``."""
        with self._lock:
            return sum(1 for t in self._timers.values()
                       if t.status == CheckpointStatus.SCHEDULED.value and t.due_at <= now)

    def measurable_requests(self, after_id: int = 0, limit: int = 500) -> builtins.list[int]:
        """Delivered requests above ``after_id`` with checkpoints, none of them still open (ascending)."""
        closed = {s.value for s in CLOSED_STATUSES}
        with self._lock:
            timers: dict[int, builtins.list[str]] = {}
            for t in self._timers.values():
                timers.setdefault(t.request_id, []).append(t.status)
            ids = [rid for rid, row in self._rows.items()
                   if rid > after_id and row.state == State.DELIVERED.value and timers.get(rid)
                   and all(status in closed for status in timers[rid])]
        return sorted(ids)[:limit]

    def requests_owing_reminders(self, after_id: int = 0, limit: int = 500) -> builtins.list[int]:
        """Requests above ``after_id`` whose document holds a pending reminder (ascending)."""
        with self._lock:
            ids = [rid for rid, row in self._rows.items() if rid > after_id and REMINDER_PENDING in row.document]
        return sorted(ids)[:limit]

    def unanswered_checkpoints(self, sent_before: datetime, limit: int = 1000,
                               max_reminders: int | None = None,
                               min_reminders: int | None = None) -> builtins.list[tuple[int, str]]:
        """Sent checkpoints whose survey (or last reminder) went out by ``sent_before`` and, given
        ``max_reminders``, that may still be reminded; oldest first."""
        def last(t: _Timer) -> datetime | None:
            return t.last_reminder_at or t.sent_at

        with self._lock:
            sent = [t for t in self._timers.values() if t.status == CheckpointStatus.SENT.value
                    and (at := last(t)) is not None and at <= sent_before
                    and (max_reminders is None or t.reminders_sent < max_reminders)
                    and (min_reminders is None or t.reminders_sent >= min_reminders)]
        sent.sort(key=lambda t: (last(t), t.key))
        return [(t.request_id, t.key) for t in sent[:limit]]

    def claim_followups(self, claim: FollowupClaim, actor: str, apply: FollowupApply,
                        limit: int = 1000, per_commit: int = 20) -> dict[str, int]:
        """As ``SqlStore.claim_followups``: the store's lock is the claim (one request at a time here)."""
        counts: dict[str, int] = {"checked": 0}
        last = 0
        while counts["checked"] < limit:
            with self._lock:
                found: builtins.list[tuple[int, builtins.list[str]]]
                if claim.kind == "owing_reminders":
                    found = [(rid, []) for rid in self.requests_owing_reminders(last, 1)]
                else:
                    found = self._claimable(claim, last)
                if not found:
                    return counts
                rid, keys = found[0]
                last = rid
                counts["checked"] += len(keys) or 1
                request = self.get(rid)
                done = apply(request, keys)
                if request.pending_events():
                    self.save(request, actor)
                    for name, value in done.items():
                        counts[name] = counts.get(name, 0) + value
        return counts

    def _claimable(self, claim: FollowupClaim, after_id: int) -> builtins.list[tuple[int, builtins.list[str]]]:
        """The next request above ``after_id`` with timers the claim selects, and their keys (oldest first)."""
        assert claim.at is not None, f"a {claim.kind!r} claim needs its time (at)"
        if claim.kind == "due":
            rows = self.due_checkpoints(claim.at, limit=len(self._timers))
        elif claim.kind == "unanswered":
            rows = self.unanswered_checkpoints(claim.at, len(self._timers), claim.max_reminders, claim.min_reminders)
        else:
            raise ValueError(f"unknown follow-up claim {claim.kind!r}")
        ids = sorted({rid for rid, _ in rows if rid > after_id})
        return [(ids[0], [key for rid, key in rows if rid == ids[0]])] if ids else []
