"""The pipeline's steps (``flows.steps``) on SQLite: batches, reminders, advancing, the event outbox."""


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


# --- Prefect events: the event outbox ------------------------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """What ``publish_events`` sends to Prefect, event by event (no Prefect API needed)."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setenv("LDFLOW_PREFECT_EVENTS", "on")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # configured; the sender is replaced
    old = events.set_sender(seen.extend)
    yield seen
    events.set_sender(old)


def test_every_committed_change_is_staged_with_it_and_published_once(rt: Any, captured: list[dict[str, Any]]) -> None:
    from flows.steps import fire_followups, publish_events

    r = drive_to(rt.service, "delivered")
    assert captured == []  # a write never talks to Prefect
    published = publish_events(rt).counts["published"]
    history = [f"ldflow.request.{h.trigger or h.type}" for h in rt.service.history(r.id)]
    assert "ldflow.request.submitted" in history and "ldflow.request.deliver" in history
    assert [e["event"] for e in captured] == [*history, "ldflow.outbox.enqueued"]  # every history event, in order
    assert published == len(history) + 4  # + one wake-up row per commit that queued mail (4), sent as one
    wakeup = captured[-1]
    # intake ack, diagnosis summary, plan approval request, the delivery told to the requester: one wake-up
    assert wakeup["payload"]["count"] == 4
    deliver = next(e for e in captured if e["event"] == "ldflow.request.deliver")
    assert deliver["resource"]["prefect.resource.id"] == f"ldflow.request.{r.id}"
    assert deliver["payload"]["to_state"] == "delivered"
    captured.clear()
    assert publish_events(rt).counts == {"published": 0} and captured == []  # published once

    rt.service.add_note(r.id, "sponsor called", ACTOR)
    rt.service.record(r.id, "m2:P1D", result_data(None, "nobody answered"), ACTOR)
    rt.clock.set(END + timedelta(days=31))
    fire_followups(rt, lateness_days=60)
    publish_events(rt)
    names = [e["event"] for e in captured]
    assert names[:2] == ["ldflow.request.note_added", "ldflow.request.checkpoint_missed"]  # note, record
    assert names.count("ldflow.outbox.enqueued") == 1  # the followups' mail of the batch: one wake-up
    captured.clear()
    fire_followups(rt, lateness_days=60)
    publish_events(rt)
    assert captured == []


def test_email_sent_is_an_event_too(rt: Any, captured: list[dict[str, Any]]) -> None:
    from flows.steps import publish_events, send_outbox

    r = rt.service.submit(_intake(), ACTOR)
    publish_events(rt)
    captured.clear()
    assert send_outbox(rt).counts["sent"] == 1
    publish_events(rt)
    [sent] = captured
    assert sent["event"] == "ldflow.request.email_sent"
    assert sent["payload"]["key"] == f"{r.id}:intake_acknowledgement" and "to" not in sent["payload"]


def test_no_event_for_a_refused_change(rt: Any, captured: list[dict[str, Any]]) -> None:
    from flows.steps import publish_events
    from states.errors import TransitionRefused

    r = drive_to(rt.service, "received")
    publish_events(rt)
    captured.clear()
    with pytest.raises(TransitionRefused):
        rt.service.measure(r.id, ACTOR)
    assert rt.uow.events.count_pending() == 0
    publish_events(rt)
    assert captured == []


def test_a_refused_batch_stays_pending_and_goes_with_the_next_run(rt: Any, captured: list[dict[str, Any]]) -> None:
    from flows.steps import publish_events

    for _ in range(3):
        rt.service.submit(_intake(), ACTOR)

    def refuse(batch: list[dict[str, Any]]) -> None:
        raise ConnectionRefusedError("connection refused")

    events.set_sender(refuse)
    down = publish_events(rt)
    assert down.counts == {"published": 0, "waiting": 6} and "connection refused" in down.errors[0]
    events.set_sender(captured.extend)
    assert publish_events(rt).counts == {"published": 6}
    assert len({e["id"] for e in captured}) == 4  # 3 submitted + one wake-up for the 3 acknowledgements
    assert rt.uow.events.count_pending() == 0


def test_event_ids_are_derived_from_what_they_describe() -> None:
    from connectors.prefect_events import outbox_enqueued, request_events
    from states.events import Delivered
    from states.lifecycle import State

    at = datetime(2026, 4, 20, tzinfo=UTC)
    a = request_events(7, 3, [Delivered(from_state=State.DESIGNED, delivery={})], at, at)
    b = request_events(7, 3, [Delivered(from_state=State.DESIGNED, delivery={})], at, datetime.now(UTC))
    assert a[0].id == b[0].id and a[0].event == "ldflow.request.deliver"
    assert outbox_enqueued(["1:a", "2:b"], at).id == outbox_enqueued(["2:b", "1:a"], at).id
    assert outbox_enqueued(["1:a"], at).id != outbox_enqueued(["1:b"], at).id


