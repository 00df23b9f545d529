"""The real flows under Prefect: every flow is an idempotent reconciler.

Running a flow twice changes nothing the second time: no e-mail, checkpoint,
history event or Prefect event is added or changed (each flow ends by publishing the event outbox).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from flows import events
from tests.builders import ACTOR, drive_to, intake_data

END_PLUS = "2026-04-20T09:00:00+00:00"  # delivery_data(): end date, checkpoints from 09:00 UTC


def snapshot(rt: Any) -> dict[str, Any]:
    """Everything a flow could change: rows of every table that matters, and the outbox folder."""
    with rt.engine.connect() as conn:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(text(sql)).all()]

        data = {
            "requests": rows("SELECT id, state, version FROM requests ORDER BY id"),
            "audit": rows("SELECT count(*), max(seq) FROM audit_events"),
            "checkpoints": rows("SELECT key, status, reminders_sent FROM checkpoints ORDER BY key"),
            "outbox": rows("SELECT key, status, attempts FROM outbox ORDER BY key"),
            "inbound": rows("SELECT source, message_id, status FROM inbound ORDER BY id"),
        }
    outbox_dir = rt.settings.outbox_dir
    data["files"] = sorted(p.name for p in outbox_dir.iterdir()) if outbox_dir.exists() else []
    return data


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    monkeypatch.setenv("LDFLOW_PREFECT_EVENTS", "on")
    old = events.set_sender(seen.extend)  # what the flows' publish-events task sends
    yield seen
    events.set_sender(old)


def _clock(rt: Any, iso: str, days: int) -> None:
    from datetime import datetime

    rt.clock.set(datetime.fromisoformat(iso) + timedelta(days=days, hours=1))


def test_pipeline_does_the_work_once(rt: Any, captured: list[dict[str, Any]]) -> None:
    from flows.pipeline import pipeline

    delivered = [drive_to(rt.service, "delivered").id for _ in range(3)]
    drop = rt.settings.drop_dir
    drop.mkdir(parents=True)
    (drop / "new.json").write_text(json.dumps(intake_data(title="Onboarding for new store managers")))
    _clock(rt, END_PLUS, 31)  # P1D is 30 days late (flagged), P30D just due (sent)
    captured.clear()

    first = pipeline()
    counts = {s["step"]: s["counts"] for s in first["steps"]}
    assert counts["intake"]["processed"] == 1
    assert counts["followups"]["sent"] == 3 and counts["followups"]["flagged"] == 3
    assert counts["dispatch"]["sent"] > 0 and counts["dispatch"]["failed"] == 0
    after_first = snapshot(rt)
    assert len(after_first["requests"]) == 4
    assert all(status == "sent" for _, status, _ in after_first["outbox"])
    assert {status for key, status, _ in after_first["checkpoints"] if key.endswith(":m1:P30D")} == {"sent"}
    assert {status for key, status, _ in after_first["checkpoints"] if key.endswith(":m2:P1D")} == {"needs_review"}
    assert [e for e in captured if e["event"] == "ldflow.outbox.enqueued"]
    captured.clear()

    second = pipeline()
    # nothing done twice: the digest step still counts the items on the list, but queues no second digest today
    assert all(not any(v for k, v in s["counts"].items() if not (s["step"] == "digest" and k != "queued"))
               for s in second["steps"]), second
    assert snapshot(rt) == after_first
    assert captured == []
    assert all(rt.service.show(i).state.value == "delivered" for i in delivered)


# Results recorded before their checkpoints are due, so that the flows find them at the test's time.
EARLY = "recorded ahead for the test"


@pytest.mark.parametrize("name", ["intake", "followups", "advance", "dispatch"])
def test_each_flow_run_twice_changes_nothing_the_second_time(rt: Any, name: str,
                                                               captured: list[dict[str, Any]]) -> None:
    from flows import pipeline as p

    r = drive_to(rt.service, "delivered")
    for c in r.checkpoints:
        if c.offset != "P90D":
            rt.service.record(r.id, c.key, {"value": 70.0, "early_reason": EARLY}, ACTOR)
    ready = drive_to(rt.service, "delivered")
    for c in ready.checkpoints:
        rt.service.record(ready.id, c.key, {"value": 76.0, "early_reason": EARLY}, ACTOR)
    drop = rt.settings.drop_dir
    drop.mkdir(parents=True)
    (drop / "a.yaml").write_text("title: Coaching for team leads\nrequester: {name: Rita, email: rita@example.org}\n"
                                 "sponsor: {name: Sam, email: sam@example.org}\nrequested_solution: a course\n")
    _clock(rt, END_PLUS, 90)
    flow = p.FLOWS[name]
    first = flow()
    done = {k: v for k, v in first["counts"].items() if v}
    assert done, f"{name} had work to do: {first}"
    after = snapshot(rt)
    captured.clear()
    second = flow()
    assert not any(second["counts"].values()), second
    assert snapshot(rt) == after
    assert captured == []


def test_a_forty_day_jump_fires_due_checkpoints_once_and_flags_the_too_late(rt: Any) -> None:
    from flows.pipeline import dispatch, followups

    r = drive_to(rt.service, "delivered")
    _clock(rt, END_PLUS, 40)
    result = followups()
    assert (result["counts"]["sent"], result["counts"]["flagged"]) == (1, 1)
    for _ in range(2):
        again = followups()
        assert again["counts"]["sent"] == again["counts"]["flagged"] == 0
    status = {c.key.split(":", 1)[1]: c.status.value for c in rt.service.show(r.id).checkpoints}
    assert status == {"m2:P1D": "needs_review", "m1:P30D": "sent", "m1:P90D": "scheduled"}
    dispatch()
    names = sorted(p.name for p in Path(rt.settings.outbox_dir).glob("*.eml"))
    surveys = [n for n in names if "_survey_" in n]
    assert len(surveys) == 1  # the P30D survey only; the 39-days-late P1D one was flagged, not sent


def test_the_pipeline_measures_a_request_once_its_checkpoints_are_closed(rt: Any) -> None:
    from flows.pipeline import pipeline

    r = drive_to(rt.service, "delivered")
    for c in r.checkpoints:
        rt.service.record(r.id, c.key, {"value": 80.0, "early_reason": EARLY}, ACTOR)
    result = pipeline()
    assert {s["step"]: s["counts"] for s in result["steps"]}["advance"] == {"measured": 1}
    assert rt.service.show(r.id).state.value == "measured"


def test_every_flow_ldflow_run_offers_exists() -> None:
    from flows.pipeline import FLOWS
    from flows.vocabulary import FlowName

    assert list(FLOWS) == list(FlowName)
