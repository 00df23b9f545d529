"""The pipeline's steps (``flows.steps``) on SQLite: batches, reminders, advancing, Prefect events after commits."""


from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows import events
from flows.clock import FixedClock
from flows.settings import Settings
from tests.builders import ACTOR, drive_to, record_when_due, result_data

LATENESS = timedelta(days=14)
# delivery_data(): end date 2026-04-20, checkpoints m2:P1D (04-21), m1:P30D (05-20), m1:P90D (07-19), 09:00 UTC
END = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)


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
        record_when_due(rt.service, done.id, c.key, result_data(74.0), ACTOR)
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
