"""No silent stalls (issue 8 item 7), on the fake, SQLite and PostgreSQL: a survey still unanswered
after its last reminder and response window becomes ``needs_review`` once (history, a mail to the
owner and the sponsor), is on the attention list and in the daily digest once a day (not every pass),
a person closes it as missed with a reason, the request then measures, and the report names it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.db.store import SqlStore
from connectors.db.unit_of_work import SqlUnitOfWork
from connectors.ports import OutboxLog, OutboxStatus
from connectors.testing import InMemoryStore, InMemoryUnitOfWork
from flows import attention, bootstrap, report, sla
from flows.clock import FixedClock
from flows.service import Service
from flows.settings import Settings
from states.checkpoints import CheckpointStatus
from tests.builders import ACTOR, drive_to, record_when_due, result_data

END = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)  # delivery_data()'s end; m2:P1D is due the day after
LATENESS, AFTER, WINDOW, MOST = timedelta(days=14), timedelta(days=3), timedelta(days=7), 2


def _uow(service: Service) -> InMemoryUnitOfWork | SqlUnitOfWork:
    store = service.store
    if isinstance(store, InMemoryStore):
        return InMemoryUnitOfWork(store)
    assert isinstance(store, SqlStore)
    return SqlUnitOfWork(store.engine, store)


def _outbox(service: Service) -> OutboxLog:
    return _uow(service).outbox


@pytest.fixture
def app(any_service: Service, clock: FixedClock, tmp_path: Path) -> Iterator[bootstrap.App]:
    settings = Settings(home=tmp_path, ops_address="Ops <ops.team@example.org>")
    store = any_service.store
    engine = store.engine if isinstance(store, SqlStore) else None
    built = bootstrap.compose(settings, store=store, uow=_uow(any_service), clock=clock, engine=engine)
    yield built


def _stall(service: Service, clock: FixedClock) -> int:
    """A delivered request whose 1-day survey goes unanswered through both reminders and the window."""
    rid = drive_to(service, "delivered").id
    clock.set(END + timedelta(days=1, hours=1))
    assert service.send_due_checkpoints(ACTOR, LATENESS)["sent"] == 1  # m2:P1D
    for _ in range(MOST):
        assert service.flag_unanswered(ACTOR, WINDOW, MOST) == 0  # reminders still to come
        clock.advance(AFTER)
        assert service.send_reminders(ACTOR, AFTER, MOST) == 1
    # the response window ends 14 days after due, and not before WINDOW after the last reminder: one rule
    ends = max(service.show(rid).checkpoint("m2:P1D").due_at + timedelta(days=14), clock.now() + WINDOW)
    clock.set(ends - timedelta(minutes=1))
    assert service.flag_unanswered(ACTOR, WINDOW, MOST) == 0  # the window is not over yet
    clock.set(ends)
    assert service.flag_unanswered(ACTOR, WINDOW, MOST) == 1
    return rid


def test_an_unanswered_survey_needs_review_once_then_a_person_closes_it_and_the_report_names_it(
        any_service: Service, clock: FixedClock) -> None:
    rid = _stall(any_service, clock)
    assert any_service.flag_unanswered(ACTOR, WINDOW, MOST) == 0  # once, however often the pipeline runs

    request = any_service.show(rid)
    c = request.checkpoint("m2:P1D")
    assert c.status == CheckpointStatus.NEEDS_REVIEW and not c.closed
    assert c.review_reason == "no answer after the survey of 2026-04-21 and 2 reminders (the last on 2026-04-27)"
    stalled = [e for e in any_service.history(rid) if e.type == "checkpoint_stalled"]
    assert [e.payload for e in stalled] == [{"checkpoint": c.key, "reason": c.review_reason}]
    assert stalled[0].actor == ACTOR
    assert any_service.store.unanswered_checkpoints(clock.now(), min_reminders=0) == []
    for other in ("m1:P30D", "m1:P90D"):
        record_when_due(any_service, rid, other, result_data(72.0), ACTOR)
    assert any_service.store.measurable_requests() == []  # a checkpoint waits on a person: not measured

    any_service.record(rid, "m2:P1D", result_data(None, missed_reason="no answer after two reminders"), ACTOR)
    assert any_service.store.measurable_requests() == [rid]
    measured = any_service.measure(rid, ACTOR)
    text = report.build(measured).text
    assert ("Checkpoints without a result:\n"
            "  - relevance rating, 1 day after delivery: no answer after two reminders") in text
    assert "relevance rating" in report.build(measured).html and "Checkpoints without a result" in \
        report.build(measured).html
    assert any_service.verify().ok


def test_the_owner_and_the_sponsor_are_told(any_service: Service, clock: FixedClock) -> None:
    rid = drive_to(any_service, "delivered").id
    clock.set(END + timedelta(days=1, hours=1))
    any_service.send_due_checkpoints(ACTOR, LATENESS)
    clock.advance(timedelta(days=14))  # the response window: 14 days after due (and WINDOW after the survey)
    assert any_service.flag_unanswered(ACTOR, WINDOW, 0) == 1  # no reminders configured
    key = f"{rid}:checkpoint_needs_review:m2:P1D"
    mail = _outbox(any_service).by_keys([key])[key].notification
    assert [t.email for t in mail.to] == ["olga.owner@example.org", "sam.sponsor@example.org"]
    assert mail.subject == "No answer: the 1-day result on relevance rating needs a decision"


def _walked(app: bootstrap.App) -> list[attention.Item]:
    """The attention list as it was computed before the clock summaries: every open request's document and
    whole history (the oracle)."""
    policy, now, found = sla.load_policy(app.settings), app.now(), []
    for rid in sorted(app.service.store.sla_heads()):
        request = app.service.show(rid)
        found += attention.checkpoint_items(request)
        found += attention.sla_items(request, app.service.history(rid), policy, now)
    return found


def test_the_stalled_checkpoint_is_on_the_attention_list_and_in_the_digest_once_a_day(
        app: bootstrap.App, clock: FixedClock) -> None:
    rid = _stall(app.service, clock)
    quiet = drive_to(app.service, "designed").id  # nothing waits on anyone there
    items = attention.attention_list(app)
    mine = [i for i in items if i.request_id == rid]
    assert [i.kind for i in mine] == ["checkpoint", "sla"]  # needs review, and its result clock is near its end
    assert mine[0].status == "needs_review" and "no answer after the survey of 2026-04-21" in mine[0].text
    assert mine[0].owners == ("olga.owner@example.org",)
    assert mine[1].status == "near" and mine[1].sla == "results"
    assert all(i.request_id != quiet for i in items)
    assert items == _walked(app)  # the clock summaries answer as each open request's document and history

    first = attention.queue_digests(app)
    assert first == {"queued": 2, "already": 0, "items": 2}  # ops and the item's owner
    again = attention.queue_digests(app)  # a second pass the same day: nothing new
    assert again == {"queued": 0, "already": 2, "items": 2}
    day = clock.now().date().isoformat()
    keys = [f"attention_digest:{day}:ops.team@example.org", f"attention_digest:{day}:olga.owner@example.org"]
    rows = app.uow.outbox.by_keys(keys)
    assert set(rows) == set(keys) and all(r.status == OutboxStatus.PENDING for r in rows.values())
    ops = rows[keys[0]].notification
    assert [i["request_id"] for i in ops.context["items"]] == [rid, rid] and ops.context["for_ops"]
    assert ops.subject == f"Attention: 2 items on 1 request ({day})"
    owner = rows[keys[1]].notification
    assert [(p.name, p.email) for p in owner.to] == [("Olga Owner", "olga.owner@example.org")]  # "Hello Olga"

    clock.advance(timedelta(days=1))  # still unresolved the next day: the next day's digest lists it again
    assert attention.queue_digests(app)["queued"] == 2
    app.service.record(rid, "m2:P1D", result_data(None, missed_reason="no answer"), ACTOR)
    clock.advance(timedelta(days=1))
    assert [i for i in attention.attention_list(app) if i.kind == "checkpoint"] == []
