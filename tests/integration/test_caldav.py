"""CalDAV publishing against a real Radicale started on loopback."""

from __future__ import annotations

from dataclasses import replace

import pytest
from icalendar import Calendar

from connectors.calendar.caldav_client import CaldavError, CaldavPublisher
from connectors.calendar.ics import check_no_floating_times
from states.notifications import CalendarItem, Recipient
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import (
    Radicale,
)

# fixtures shared with the other mail/calendar test modules
radicale = cm.radicale
radicale_server = cm.radicale_server

ITEM = CalendarItem(
    uid="ldflow-7-delivery@ldflow",
    kind="event",
    summary="Negotiation workshop",
    start="2026-12-01T09:00:00+00:00",
    end="2026-12-01T12:00:00+00:00",
    description="Bring two real deals",
    organizer=Recipient("L&D team", "ld-team@example.org"),
    attendees=(Recipient("Dana", "dana@example.org"), Recipient("Sam", "sam@example.org")),
)


@pytest.fixture
def publisher(radicale: Radicale) -> CaldavPublisher:
    pub = CaldavPublisher(radicale.url, radicale.username, radicale.password, timeout=10, auth_type="basic")
    pub.ensure_calendar()
    return pub


def stored(pub: CaldavPublisher, uid: str) -> Calendar:
    found = pub.get(uid)
    assert found is not None
    return found[0]


def event(cal: Calendar):  # type: ignore[no-untyped-def]
    [vevent] = cal.walk("VEVENT")
    return vevent


def test_create_update_cancel(publisher: CaldavPublisher) -> None:
    created = publisher.publish(ITEM)
    assert created.action == "created"
    cal = stored(publisher, ITEM.uid)
    assert "METHOD" not in cal  # RFC 4791: no METHOD in stored objects
    assert check_no_floating_times(cal) == []
    assert int(event(cal)["SEQUENCE"]) == 0

    moved = replace(ITEM, start="2026-12-03T09:00:00+00:00", end="2026-12-03T12:00:00+00:00")
    updated = publisher.publish(moved)
    assert (updated.action, updated.sequence) == ("updated", 1)
    ev = event(stored(publisher, ITEM.uid))
    assert ev["DTSTART"].dt.isoformat() == "2026-12-03T09:00:00+00:00"
    assert int(ev["SEQUENCE"]) == 1

    cancelled = publisher.publish(replace(moved, method="CANCEL"))
    assert (cancelled.action, cancelled.sequence) == ("cancelled", 2)
    ev = event(stored(publisher, ITEM.uid))
    assert str(ev["STATUS"]) == "CANCELLED" and int(ev["SEQUENCE"]) == 2
    assert publisher.uids() == [ITEM.uid]  # one event throughout


def test_retried_create_makes_no_duplicate(publisher: CaldavPublisher) -> None:
    first = publisher.publish(ITEM)
    # the first PUT succeeded but its answer was "lost": the caller retries
    again = publisher.publish(ITEM)
    third = publisher.create(ITEM)
    assert first.action == "created" and again.action == "unchanged" and third.action == "unchanged"
    assert publisher.uids() == [ITEM.uid]
    assert int(event(stored(publisher, ITEM.uid))["SEQUENCE"]) == 0


def test_create_is_conditional_if_none_match(publisher: CaldavPublisher) -> None:
    from connectors.calendar.caldav_client import stored_object

    publisher.publish(ITEM)
    status, _ = publisher._put(ITEM.uid, stored_object(ITEM), {"If-None-Match": "*"})
    assert status == 412  # the server refuses a blind second create


def test_update_with_a_stale_etag_is_refused_then_reread(publisher: CaldavPublisher) -> None:
    from connectors.calendar.caldav_client import stored_object

    publisher.publish(ITEM)
    _, etag = publisher.get(ITEM.uid) or (None, None)
    assert etag
    # someone else edits it
    other = replace(ITEM, summary="Negotiation workshop (room changed)", sequence=1)
    publisher.publish(other)
    status, _ = publisher._put(ITEM.uid, stored_object(replace(ITEM, sequence=5)), {"If-Match": etag})
    assert status == 412
    # publish() re-reads and wins cleanly
    final = publisher.publish(replace(ITEM, summary="Negotiation workshop, day 1"))
    assert final.action == "updated" and final.sequence == 2


def test_todo_reminder_for_an_owner(publisher: CaldavPublisher) -> None:
    todo = CalendarItem(uid="ldflow-7-m1-P30D-todo@ldflow", kind="todo", summary="Collect discovery questions (P30D)",
                        start="2027-01-01T09:00:00+00:00", end="2027-01-04T09:00:00+00:00",
                        organizer=Recipient("Sam", "sam@example.org"), attendees=(Recipient("Olu", "olu@example.org"),))
    assert publisher.publish(todo).action == "created"
    [vtodo] = stored(publisher, todo.uid).walk("VTODO")
    assert vtodo["DUE"].dt.isoformat() == "2027-01-04T09:00:00+00:00"
    assert publisher.cancel(todo).action == "cancelled"
    assert publisher.cancel(replace(todo, uid="never-published")).action == "absent"


def test_wrong_password_is_a_clear_error(radicale: Radicale) -> None:
    pub = CaldavPublisher(radicale.url, radicale.username, "wrong", timeout=10)
    with pytest.raises(CaldavError):
        pub.ensure_calendar()


def test_relay_publishes_invites_to_radicale(radicale: Radicale, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from connectors.db import tables
    from connectors.db.engine import make_engine
    from connectors.email.smtp import FileSender
    from flows.relay import relay_outbox
    from tests.integration.conftest_mail import T0, enqueue, make_notification, renderer

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    tables.metadata.create_all(engine)
    pub = CaldavPublisher(radicale.url, radicale.username, radicale.password, timeout=10, auth_type="basic")
    pub.ensure_calendar()
    ctx = {"request": {"title": "Sales coaching"}}
    enqueue(engine,
            make_notification("7:delivery_invite:v1", template="delivery_invite", calendar=ITEM, context=ctx),
            make_notification("7:delivery_invite:v2", template="delivery_invite", context=ctx,
                              calendar=replace(ITEM, start="2026-12-08T09:00:00+00:00",
                                               end="2026-12-08T12:00:00+00:00", sequence=1)))
    summary = relay_outbox(engine, FileSender(tmp_path / "outbox"), renderer(), T0, "r", calendar=pub)
    assert (summary.sent, summary.published) == (2, 2)
    ev = event(stored(pub, ITEM.uid))
    assert ev["DTSTART"].dt.isoformat() == "2026-12-08T09:00:00+00:00" and int(ev["SEQUENCE"]) == 1
    assert len(list((tmp_path / "outbox").glob("*.ics"))) == 2
    engine.dispose()
