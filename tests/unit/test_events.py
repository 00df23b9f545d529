"""The event vocabulary: one class per kind, payloads exactly as the audit chain stores them, a registry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from connectors.db import audit
from flows.clock import FixedClock
from flows.service import Service
from states import events as ev
from states.lifecycle import DESTINATION, EVENT_OF, State, Trigger
from tests.builders import (
    ACTOR,
    SPONSOR,
    approval_data,
    brief_data,
    companion_data,
    delivery_data,
    diagnosis_data,
    drive_to,
    emailed_steps,
    plan_data,
    reason_data,
    record_when_due,
    result_data,
    roster_data,
)


def test_the_registry_names_every_event_class_once() -> None:
    classes = [*ev.TRANSITION_EVENTS.values(), *ev.FACTS]
    assert len({c.type for c in classes}) == len(classes) == len(ev.EVENTS)
    assert all(ev.EVENTS[c.type] is c for c in classes)
    assert all(dataclasses.is_dataclass(c) and c.__dataclass_params__.frozen for c in classes)  # type: ignore[attr-defined]


def test_transition_events_take_type_trigger_and_destination_from_the_lifecycle() -> None:
    assert set(ev.TRANSITION_EVENTS) == set(Trigger)
    for trigger, cls in ev.TRANSITION_EVENTS.items():
        assert (cls.type, cls.trigger, cls.to_state) == (EVENT_OF[trigger], trigger, DESTINATION[trigger])
    for cls in ev.FACTS:
        assert (cls.trigger, cls.from_state, cls.to_state) == (None, None, None)


def test_payloads_are_the_stored_json() -> None:
    """The chain's hashes cover these: keys, values and omissions are fixed."""
    assert ev.NoteAdded(text="hi").payload == {"text": "hi"}
    assert ev.NoteAdded(text="hi", source="email").payload == {"text": "hi", "source": "email"}
    assert ev.EmailSent(key="1:k", template="survey", to=("a@x.org",)).payload == {
        "key": "1:k", "template": "survey", "to": ["a@x.org"]}
    assert ev.EmailBounced(key="1:k", template="survey", to=(), detail="550").payload == {
        "key": "1:k", "template": "survey", "to": [], "detail": "550"}
    assert ev.EmailSent(key="1:k", template="t", detail="marked").payload == {
        "key": "1:k", "template": "t", "detail": "marked"}
    assert ev.Measured(from_state=State.DELIVERED, results=(), roi=None).payload == {"results": [], "roi": None}
    assert ev.SurveySent(checkpoint="1:m1:P30D", to=("a@x.org",)).payload == {
        "checkpoint": "1:m1:P30D", "to": ["a@x.org"]}
    event = ev.Cancelled(from_state=State.DESIGNED, reason="budget")
    assert event.payload == {"reason": "budget"}
    assert (event.type, event.trigger, event.from_state, event.to_state) == (
        "cancelled", "cancel", "designed", "cancelled")


