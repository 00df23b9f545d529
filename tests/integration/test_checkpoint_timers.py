"""The checkpoint timers are derived from the request's checkpoints on every save.

Whatever domain method changes a checkpoint (deliver, record_result, the pipeline's send, remind
and flag, cancel), what ``due_checkpoints`` and ``unanswered_checkpoints`` return is what the
stored documents say — on the in-memory fake, SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows.clock import FixedClock
from flows.service import Service
from states.checkpoints import CheckpointStatus
from tests.builders import ACTOR, drive_to, result_data

END = datetime(2026, 4, 20, 9, tzinfo=UTC)  # delivery_data()'s end: m2:P1D 04-21, m1:P30D 05-20, m1:P90D 07-19
FAR = END + timedelta(days=365)
LATENESS = timedelta(days=14)


def _from_documents(service: Service, ids: list[int]) -> tuple[list[tuple[int, str]], dict[int | None,
                                                                                   list[tuple[int, str]]]]:
    """Due (by FAR) and unanswered (sent by FAR, per max_reminders) checkpoints as the documents say."""
    checkpoints = [(rid, c) for rid in ids for c in service.show(rid).checkpoints]
    due = sorted(((rid, c) for rid, c in checkpoints if c.is_due(FAR)), key=lambda x: (x[1].due_at, x[1].key))
    unanswered: dict[int | None, list[tuple[int, str]]] = {}
    for limit in (None, 1, 2):
        sent = [(rid, c) for rid, c in checkpoints if c.status == CheckpointStatus.SENT
                and (limit is None or c.reminders_sent < limit)]
        sent.sort(key=lambda x: (x[1].last_reminder_at or x[1].sent_at, x[1].key))
        unanswered[limit] = [(rid, c.key) for rid, c in sent]
    return [(rid, c.key) for rid, c in due], unanswered


def _agree(service: Service, ids: list[int]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Assert the store's timers match the documents; return (due, unanswered) for spot checks."""
    store = service.store
    due, unanswered = _from_documents(service, ids)
    assert store.due_checkpoints(FAR) == due
    for limit, expected in unanswered.items():
        assert store.unanswered_checkpoints(FAR, max_reminders=limit) == expected
    return due, unanswered[None]


def test_every_domain_method_that_changes_a_checkpoint_moves_its_timer(any_service: Service,
                                                                       clock: FixedClock) -> None:
    a, b, c = (drive_to(any_service, "delivered").id for _ in range(3))
    ids = [a, b, c]
    due, unanswered = _agree(any_service, ids)  # deliver scheduled three per request
    assert len(due) == 9 and unanswered == []

    any_service.record(a, "m2:P1D", result_data(4.0, early_reason="corrected from the CRM export"),
                       ACTOR)  # record_result on a scheduled checkpoint (before it is due: with a reason)
    any_service.record(a, "m1:P30D", result_data(None, "nobody answered"), ACTOR)  # ... closed as missed
    due, _ = _agree(any_service, ids)
    assert (a, f"{a}:m2:P1D") not in due and (a, f"{a}:m1:P30D") not in due and (a, f"{a}:m1:P90D") in due

    clock.set(END + timedelta(days=1, hours=1))
    assert any_service.send_due_checkpoints(ACTOR, LATENESS)["sent"] == 2  # send_checkpoint
    due, unanswered = _agree(any_service, ids)
    assert unanswered == [(b, f"{b}:m2:P1D"), (c, f"{c}:m2:P1D")] and (b, f"{b}:m2:P1D") not in due

    clock.advance(timedelta(days=3))
    assert any_service.send_reminders(ACTOR, timedelta(days=3), 2) == 2  # remind_checkpoint
    _agree(any_service, ids)
    assert any_service.store.unanswered_checkpoints(FAR, max_reminders=1) == []
    assert any_service.store.unanswered_checkpoints(END + timedelta(days=4)) == []  # the reminder restarted the wait

    clock.set(END + timedelta(days=60))  # m1:P30D is 30 days late: flagged, not sent
    assert any_service.send_due_checkpoints(ACTOR, LATENESS)["flagged"] == 2
    due, _ = _agree(any_service, ids)
    assert [k for _, k in due] == [f"{a}:m1:P90D", f"{b}:m1:P90D", f"{c}:m1:P90D"]

    any_service.record(b, "m2:P1D", result_data(4.4), ACTOR)  # record_result on a sent checkpoint
    _, unanswered = _agree(any_service, ids)
    assert unanswered == [(c, f"{c}:m2:P1D")]

    any_service.cancel(c, {"reason": "merged"}, ACTOR)  # cancel closes every open checkpoint
    due, unanswered = _agree(any_service, ids)
    assert due == [(a, f"{a}:m1:P90D"), (b, f"{b}:m1:P90D")] and unanswered == []


def test_a_save_that_changes_no_checkpoint_keeps_the_timers(any_service: Service, clock: FixedClock) -> None:
    rid = drive_to(any_service, "delivered").id
    before = any_service.store.due_checkpoints(FAR)
    any_service.add_note(rid, "the sponsor asked for the survey text", ACTOR)
    assert any_service.store.due_checkpoints(FAR) == before and len(before) == 3
    _agree(any_service, [rid])
