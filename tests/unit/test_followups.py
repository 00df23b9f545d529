"""Measurement follow-ups: checkpoints fire once, late ones are flagged, reminders, advance, events.

Service-level tests run on the in-memory store; the pipeline's step functions
(the work inside the Prefect tasks) run on a SQLite file with a fixed clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.testing import InMemoryStore
from flows import events
from flows.clock import FixedClock
from flows.service import Service
from flows.settings import Settings
from states.errors import Conflict
from tests.builders import ACTOR, drive_to, result_data

LATENESS = timedelta(days=14)
# delivery_data(): end date 2026-04-20, checkpoints m2:P1D (04-21), m1:P30D (05-20), m1:P90D (07-19), 09:00 UTC
END = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)


def _snapshot(store: InMemoryStore, request_id: int) -> tuple[Any, ...]:
    request = store.get(request_id)
    return (sorted(store.outbox), len(store.history(request_id)), request.version,
            [(c.key, c.status.value, c.reminders_sent) for c in request.checkpoints])


def test_a_due_checkpoint_fires_once(memory_service: Service, memory_store: InMemoryStore,
                                     clock: FixedClock) -> None:
    r = drive_to(memory_service, "delivered")
    clock.set(END + timedelta(days=1, hours=1))
    assert memory_service.send_due_checkpoints(ACTOR, LATENESS)["sent"] == 1
    keys = {k for k in memory_store.outbox if ":m2:P1D" in k}
    assert keys == {f"{r.id}:survey:m2:P1D", f"{r.id}:checkpoint_reminder:m2:P1D"}
    reminder = memory_store.outbox[f"{r.id}:checkpoint_reminder:m2:P1D"].notification
    assert reminder["calendar"]["kind"] == "todo"  # the owner's calendar reminder
    before = _snapshot(memory_store, r.id)
    for _ in range(3):
        again = memory_service.send_due_checkpoints(ACTOR, LATENESS)
        assert again["sent"] == again["flagged"] == 0
    assert _snapshot(memory_store, r.id) == before


def test_nothing_fires_before_it_is_due(memory_service: Service, memory_store: InMemoryStore,
                                        clock: FixedClock) -> None:
    r = drive_to(memory_service, "delivered")
    clock.set(END + timedelta(days=1) - timedelta(seconds=1))
    assert memory_service.send_due_checkpoints(ACTOR, LATENESS) == {"sent": 0, "flagged": 0, "conflicts": 0,
                                                                     "checked": 0}
    assert not [k for k in memory_store.outbox if "survey" in k]
    assert all(c.status.value == "scheduled" for c in memory_service.show(r.id).checkpoints)


def test_a_forty_day_jump_sends_what_is_due_and_flags_what_is_too_late(
        memory_service: Service, memory_store: InMemoryStore, clock: FixedClock) -> None:
    r = drive_to(memory_service, "delivered")
    clock.set(END + timedelta(days=40))
    result = memory_service.send_due_checkpoints(ACTOR, LATENESS)
    assert (result["sent"], result["flagged"]) == (1, 1)
    status = {c.key: c.status.value for c in memory_service.show(r.id).checkpoints}
    assert status == {f"{r.id}:m2:P1D": "needs_review", f"{r.id}:m1:P30D": "sent", f"{r.id}:m1:P90D": "scheduled"}
    surveys = sorted(k for k in memory_store.outbox if ":survey:" in k)
    assert surveys == [f"{r.id}:survey:m1:P30D"]  # the 39-days-late one was not sent
    flagged = [e for e in memory_service.history(r.id) if e.type == "checkpoint_flagged"]
    assert [(e.payload["checkpoint"], e.payload["late_by_days"]) for e in flagged] == [(f"{r.id}:m2:P1D", 39)]
    before = _snapshot(memory_store, r.id)
    memory_service.send_due_checkpoints(ACTOR, LATENESS)
    assert _snapshot(memory_store, r.id) == before


def test_the_lateness_policy_is_configurable(memory_service: Service, memory_store: InMemoryStore,
                                             clock: FixedClock) -> None:
    drive_to(memory_service, "delivered")
    clock.set(END + timedelta(days=40))
    assert memory_service.send_due_checkpoints(ACTOR, timedelta(days=45))["sent"] == 2


def test_unanswered_surveys_get_at_most_two_reminders_three_days_apart(
        memory_service: Service, memory_store: InMemoryStore, clock: FixedClock) -> None:
    r = drive_to(memory_service, "delivered")
    clock.set(END + timedelta(days=1))
    memory_service.send_due_checkpoints(ACTOR, LATENESS)
    after = timedelta(days=3)
    clock.advance(timedelta(days=2, hours=23))
    assert memory_service.send_reminders(ACTOR, after, 2) == 0
    clock.advance(timedelta(hours=1))
    assert memory_service.send_reminders(ACTOR, after, 2) == 1
    assert memory_service.send_reminders(ACTOR, after, 2) == 0  # not again the same day
    clock.advance(after)
    assert memory_service.send_reminders(ACTOR, after, 2) == 1
    clock.advance(after * 5)
    assert memory_service.send_reminders(ACTOR, after, 2) == 0  # two is the most
    reminders = sorted(k for k in memory_store.outbox if "survey_reminder" in k)
    assert reminders == [f"{r.id}:survey_reminder:m2:P1D:1", f"{r.id}:survey_reminder:m2:P1D:2"]


def test_an_answered_survey_gets_no_reminder(memory_service: Service, clock: FixedClock) -> None:
    r = drive_to(memory_service, "delivered")
    clock.set(END + timedelta(days=1))
    memory_service.send_due_checkpoints(ACTOR, LATENESS)
    memory_service.record(r.id, "m2:P1D", result_data(4.5), ACTOR)
    clock.advance(timedelta(days=10))
    assert memory_service.send_reminders(ACTOR, timedelta(days=3), 2) == 0


class RacingStore(InMemoryStore):
    """Lets ``competitor`` commit a change to the request between the service's load and save, once."""

    def __init__(self) -> None:
        super().__init__()
        self.competitor: Any = None

    def save(self, request: Any, actor: str) -> Any:
        competitor, self.competitor = self.competitor, None
        if competitor is not None:
            competitor(request.id)
        return super().save(request, actor)


