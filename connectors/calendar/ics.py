"""iCalendar objects for ``CalendarItem``: iMIP invites, cancellations, to-dos.

Rules this module keeps:

* every DATE-TIME is written in UTC with a ``Z`` suffix - never a floating
  time, never a local time without its zone; an input time without an offset
  is refused (``FloatingTimeError``) rather than guessed;
* should a TZID ever appear (e.g. in a calendar that is re-serialised), its
  VTIMEZONE is added (``Calendar.add_missing_timezones``);
* the UID is the domain's deterministic ``CalendarItem.uid``, so an update
  (higher SEQUENCE) replaces the same event and a CANCEL cancels it;
* LOCATION is the session's location, when it has one;
* the ORGANIZER is the team's (``with_organizer``: LDFLOW_ORGANIZER, by default the
  mail's From), so accept/decline replies reach L&D, unless a session names its own;
* ORGANIZER and ATTENDEE are ``mailto:`` URIs with a CN, validated like mail
  headers (no CR/LF, one plain address).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from icalendar import Alarm, Calendar, Event, Todo, vCalAddress, vText

from connectors.email.addresses import validate_address, validate_header_text
from states.notifications import CalendarItem, Recipient

__all__ = [
    "PRODID",
    "FloatingTimeError",
    "build_calendar",
    "check_no_floating_times",
    "parse_utc",
    "to_ics",
    "with_organizer",
]

PRODID = "-//ldflow//ldflow calendar//EN"
_METHODS = ("REQUEST", "CANCEL", "PUBLISH")
_DATETIME_PROPS = ("DTSTART", "DTEND", "DUE", "DTSTAMP", "CREATED", "LAST-MODIFIED", "RECURRENCE-ID")


class FloatingTimeError(ValueError):
    """A time without a UTC offset: it would be read in each reader's local zone."""


def parse_utc(value: str | datetime, field: str = "time") -> datetime:
    """Parse an ISO 8601 time that carries an offset and return it in UTC.

    ``"2026-12-01T09:00:00+00:00"``, ``"...Z"`` and ``"...+13:45"`` are fine;
    ``"2026-12-01T09:00:00"`` (floating) raises ``FloatingTimeError``.
    """
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{field}: not an ISO 8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise FloatingTimeError(f"{field}: {value!s} has no UTC offset (floating times are not allowed)")
    return parsed.astimezone(UTC)


def _cal_address(field: str, who: Recipient, *, attendee: bool) -> vCalAddress:
    email = validate_address(field, who.email)
    address = vCalAddress(f"mailto:{email}")
    name = validate_header_text(f"{field} name", who.name or "", max_length=200).strip()
    if name:
        address.params["CN"] = vText(name)
    if attendee:
        address.params["ROLE"] = vText("REQ-PARTICIPANT")
        address.params["PARTSTAT"] = vText("NEEDS-ACTION")
        address.params["RSVP"] = vText("TRUE")
    return address


def build_calendar(
    item: CalendarItem,
    *,
    method: str | None = None,
    dtstamp: datetime | None = None,
) -> Calendar:
    """A VCALENDAR holding one VEVENT or VTODO for ``item``.

    ``method`` defaults to ``item.method`` (REQUEST or CANCEL); pass
    ``"PUBLISH"`` or ``""`` for CalDAV storage, where METHOD is not allowed
    (RFC 4791 section 4.1) - ``""`` leaves it out. A CANCEL (or an item with
    method CANCEL) gets ``STATUS:CANCELLED``.
    """
    chosen = _checked_method(item, method)
    cancelled = chosen == "CANCEL" or item.method.upper() == "CANCEL"
    uid = validate_header_text("calendar uid", item.uid, max_length=255).strip()
    if not uid:
        raise ValueError("calendar uid is empty")

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if chosen:
        cal.add("method", chosen)

    start = parse_utc(item.start, "calendar start")
    end = parse_utc(item.end, "calendar end") if item.end else None
    stamp = parse_utc(dtstamp, "dtstamp") if dtstamp is not None else datetime.now(UTC)
    stamp = stamp.replace(microsecond=0)
    summary = validate_header_text("calendar summary", item.summary, max_length=500)
    component = (_event(start, end, cancelled) if item.kind == "event"
                 else _todo(start, end, cancelled, summary))
    component.add("uid", uid)
    component.add("dtstamp", stamp)
    component.add("sequence", item.sequence)
    component.add("summary", summary)
    if item.description:
        component.add("description", item.description)
    location = validate_header_text("calendar location", item.location or "", max_length=500).strip()
    if location:
        component.add("location", location)
    if item.organizer is not None:
        component.add("organizer", _cal_address("calendar organizer", item.organizer, attendee=False))
    for index, attendee in enumerate(item.attendees):
        component.add("attendee", _cal_address(f"calendar attendee {index + 1}", attendee, attendee=True))
    if chosen in ("REQUEST", "CANCEL") and item.organizer is None:
        # RFC 5546 3.2.2 / 3.4.2: REQUEST and CANCEL need an ORGANIZER
        raise ValueError(f"an iMIP {chosen} needs an organizer")
    cal.add_component(component)
    cal.add_missing_timezones()
    return cal


