"""No silent stalls (issue 8), on the fake, SQLite and PostgreSQL: a survey still unanswered at the end
of its response window (and after its last reminder) is closed as missed once (history, a mail to the
owner and the sponsor), the request then measures, and the report names the missed checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.db.store import SqlStore
from connectors.db.unit_of_work import SqlUnitOfWork
from connectors.ports import OutboxLog
from connectors.testing import InMemoryStore, InMemoryUnitOfWork
from flows import report
from flows.clock import FixedClock
from flows.service import Service
from states.checkpoints import CheckpointStatus
from tests.builders import ACTOR, drive_to, record_when_due, result_data

END = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)  # delivery_data()'s end; m2:P1D is due the day after
LATENESS, AFTER, WINDOW, MOST = timedelta(days=14), timedelta(days=3), timedelta(days=7), 2


def _outbox(service: Service) -> OutboxLog:
    store = service.store
    if isinstance(store, InMemoryStore):
        return InMemoryUnitOfWork(store).outbox
    assert isinstance(store, SqlStore)
    return SqlUnitOfWork(store.engine, store).outbox


def test_an_unanswered_survey_is_closed_as_missed_once_and_reported(any_service: Service, clock: FixedClock) -> None:
    r = drive_to(any_service, "delivered")
    rid = r.id
    clock.set(END + timedelta(days=1, hours=1))
    assert any_service.send_due_checkpoints(ACTOR, LATENESS)["sent"] == 1  # m2:P1D
    for _ in range(MOST):
        assert any_service.close_unanswered(ACTOR, WINDOW, MOST) == 0  # reminders still to come
        clock.advance(AFTER)
        assert any_service.send_reminders(ACTOR, AFTER, MOST) == 1
    clock.advance(WINDOW - timedelta(minutes=1))
    assert any_service.close_unanswered(ACTOR, WINDOW, MOST) == 0  # the window is not over yet
    clock.advance(timedelta(minutes=1))
    # the grace after the last reminder is over, but not the response window (14 days after due): one rule
    assert any_service.close_unanswered(ACTOR, WINDOW, MOST) == 0
    clock.set(r.checkpoint("m2:P1D").due_at + timedelta(days=14))
    assert any_service.close_unanswered(ACTOR, WINDOW, MOST) == 1
    assert any_service.close_unanswered(ACTOR, WINDOW, MOST) == 0  # once, however often the pipeline runs

    request = any_service.show(rid)
    c = request.checkpoint("m2:P1D")
    assert c.status == CheckpointStatus.MISSED and c.closed_at == clock.now()
    assert c.missed_reason == "no answer after the survey of 2026-04-21 and 2 reminders (the last on 2026-04-27)"
    missed = [e for e in any_service.history(rid) if e.type == "checkpoint_missed"]
    assert [e.payload for e in missed] == [{"checkpoint": c.key, "reason": c.missed_reason}]
    assert missed[0].actor == ACTOR
    assert any_service.store.unanswered_checkpoints(clock.now(), min_reminders=0) == []

    for other in ("m1:P30D", "m1:P90D"):
        record_when_due(any_service, rid, other, result_data(72.0), ACTOR)
    assert any_service.store.measurable_requests() == [rid]
    measured = any_service.measure(rid, ACTOR)
    text = report.build(measured).text
    assert ("Checkpoints without a result:\n"
            "  - relevance rating, 1 day after delivery: no answer after the survey") in text
    assert "relevance rating" in report.build(measured).html and "Checkpoints without a result" in \
        report.build(measured).html
    assert any_service.verify().ok


def test_the_owner_and_the_sponsor_are_told(any_service: Service, clock: FixedClock) -> None:
    rid = drive_to(any_service, "delivered").id
    clock.set(END + timedelta(days=1, hours=1))
    any_service.send_due_checkpoints(ACTOR, LATENESS)
    clock.advance(WINDOW)
    assert any_service.close_unanswered(ACTOR, WINDOW, 0) == 0  # no reminders configured: the grace after the survey
    clock.set(END + timedelta(days=15))  # and the response window, 14 days after due
    assert any_service.close_unanswered(ACTOR, WINDOW, 0) == 1
    key = f"{rid}:checkpoint_missed:m2:P1D"
    mail = _outbox(any_service).by_keys([key])[key].notification
    assert [t.email for t in mail.to] == ["olga.owner@example.org", "sam.sponsor@example.org"]
    assert mail.subject == "No answer: the 1-day result on relevance rating"