def test_every_stored_event_reads_back_as_its_class_with_the_same_payload(memory_service: Service,
                                                                          clock: FixedClock) -> None:
    full = drive_to(memory_service, "acknowledged")
    memory_service.add_note(full.id, "from the sponsor", ACTOR, source="email")
    designed = drive_to(memory_service, "designed")
    session = {"title": "Workshop", "start": "2026-04-06T09:00:00+00:00", "end": "2026-04-06T12:00:00+00:00"}
    memory_service.schedule_session(designed.id, session, ACTOR)
    memory_service.schedule_session(designed.id, {**session, "id": "s1", "title": "Moved"}, ACTOR)
    memory_service.cancel(designed.id, reason_data(), ACTOR)
    followed = drive_to(memory_service, "delivered")
    clock.set(datetime(2026, 4, 20, 9, tzinfo=UTC) + timedelta(days=40))  # 40 days after the delivery's end
    assert memory_service.send_due_checkpoints(ACTOR, timedelta(days=14))["flagged"] == 1
    clock.advance(timedelta(days=4))
    assert memory_service.send_reminders(ACTOR, timedelta(days=3), 2) == 1
    record_when_due(memory_service, followed.id, "m2:P1D", result_data(None, "nobody answered"), ACTOR)
    declined = drive_to(memory_service, "received")
    memory_service.decline(declined.id, reason_data(), ACTOR)
    memory_service.reopen(declined.id, reason_data("the budget came through"), ACTOR)
    redirected = drive_to(memory_service, "redirected", path="redirect")
    revised = drive_to(memory_service, "diagnosed")
    memory_service.rediagnose(revised.id, diagnosis_data(), reason_data(), ACTOR)
    memory_service.design(revised.id, brief_data(), ACTOR)
    memory_service.deliver(revised.id, delivery_data(), ACTOR)
    memory_service.draft_plan(revised.id, plan_data(items=plan_data()["items"][:1]), ACTOR)
    memory_service.approve_plan(revised.id, approval_data(), SPONSOR)  # m2:P1D superseded
    memory_service.amend(redirected.id, {"reason": "Ivan moved teams", "redirect_owner": {
        "name": "Lena", "email": "lena@example.org"}, "audience": {"size": 12}}, ACTOR)
    asked = drive_to(memory_service, "diagnosed")
    memory_service.draft_plan(asked.id, plan_data(), ACTOR)
    memory_service.request_plan_changes(asked.id, 2, "Add the churn rate.", asked.intake.sponsor.email, ACTOR)
    answered = drive_to(memory_service, "delivered")
    memory_service.record(answered.id, "m2:P1D", result_data(4.0), ACTOR)
    memory_service.change_answer(answered.id, "m2:P1D", result_data(4.5), ACTOR)
    mixed = drive_to(memory_service, "redirected", path="redirect")  # a solution mix
    for what in ("a decision card", "a 30-minute practice", "a bonus-scheme fix"):
        memory_service.add_companion(mixed.id, companion_data(what=what), ACTOR)
    memory_service.complete_companion(mixed.id, "c1", "printed and handed out", ACTOR)
    memory_service.drop_companion(mixed.id, "c2", reason_data("the card covers it"), ACTOR)
    stepped = drive_to(memory_service, "measured")
    memory_service.acknowledge(stepped.id, emailed_steps(), ACTOR)
    clock.set(datetime(2027, 12, 30, 9, tzinfo=UTC))
    assert memory_service.remind_owners(ACTOR, timedelta(days=3)) == {"reminded": 2, "conflicts": 0}
    grouped = drive_to(memory_service, "delivered")
    memory_service.set_roster(grouped.id, roster_data(2), ACTOR)  # m2 asks the learners: the roster
    clock.set(grouped.checkpoint("m2:P1D").due_at)
    memory_service.send_due_checkpoints(ACTOR, timedelta(days=14))
    memory_service.answer(grouped.id, "m2:P1D", "learner1@learners.example.org", {"value": 3}, ACTOR, via="reply")
    memory_service.answer(grouped.id, "m2:P1D", "learner1@learners.example.org", {"value": 4}, ACTOR, via="reply")
    memory_service.answer(grouped.id, "m2:P1D", "learner2@learners.example.org", {"value": 5}, ACTOR, via="link")
    clock.set(answered.checkpoint("m1:P30D").due_at)
    memory_service.send_due_checkpoints(ACTOR, timedelta(days=365))  # answered's m1:P30D goes out …
    clock.advance(timedelta(days=15))  # past its response window (14 days after due)
    assert memory_service.flag_unanswered(ACTOR, timedelta(0), 0) >= 1  # … and stalls: checkpoint_stalled
    records = [r for rid in (full.id, designed.id, followed.id, declined.id, redirected.id, revised.id,
                             asked.id, answered.id, mixed.id, stepped.id, grouped.id)
               for r in memory_service.history(rid)]
    seen = set()
    for record in records:
        event = ev.read(record.type, record.payload, record.from_state)
        assert type(event) is ev.EVENTS[record.type]
        assert audit.canonical_json(event.payload) == audit.canonical_json(record.payload)
        assert (event.trigger, event.from_state, event.to_state) == (record.trigger, record.from_state,
                                                                     record.to_state)
        seen.add(record.type)
    assert set(ev.EVENTS) - seen == {"email_sent", "email_bounced", "invite_sent"}  # written by the mail relay


def test_reading_an_unknown_or_misfit_row_fails_loudly() -> None:
    with pytest.raises(ev.UnknownEvent):
        ev.read("teleported", {})
    with pytest.raises(TypeError):
        ev.read("note_added", {"text": "x", "colour": "red"})
    with pytest.raises(TypeError):
        ev.read("note_added", {})
    with pytest.raises(ValueError):
        ev.read("diagnosed", {"diagnosis": {}, "recommendations": []})  # no from_state
