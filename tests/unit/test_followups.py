"""Measurement follow-ups: checkpoints fire once, late ones are flagged, reminders, advance, events.

Service-level tests run on the in-memory store; the pipeline's step functions
(the work inside the Prefect tasks) run on a SQLite file with a fixed clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.ports import FollowupClaim
from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from tests.builders import ACTOR, drive_to, record_when_due, result_data

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
    record_when_due(memory_service, r.id, "m2:P1D", result_data(4.5), ACTOR)
    clock.advance(timedelta(days=10))
    assert memory_service.send_reminders(ACTOR, timedelta(days=3), 2) == 0


def test_a_claim_hands_each_request_over_once_with_its_due_keys(memory_service: Service,
                                                                  memory_store: InMemoryStore,
                                                                  clock: FixedClock) -> None:
    first, second = drive_to(memory_service, "delivered"), drive_to(memory_service, "delivered")
    now = END + timedelta(days=31)  # m2:P1D and m1:P30D due for both
    seen: list[tuple[int, list[str]]] = []

    def look(request: Any, keys: list[str]) -> dict[str, int]:
        seen.append((request.id, keys))
        return {"looked": 1}  # nothing changed: nothing written, nothing counted

    assert memory_store.claim_followups(FollowupClaim("due", now), ACTOR, look) == {"checked": 4}
    assert seen == [(first.id, [f"{first.id}:m2:P1D", f"{first.id}:m1:P30D"]),
                    (second.id, [f"{second.id}:m2:P1D", f"{second.id}:m1:P30D"])]
    seen.clear()
    assert memory_store.claim_followups(FollowupClaim("due", now), ACTOR, look, limit=2)["checked"] == 2
    assert [rid for rid, _ in seen] == [first.id]  # the limit counts checkpoint rows


def test_what_a_claimed_change_raises_writes_nothing(memory_service: Service, memory_store: InMemoryStore) -> None:
    r = drive_to(memory_service, "delivered")
    before = _snapshot(memory_store, r.id)

    def broken(request: Any, keys: list[str]) -> dict[str, int]:
        request.send_checkpoints(keys, END + timedelta(days=2), LATENESS)
        raise RuntimeError("the template is missing")

    with pytest.raises(RuntimeError):
        memory_store.claim_followups(FollowupClaim("due", END + timedelta(days=2)), ACTOR, broken)
    assert _snapshot(memory_store, r.id) == before


def test_two_followups_runs_at_once_fire_each_checkpoint_once_without_conflicts(
        memory_service: Service, memory_store: InMemoryStore, clock: FixedClock) -> None:
    ids = [drive_to(memory_service, "delivered").id for _ in range(6)]
    clock.set(END + timedelta(days=31))
    results: list[dict[str, int]] = []
    def run() -> None:
        results.append(memory_service.send_due_checkpoints(ACTOR, timedelta(days=60)))

    runs = [threading.Thread(target=run) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert sum(r["sent"] for r in results) == 12 and all(r["conflicts"] == 0 for r in results)
    for request_id in ids:
        assert sum(1 for e in memory_store.history(request_id) if e.type == "survey_sent") == 2