def with_organizer(item: CalendarItem, organizer: Recipient | None) -> CalendarItem:
    """``item`` with ``organizer`` as its ORGANIZER unless it names its own (a session's organizer)."""
    if item.organizer is not None or organizer is None:
        return item
    return replace(item, organizer=organizer)


def _checked_method(item: CalendarItem, method: str | None) -> str:
    """The METHOD to write (upper case, "" for none), after checking the item's kind and sequence."""
    chosen = (item.method if method is None else method).upper()
    if chosen and chosen not in _METHODS:
        raise ValueError(f"calendar method must be one of {', '.join(_METHODS)}, got {chosen!r}")
    if item.kind not in ("event", "todo"):
        raise ValueError(f"calendar item kind must be 'event' or 'todo', got {item.kind!r}")
    if item.sequence < 0:
        raise ValueError("calendar sequence must not be negative")
    return chosen


def _event(start: datetime, end: datetime | None, cancelled: bool) -> Event:
    """A VEVENT's times and status (an hour long when no end is given)."""
    component = Event()
    if end is None:
        end = start + timedelta(hours=1)
    if end <= start:
        raise ValueError("calendar end must be after start")
    component.add("dtstart", start)
    component.add("dtend", end)
    component.add("transp", "OPAQUE")
    component.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return component


def _todo(start: datetime, end: datetime | None, cancelled: bool, summary: str) -> Todo:
    """A VTODO due at ``end`` (or ``start``), with a reminder at the due time unless cancelled."""
    component = Todo()
    due = end or start
    if due < start:
        raise ValueError("to-do due time must not be before its start")
    component.add("dtstart", start)
    component.add("due", due)
    component.add("status", "CANCELLED" if cancelled else "NEEDS-ACTION")
    if not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", summary)
        alarm.add("trigger", timedelta(0), parameters={"RELATED": "END"})
        component.add_component(alarm)
    return component


def to_ics(item: CalendarItem, *, method: str | None = None, dtstamp: datetime | None = None) -> bytes:
    """``build_calendar(...)`` serialised (CRLF line ends, folded at 75 octets)."""
    return bytes(build_calendar(item, method=method, dtstamp=dtstamp).to_ical())


def _walk_datetimes(cal: Calendar) -> Iterator[tuple[str, str, Any]]:
    for component in cal.walk():
        if component.name in ("VTIMEZONE", "STANDARD", "DAYLIGHT"):
            continue  # RFC 5545 3.6.5: onsets inside a VTIMEZONE are local times by definition
        for prop in _DATETIME_PROPS:
            if prop not in component:
                continue
            found: Any = component[prop]
            values: list[Any] = found if isinstance(found, list) else [found]
            for value in values:
                yield str(component.name), prop, value


def check_no_floating_times(cal: Calendar) -> list[str]:
    """Problems with times in ``cal``: floating times, TZIDs without VTIMEZONE.

    Returns a list of readable problems; empty means the calendar is fine.
    """
    problems: list[str] = []
    known_tzids = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
    for component_name, prop, value in _walk_datetimes(cal):
        params = getattr(value, "params", {})
        tzid = params.get("TZID") if params else None
        dt = getattr(value, "dt", None)
        if tzid:
            if str(tzid) not in known_tzids:
                problems.append(f"{component_name} {prop} uses TZID {tzid} without a VTIMEZONE")
            continue
        if isinstance(dt, datetime) and dt.tzinfo is None:
            problems.append(f"{component_name} {prop} is a floating time ({dt.isoformat()})")
    return problems
