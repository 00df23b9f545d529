"""iCalendar output: round-trips, never floating, TZID => VTIMEZONE, under any local TZ."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from icalendar import Calendar, Event

from connectors.calendar.ics import (
    FloatingTimeError,
    build_calendar,
    check_no_floating_times,
    parse_utc,
    to_ics,
    with_organizer,
)
from connectors.email.addresses import HeaderValueError
from connectors.testing import InMemoryCalendar
from states.notifications import CalendarItem, Recipient


@pytest.fixture(autouse=True, params=["UTC", "Pacific/Chatham"])
def local_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs under TZ=UTC and TZ=Pacific/Chatham (UTC+12:45/+13:45)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


ORG = Recipient("L&D team", "ld-team@example.org")
EVENT = CalendarItem(
    uid="ldflow-7-delivery@ldflow",
    kind="event",
    summary="Negotiation workshop",
    start="2026-12-01T09:00:00+13:45",  # a Chatham wall time, given with its offset
    end="2026-12-01T12:00:00+13:45",
    description="Bring two real deals;\nand a pen, please",
    organizer=ORG,
    attendees=(Recipient('Dana "DJ" Smith, Jr.', "dana@example.org"), Recipient("Zoë", "zoe@example.org")),
    sequence=3,
)
TODO = CalendarItem(uid="ldflow-7-m1-P30D-todo@ldflow", kind="todo", summary="Collect the 30-day result",
                    start="2027-01-01T09:00:00Z", end="2027-01-04T09:00:00Z", organizer=ORG,
                    attendees=(Recipient("Olu", "olu@example.org"),))
STAMP = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_local_timezone_is_really_switched(local_tz: str) -> None:
    expected = 0 if local_tz == "UTC" else 12 * 3600 + 45 * 60
    assert -time.timezone == expected


@pytest.mark.parametrize("item", [EVENT, TODO], ids=["event", "todo"])
@pytest.mark.parametrize("method", ["REQUEST", "CANCEL", "PUBLISH", ""])
def test_round_trips_through_icalendar(item: CalendarItem, method: str) -> None:
    data = to_ics(item, method=method, dtstamp=STAMP)
    parsed = Calendar.from_ical(data)
    assert parsed.to_ical() == data
    assert check_no_floating_times(parsed) == []
    if method:
        assert str(parsed["METHOD"]) == method
    else:
        assert "METHOD" not in parsed
    [component] = [c for c in parsed.walk() if c.name in ("VEVENT", "VTODO")]
    assert str(component["UID"]) == item.uid
    assert int(component["SEQUENCE"]) == item.sequence
    assert component["DTSTAMP"].dt == STAMP


def test_times_are_utc_with_z_never_local() -> None:
    text = to_ics(EVENT, dtstamp=STAMP).decode()
    assert "DTSTART:20261130T191500Z" in text  # 09:00 at +13:45 is 19:15Z the day before
    assert "DTEND:20261130T221500Z" in text
    assert "TZID" not in text and "VTIMEZONE" not in text


def test_floating_input_is_refused() -> None:
    with pytest.raises(FloatingTimeError, match="no UTC offset"):
        to_ics(replace(EVENT, start="2026-12-01T09:00:00"))
    with pytest.raises(FloatingTimeError):
        parse_utc(datetime(2026, 12, 1, 9, 0))
    assert parse_utc("2026-12-01T09:00:00-05:00") == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_checker_catches_floating_times_and_tzid_without_vtimezone() -> None:
    cal = Calendar()
    cal.add("prodid", "-//test//")
    cal.add("version", "2.0")
    ev = Event()
    ev.add("uid", "x")
    ev.add("dtstamp", STAMP)
    ev.add("dtstart", datetime(2026, 12, 1, 9, 0))  # floating
    cal.add_component(ev)
    assert any("floating" in p for p in check_no_floating_times(cal))

    from zoneinfo import ZoneInfo

    cal2 = Calendar()
    cal2.add("prodid", "-//test//")
    cal2.add("version", "2.0")
    ev2 = Event()
    ev2.add("uid", "y")
    ev2.add("dtstamp", STAMP)
    ev2.add("dtstart", datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Pacific/Chatham")))
    cal2.add_component(ev2)
    parsed = Calendar.from_ical(cal2.to_ical())
    assert any("without a VTIMEZONE" in p for p in check_no_floating_times(parsed))
    cal2.add_missing_timezones()
    assert check_no_floating_times(Calendar.from_ical(cal2.to_ical())) == []


def test_attendees_and_organizer_are_mailto_with_cn() -> None:
    parsed = Calendar.from_ical(to_ics(EVENT, dtstamp=STAMP))
    [event] = parsed.walk("VEVENT")
    attendees = event["ATTENDEE"]
    assert [str(a) for a in attendees] == ["mailto:dana@example.org", "mailto:zoe@example.org"]
    assert [str(a.params["CN"]) for a in attendees] == ['Dana "DJ" Smith, Jr.', "Zoë"]
    assert str(event["ORGANIZER"]) == "mailto:ld-team@example.org"
    assert str(event["ORGANIZER"].params["CN"]) == "L&D team"
    assert str(event["DESCRIPTION"]) == EVENT.description


def test_cancel_sets_status_cancelled() -> None:
    [event] = Calendar.from_ical(to_ics(replace(EVENT, method="CANCEL"), dtstamp=STAMP)).walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED"
    [todo] = Calendar.from_ical(to_ics(replace(TODO, method="CANCEL"), dtstamp=STAMP)).walk("VTODO")
    assert str(todo["STATUS"]) == "CANCELLED"


def test_todo_has_a_due_time_and_a_reminder_alarm() -> None:
    [todo] = Calendar.from_ical(to_ics(TODO, dtstamp=STAMP)).walk("VTODO")
    assert todo["DUE"].dt == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    assert [a["ACTION"] for a in todo.walk("VALARM")] == ["DISPLAY"]


@pytest.mark.parametrize("bad", ["Dana\r\nATTENDEE:mailto:evil@example.com", "Dana\x00", "Dana\nX"])
def test_injection_in_names_is_refused(bad: str) -> None:
    with pytest.raises(HeaderValueError):
        to_ics(replace(EVENT, attendees=(Recipient(bad, "dana@example.org"),)))
    with pytest.raises(HeaderValueError):
        to_ics(replace(EVENT, summary=bad))


def test_location_is_written_when_there_is_one() -> None:
    [event] = Calendar.from_ical(to_ics(replace(EVENT, location="Room 4, 2nd floor; Lisbon"),
                                        dtstamp=STAMP)).walk("VEVENT")
    assert str(event["LOCATION"]) == "Room 4, 2nd floor; Lisbon"
    [event] = Calendar.from_ical(to_ics(EVENT, dtstamp=STAMP)).walk("VEVENT")
    assert "LOCATION" not in event
    with pytest.raises(HeaderValueError):
        to_ics(replace(EVENT, location="Room 4\r\nATTENDEE:mailto:x@example.org"))


def test_with_organizer_fills_in_only_a_missing_organizer() -> None:
    team = Recipient("L&D", "ld@example.org")
    assert with_organizer(replace(EVENT, organizer=None), team).organizer == team
    assert with_organizer(EVENT, team).organizer == ORG
    assert with_organizer(replace(EVENT, organizer=None), None).organizer is None


def test_imip_request_needs_an_organizer_and_a_sane_item() -> None:
    with pytest.raises(ValueError, match="organizer"):
        to_ics(replace(EVENT, organizer=None))
    assert b"METHOD" not in to_ics(replace(EVENT, organizer=None), method="")
    with pytest.raises(ValueError, match="after start"):
        to_ics(replace(EVENT, end=EVENT.start))
    with pytest.raises(ValueError, match="kind"):
        to_ics(replace(EVENT, kind="meeting"))


def test_same_item_same_output_apart_from_dtstamp() -> None:
    assert to_ics(EVENT, dtstamp=STAMP) == to_ics(EVENT, dtstamp=STAMP)
    other = to_ics(EVENT, dtstamp=STAMP + timedelta(hours=1))
    assert other != to_ics(EVENT, dtstamp=STAMP)
    assert build_calendar(EVENT).walk("VEVENT")[0]["DTSTAMP"].dt.tzinfo is not None


def test_offsets_in_any_zone_give_the_same_utc_instant() -> None:
    chatham = timezone(timedelta(hours=13, minutes=45))
    a = replace(EVENT, start=datetime(2026, 12, 1, 9, 0, tzinfo=chatham).isoformat(),
                end=datetime(2026, 12, 1, 12, 0, tzinfo=chatham).isoformat())
    b = replace(EVENT, start="2026-11-30T19:15:00+00:00", end="2026-11-30T22:15:00Z")
    assert to_ics(a, dtstamp=STAMP) == to_ics(b, dtstamp=STAMP)


def test_in_memory_calendar_semantics() -> None:
    cal = InMemoryCalendar()
    assert cal.publish(EVENT).action == "created"
    assert cal.publish(EVENT).action == "unchanged"
    moved = replace(EVENT, start="2026-12-02T09:00:00+00:00", end="2026-12-02T10:00:00+00:00")
    assert cal.publish(moved).sequence == 4
    assert cal.publish(replace(moved, method="CANCEL")).action == "cancelled"
    assert cal.uids() == [EVENT.uid] and cal.puts == 3