def test_without_a_prefect_api_events_wait_and_nothing_is_sent(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.steps import publish_events

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("LDFLOW_PREFECT_EVENTS", raising=False)
    seen: list[dict[str, Any]] = []
    old = events.set_sender(seen.extend)
    try:
        rt.service.submit(_intake(), ACTOR)
        if "prefect" in __import__("sys").modules:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(restore_defaults={PREFECT_API_URL}):
                assert events.api_url() is None
                assert publish_events(rt).counts == {"published": 0}
        else:
            assert events.api_url() is None
            assert publish_events(rt).counts == {"published": 0}
        assert seen == [] and rt.uow.events.count_pending() == 2
    finally:
        events.set_sender(old)


def _intake() -> dict[str, Any]:
    from tests.builders import intake_data

    return intake_data()


def test_a_lingering_dispatch_sends_what_is_queued_meanwhile_then_ends(rt: Any) -> None:
    import threading
    import time

    from flows.steps import send_outbox
    from tests.builders import intake_data

    rt.service.submit(intake_data(), ACTOR)  # an acknowledgement: sent in the first round
    result: dict[str, Any] = {}

    def dispatch() -> None:
        started = time.monotonic()
        result["summary"] = send_outbox(rt, linger_seconds=2.5)
        result["seconds"] = time.monotonic() - started

    run = threading.Thread(target=dispatch)
    run.start()
    time.sleep(1.2)
    assert run.is_alive()  # the outbox is empty: the run stays
    rt.service.submit(intake_data(), ACTOR)  # queued while it lingers
    run.join(timeout=30)
    assert result["summary"].counts["sent"] == 2  # both by this run
    assert 3.5 <= result["seconds"] < 10  # 2.5 s idle after the second mail, then it ended
    assert send_outbox(rt).counts["sent"] == 0  # without lingering: done at once


def test_a_lingering_dispatch_publishes_events_while_it_lingers_and_stops_after_a_failure(
        rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The events of what happens while a dispatch lingers (its mails, the writes meanwhile) reach Prefect
    then, not at the run's end; a publish that fails is not tried again in this run (one wait for a
    hung API, the rows left pending for the run's end)."""
    import threading
    import time

    from flows import events, steps
    from tests.builders import intake_data

    monkeypatch.setattr(steps, "_PUBLISH_EVERY", 1.5)
    monkeypatch.setenv("LDFLOW_PREFECT_EVENTS", "on")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # configured; the sender is replaced
    seen: list[dict[str, Any]] = []
    calls = {"n": 0}

    def accept(batch: list[dict[str, Any]]) -> None:
        calls["n"] += 1
        seen.extend(batch)

    old = events.set_sender(accept)
    try:
        first = rt.service.submit(intake_data(), ACTOR)
        result: dict[str, Any] = {}
        run = threading.Thread(target=lambda: result.update(summary=steps.send_outbox(rt, linger_seconds=4)))
        run.start()
        time.sleep(0.5)
        second = rt.service.submit(intake_data(), ACTOR)  # queued (and its events staged) while it lingers
        deadline = time.monotonic() + 10
        resource = f"ldflow.request.{getattr(second, 'id', second)}"
        while not any(e["resource"]["prefect.resource.id"] == resource and e["event"] == "ldflow.request.email_sent"
                      for e in seen):
            assert time.monotonic() < deadline, [e["event"] for e in seen]
            time.sleep(0.1)
        assert run.is_alive()  # published by the lingering run, before it ended
        run.join(timeout=30)
        assert result["summary"].counts["sent"] == 2
        assert result["summary"].counts["events"] >= 1
        assert any(e["resource"]["prefect.resource.id"] == f"ldflow.request.{getattr(first, 'id', first)}"
                   for e in seen)

        def refuse(batch: list[dict[str, Any]]) -> None:
            calls["n"] += 1
            raise ConnectionRefusedError("refused")

        events.set_sender(refuse)
        rt.service.submit(intake_data(), ACTOR)
        calls["n"] = 0
        summary = steps.send_outbox(rt, linger_seconds=2.5)
        assert calls["n"] == 1  # tried once while lingering, then left to the run's end
        assert summary.counts["sent"] == 1 and any("Prefect API" in e for e in summary.errors)
        assert rt.uow.events.count_pending() > 0  # nothing lost: they wait for the next publish
    finally:
        events.set_sender(old)


def test_the_pass_s_attention_lines_link_each_item_to_its_page_and_escape_its_title(tmp_path: Path) -> None:
    """The pipeline's attention artifact (flows.pipeline._artifacts): each attention item a Markdown line
    linked to the request's page; a requester's title is shown as text, never as Markdown or HTML."""
    from flows import bootstrap
    from flows.steps import attention
    from tests.builders import T0, intake_data

    clock = FixedClock(T0)
    app = bootstrap.build(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ldflow.db'}",
                                   base_url="https://ldflow.example.org/"), clock=clock)
    try:
        hostile = app.service.submit({**intake_data(), "title": "Sales [click](https://evil.example) <b>now</b>"},
                                     ACTOR)
        for _ in range(3):
            app.service.submit(intake_data(), ACTOR)
        quiet = attention(app, [])
        assert not [line for line in quiet if "/requests/" in line]  # nothing breached yet
        clock.advance(timedelta(days=30))  # the diagnose SLA (5 business days) long breached
        lines = [line for line in attention(app, []) if f"/requests/{hostile.id})" in line]
        assert len(lines) == 1 and lines[0].startswith(f"[request #{hostile.id}: ")
        link = f"](https://ldflow.example.org/requests/{hostile.id}) — SLA "
        assert link in lines[0], lines[0]
        assert "\\[click\\]\\(https://evil.example\\)" in lines[0] and "&lt;b&gt;" in lines[0]
        assert "<b>" not in lines[0] and "[click](" not in lines[0]

        capped = attention(app, [], limit=2)
        linked = [line for line in capped if "/requests/" in line]
        assert len(linked) == 2 and capped[-1] == "[2 more on the board](https://ldflow.example.org/?attention=1)"
    finally:
        app.close()
