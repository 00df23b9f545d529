"""Delivery sessions: scheduling invites, rescheduling keeps the event (SEQUENCE grows), cancelling cancels it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from icalendar import Calendar

from connectors.calendar.ics import to_ics, with_organizer
from connectors.notification_codec import decode_notification
from connectors.testing import InMemoryStore
from flows.service import Service
from states.errors import InvalidInput, TransitionRefused
from states.notifications import Recipient
from tests.builders import ACTOR, drive_to, reason_data

SESSION: dict[str, Any] = {
    "id": "lab-1", "title": "Discovery practice lab", "start": "2026-04-01T09:00:00+02:00",
    "end": "2026-04-01T12:00:00+02:00", "location": "Room 3",
    "attendees": [{"name": "Sales team", "email": "sales@example.org"}],
}


def _invites(store: InMemoryStore) -> list[Any]:
    notes = [decode_notification(json.dumps(m.notification)) for m in store.outbox.values()]
    return [n for n in notes if n.calendar is not None]


def test_a_session_invites_its_attendees_with_a_utc_vevent(memory_service: Service,
                                                           memory_store: InMemoryStore) -> None:
    rid = drive_to(memory_service, "designed").id
    request = memory_service.schedule_session(rid, SESSION, ACTOR)
    assert [s.plan.id for s in request.sessions] == ["lab-1"]
    (invite,) = _invites(memory_store)
    assert invite.template == "delivery_invite"
    assert [r.email for r in invite.to] == ["sales@example.org"]
    item = invite.calendar
    assert (item.method, item.kind, item.sequence) == ("REQUEST", "event", 0)
    assert item.start == "2026-04-01T07:00:00+00:00"  # stored in UTC, never floating
    assert item.organizer is None  # not the sponsor: the team's organizer (LDFLOW_ORGANIZER) when sent
    cal = Calendar.from_ical(to_ics(with_organizer(item, Recipient("L&D", "ld@example.org"))))
    event = next(c for c in cal.walk("VEVENT"))
    assert str(cal["METHOD"]) == "REQUEST"
    assert event.decoded("DTSTART").utcoffset().total_seconds() == 0
    assert str(event["ORGANIZER"]).lower() == "mailto:ld@example.org"
    assert str(event["LOCATION"]) == "Room 3" and item.location == "Room 3"
    assert memory_service.history(rid)[-1].type == "session_scheduled"


def test_rescheduling_updates_the_same_event_and_cancelling_the_request_cancels_it(
        memory_service: Service, memory_store: InMemoryStore) -> None:
    rid = drive_to(memory_service, "designed").id
    memory_service.schedule_session(rid, SESSION, ACTOR)
    memory_service.schedule_session(rid, {**SESSION, "start": "2026-04-02T09:00:00+02:00",
                                          "end": "2026-04-02T12:00:00+02:00"}, ACTOR)
    memory_service.cancel(rid, reason_data("budget frozen"), ACTOR)
    items = sorted((n.calendar for n in _invites(memory_store)), key=lambda c: c.sequence)
    assert [(c.method, c.sequence) for c in items] == [("REQUEST", 0), ("REQUEST", 1), ("CANCEL", 2)]
    assert len({c.uid for c in items}) == 1
    assert items[1].start == "2026-04-02T07:00:00+00:00"
    types = [e.type for e in memory_service.history(rid)]
    assert types[-3:] == ["session_rescheduled", "cancelled", "session_cancelled"]
    assert memory_service.show(rid).sessions[0].cancelled


@pytest.mark.parametrize("state", ["received", "diagnosed", "delivered"])
def test_sessions_are_scheduled_only_once_designed_or_redirected(memory_service: Service,
                                                                 memory_store: InMemoryStore, state: str) -> None:
    rid = drive_to(memory_service, state).id
    before = memory_store.snapshot()
    with pytest.raises(TransitionRefused) as refused:
        memory_service.schedule_session(rid, SESSION, ACTOR)
    assert "designed or redirected" in str(refused.value)
    assert memory_store.snapshot() == before


@pytest.mark.parametrize(("change", "field"), [
    ({"start": "2026-04-01T09:00:00"}, "start"),           # a floating time
    ({"end": "2026-04-01T08:00:00+02:00"}, "end must be after start"),
    ({"title": ""}, "title"),
    ({"attendees": [{"name": "x", "email": "x@example.org(<y@example.com>"}]}, "attendees[0].email"),
])
def test_bad_sessions_are_refused_naming_the_field(memory_service: Service, memory_store: InMemoryStore,
                                                   change: dict[str, Any], field: str) -> None:
    rid = drive_to(memory_service, "redirected", path="redirect").id
    before = memory_store.snapshot()
    with pytest.raises(InvalidInput) as bad:
        memory_service.schedule_session(rid, {**SESSION, **change}, ACTOR)
    assert field in str(bad.value)
    assert memory_store.snapshot() == before