@pytest.fixture
def racing() -> tuple[RacingStore, Service, FixedClock]:
    from tests.builders import T0

    clock = FixedClock(T0)
    store = RacingStore()
    return store, Service(store, clock), clock


def test_a_concurrent_followups_run_wins_and_the_checkpoint_fires_once(
        racing: tuple[RacingStore, Service, FixedClock]) -> None:
    store, service, clock = racing
    r = drive_to(service, "delivered")
    clock.set(END + timedelta(days=1, hours=1))
    other = Service(InMemoryStore(), clock)
    other.store = store  # the other process: same data, its own service

    def other_followups_run(request_id: int) -> None:
        assert other.send_due_checkpoints("other-run", LATENESS)["sent"] == 1

    store.competitor = other_followups_run
    result = service.send_due_checkpoints(ACTOR, LATENESS)  # loses the race: Conflict, reload, nothing left
    assert result["sent"] == 0 and result["conflicts"] == 1
    sent = [e for e in store.history(r.id) if e.type == "survey_sent"]
    assert len(sent) == 1 and sent[0].actor == "other-run"


def test_a_concurrent_change_by_a_person_is_retried(racing: tuple[RacingStore, Service, FixedClock]) -> None:
    store, service, clock = racing
    r = drive_to(service, "delivered")
    clock.set(END + timedelta(days=1, hours=1))
    store.competitor = lambda request_id: Service(store, clock).add_note(request_id, "called the sponsor", ACTOR)
    result = service.send_due_checkpoints(ACTOR, LATENESS)
    assert (result["sent"], result["conflicts"]) == (1, 1)
    types = [e.type for e in store.history(r.id)][-2:]
    assert types == ["note_added", "survey_sent"]


def test_conflicts_never_fail_the_run(racing: tuple[RacingStore, Service, FixedClock],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store, service, clock = racing
    drive_to(service, "delivered")
    clock.set(END + timedelta(days=1, hours=1))
    real_save = InMemoryStore.save

    def always_conflict(self: InMemoryStore, request: Any, actor: str) -> Any:
        raise Conflict(request.id, request.version, request.version + 1)

    monkeypatch.setattr(RacingStore, "save", always_conflict)
    result = service.send_due_checkpoints(ACTOR, LATENESS)
    assert (result["sent"], result["conflicts"]) == (0, 3)  # three attempts, then left for the next run
    monkeypatch.setattr(RacingStore, "save", real_save)
    assert service.send_due_checkpoints(ACTOR, LATENESS)["sent"] == 1


# --- the pipeline's steps on SQLite ------------------------------------------------------------------


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Any]:
    from flows import bootstrap
    from tests.builders import T0

    app = bootstrap.build(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ldflow.db'}"),
                          clock=FixedClock(T0))
    yield app
    app.close()


def _count(rt: Any, table: str) -> int:
    from sqlalchemy import text

    with rt.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_fire_followups_works_through_every_batch(rt: Any) -> None:
    from flows.steps import fire_followups

    ids = [drive_to(rt.service, "delivered").id for _ in range(5)]
    rt.clock.set(END + timedelta(days=31))
    summary = fire_followups(rt, batch=2, lateness_days=60)  # 10 due rows in batches of 2
    assert summary.counts["sent"] == 10 and summary.counts["flagged"] == 0
    assert all(c.status.value == "sent" for i in ids for c in rt.service.show(i).checkpoints
               if c.offset != "P90D")
    rows = (_count(rt, "outbox"), _count(rt, "audit_events"))
    again = fire_followups(rt, batch=2, lateness_days=60)
    assert again.counts["sent"] == 0 and (_count(rt, "outbox"), _count(rt, "audit_events")) == rows


