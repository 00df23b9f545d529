"""The ``CalendarPublisher`` port's contract on the fake and on CalDAV against a real Radicale.

``test_caldav.py`` tests what only the server shows (conditional PUTs, stale ETags, the wrong
password); here the same publishing cases run on both, so the fake the unit tests use cannot
drift from the publisher production uses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from icalendar import Calendar

from connectors.calendar.caldav_client import CaldavError, CaldavPublisher
from connectors.ports import CalendarPublisher
from connectors.testing import InMemoryCalendar
from states.notifications import CalendarItem, Recipient
from tests.integration import conftest_mail as cm

radicale = cm.radicale
radicale_server = cm.radicale_server

EVENT = CalendarItem(
    uid="ldflow-9-delivery@ldflow",
    kind="event",
    summary="Coaching clinic",
    start="2026-12-01T09:00:00+00:00",
    end="2026-12-01T12:00:00+00:00",
    description="Bring one real call",
    organizer=Recipient("L&D team", "ld-team@example.org"),
    attendees=(Recipient("Dana", "dana@example.org"),),
)
TODO = CalendarItem(uid="ldflow-9-m1-P30D-todo@ldflow", kind="todo", summary="Collect the survey (P30D)",
                    start="2027-01-01T09:00:00+00:00", end="2027-01-04T09:00:00+00:00",
                    organizer=Recipient("Sam", "sam@example.org"))


@pytest.fixture(params=["memory", "caldav"])
def calendar(request: pytest.FixtureRequest) -> CalendarPublisher:
    """A calendar that does not exist yet."""
    if request.param == "memory":
        return InMemoryCalendar(exists=False)
    server = request.getfixturevalue("radicale")
    return CaldavPublisher(server.url, server.username, server.password, timeout=10, auth_type="basic")


@pytest.fixture
def ready(calendar: CalendarPublisher) -> CalendarPublisher:
    calendar.ensure_calendar()
    return calendar


def stored(calendar: CalendarPublisher, uid: str) -> Any:
    found = calendar.get(uid)
    assert found is not None
    cal, etag = found
    assert isinstance(cal, Calendar) and (etag is None or isinstance(etag, str))
    assert "METHOD" not in cal  # stored objects carry no METHOD
    [component] = [c for c in cal.walk() if c.name in ("VEVENT", "VTODO")]
    return component


def test_a_calendar_not_created_yet_refuses_items_until_ensured(calendar: CalendarPublisher) -> None:
    assert calendar.get(EVENT.uid) is None
    assert calendar.cancel(EVENT).action == "absent"
    with pytest.raises(CaldavError):
        calendar.publish(EVENT)
    with pytest.raises(CaldavError):
        calendar.uids()
    calendar.ensure_calendar()
    calendar.ensure_calendar()  # harmless when it exists
    assert calendar.uids() == []
    assert calendar.publish(EVENT).action == "created"


def test_publish_creates_then_leaves_unchanged_then_updates(ready: CalendarPublisher) -> None:
    created = ready.publish(EVENT)
    assert (created.action, created.uid, created.sequence) == ("created", EVENT.uid, 0)
    assert (ready.publish(EVENT).action, ready.publish(EVENT).sequence) == ("unchanged", 0)
    moved = replace(EVENT, start="2026-12-03T09:00:00+00:00", end="2026-12-03T12:00:00+00:00")
    updated = ready.publish(moved)
    assert (updated.action, updated.sequence) == ("updated", 1)
    event = stored(ready, EVENT.uid)
    assert event["DTSTART"].dt.isoformat() == "2026-12-03T09:00:00+00:00" and int(event["SEQUENCE"]) == 1
    # a higher SEQUENCE alone is no change; a changed item is published past the stored one and its own
    assert ready.publish(replace(moved, sequence=5)).action == "unchanged"
    renamed = ready.publish(replace(moved, summary="Coaching clinic, day 1", sequence=5))
    assert (renamed.action, renamed.sequence) == ("updated", 5)
    assert ready.uids() == [EVENT.uid]


def test_cancelling_keeps_the_item_marked_cancelled(ready: CalendarPublisher) -> None:
    ready.publish(EVENT)
    cancelled = ready.publish(replace(EVENT, method="CANCEL"))
    assert (cancelled.action, cancelled.sequence) == ("cancelled", 1)
    event = stored(ready, EVENT.uid)
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 1
    assert ready.cancel(EVENT).action == "unchanged"
    assert ready.cancel(replace(EVENT, uid="never-published@ldflow")).action == "absent"
    assert ready.uids() == [EVENT.uid]


def test_events_and_todos_live_side_by_side(ready: CalendarPublisher) -> None:
    assert ready.publish(TODO).action == "created"
    assert ready.publish(EVENT).action == "created"
    assert ready.uids() == sorted([EVENT.uid, TODO.uid])
    todo = stored(ready, TODO.uid)
    assert todo.name == "VTODO" and todo["DUE"].dt.isoformat() == "2027-01-04T09:00:00+00:00"
    assert ready.cancel(TODO).action == "cancelled"
    assert str(stored(ready, TODO.uid)["STATUS"]) == "CANCELLED"
    assert str(stored(ready, EVENT.uid)["STATUS"]) != "CANCELLED"