def test_reminders_are_not_starved_by_exhausted_checkpoints(rt: Any) -> None:
    """More exhausted checkpoints than a batch must not hide one that is still owed a reminder."""
    first = [drive_to(rt.service, "delivered").id for _ in range(3)]
    rt.clock.set(END + timedelta(days=1))
    rt.service.send_due_checkpoints(ACTOR, LATENESS)
    for _ in range(2):
        rt.clock.advance(timedelta(days=3))
        assert rt.service.send_reminders(ACTOR, timedelta(days=3), 2) == 3
    late = drive_to(rt.service, "delivered").id  # same delivery dates: its P1D is due, and late by 7 days
    rt.service.send_due_checkpoints(ACTOR, timedelta(days=30))
    rt.clock.advance(timedelta(days=3))
    assert rt.service.send_reminders(ACTOR, timedelta(days=3), 2, limit=1) == 1
    assert rt.service.show(late).checkpoint("m2:P1D").reminders_sent == 1
    assert all(rt.service.show(i).checkpoint("m2:P1D").reminders_sent == 2 for i in first)


def test_advance_measures_requests_whose_checkpoints_are_all_closed(rt: Any) -> None:
    from flows.steps import ACTOR as PIPELINE
    from flows.steps import advance_requests

    done = drive_to(rt.service, "delivered")
    for c in done.checkpoints:
        rt.service.record(done.id, c.key, result_data(74.0), ACTOR)
    open_one = drive_to(rt.service, "delivered")
    rt.service.record(open_one.id, "m2:P1D", result_data(None, missed_reason="survey tool down"), ACTOR)
    designed = drive_to(rt.service, "designed")
    summary = advance_requests(rt)
    assert summary.counts == {"measured": 1}
    measured = rt.service.show(done.id)
    assert measured.state.value == "measured"  # not acknowledged: that needs a person's recap
    assert rt.service.history(done.id)[-1].actor == PIPELINE
    assert [(r.item_id, r.outcome.value) for r in measured.results] == [("m1", "partly_met"), ("m2", "met")]
    assert rt.service.show(open_one.id).state.value == "delivered"
    assert rt.service.show(designed.id).state.value == "designed"
    events_before = _count(rt, "audit_events")
    assert advance_requests(rt).counts == {"measured": 0}
    assert _count(rt, "audit_events") == events_before


# --- Prefect events ----------------------------------------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    monkeypatch.setenv("LDFLOW_PREFECT_EVENTS", "on")
    old = events.set_emitter(seen.append)
    yield seen
    events.set_emitter(old)


def test_events_follow_commits_and_are_not_repeated(rt: Any, captured: list[dict[str, Any]]) -> None:
    from flows.steps import fire_followups

    r = drive_to(rt.service, "delivered")
    names = [e["event"] for e in captured]
    assert [n for n in names if n.startswith("ldflow.request.")] == ["ldflow.request.diagnose",
                                                                      "ldflow.request.design",
                                                                      "ldflow.request.deliver"]
    assert names.count("ldflow.outbox.enqueued") == 3  # intake ack, diagnosis summary, plan approval request
    deliver = next(e for e in captured if e["event"] == "ldflow.request.deliver")
    assert deliver["resource"]["prefect.resource.id"] == f"ldflow.request.{r.id}"
    captured.clear()
    rt.clock.set(END + timedelta(days=31))
    fire_followups(rt, lateness_days=60)
    assert [e["event"] for e in captured] == ["ldflow.outbox.enqueued"]  # one for the whole batch
    assert captured[0]["payload"]["count"] == 4
    captured.clear()
    fire_followups(rt, lateness_days=60)
    assert captured == []


def test_no_event_for_a_refused_change(rt: Any, captured: list[dict[str, Any]]) -> None:
    from states.errors import TransitionRefused

    r = drive_to(rt.service, "received")
    captured.clear()
    with pytest.raises(TransitionRefused):
        rt.service.measure(r.id, ACTOR)
    assert captured == []


def test_event_ids_are_derived_from_what_they_describe() -> None:
    from states.events import Delivered
    from states.lifecycle import State

    a = events.transition_events(7, 3, [Delivered(from_state=State.DESIGNED, delivery={})])
    b = events.transition_events(7, 3, [Delivered(from_state=State.DESIGNED, delivery={})])
    assert a[0]["id"] == b[0]["id"] and a[0]["event"] == "ldflow.request.deliver"
    assert events.outbox_event(["1:a", "2:b"])["id"] == events.outbox_event(["2:b", "1:a"])["id"]
    assert events.outbox_event(["1:a"])["id"] != events.outbox_event(["1:b"])["id"]


def test_without_a_prefect_api_nothing_is_emitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("LDFLOW_PREFECT_EVENTS", raising=False)
    seen: list[dict[str, Any]] = []
    old = events.set_emitter(seen.append)
    try:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        # The flow tests' session-wide harness configures an API; take it away for this test.
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            assert not events.api_configured()
            assert events.emit([events.outbox_event(["1:x"])]) == 0
        assert seen == []
    finally:
        events.set_emitter(old)
