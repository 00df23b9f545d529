"""Publishing delivery sessions and checkpoint to-dos to a CalDAV calendar.

Each ``CalendarItem`` lives at a deterministic resource name derived from
its UID (``<calendar>/<uid>.ics``), so publishing is an idempotent upsert:

* **create** - ``PUT`` with ``If-None-Match: *``: the server refuses (412)
  if the resource exists, so a retried create (the first one succeeded but
  its answer was lost) never makes a second event; we then compare and, if
  the content differs, update instead.
* **update** - ``GET`` the current version and its ETag; if the content
  differs, ``PUT`` with ``SEQUENCE`` one higher than the stored one (or the
  item's own, if higher) and ``If-Match: <etag>``, so a concurrent change
  is never silently overwritten (412 → re-read and retry).
* **cancel** - the event stays on the calendar with ``STATUS:CANCELLED`` and
  a higher SEQUENCE (like a METHOD:CANCEL invite does in attendees'
  calendars) rather than being deleted: the team still sees that a session
  was planned and cancelled. ``delete`` exists for clean-ups.

Transport: the ``caldav`` library's ``DAVClient`` (authentication, TLS,
MKCALENDAR) with explicit ``PUT``/``GET`` requests, because the conditional
headers must be exactly these; ``caldav``'s ``save(no_overwrite=True)``
decides per server whether to send ``If-None-Match`` or search first, which
would make the "no duplicate on retry" guarantee depend on feature guesses.

Stored objects carry no METHOD (RFC 4791 section 4.1).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from icalendar import Calendar

from connectors.calendar.ics import build_calendar
from connectors.ports import PublishResult
from states.notifications import CalendarItem

__all__ = ["CaldavError", "CaldavPublisher", "PublishResult", "fingerprint", "sequence_of", "stored_object",
           "with_sequence"]

_SIGNIFICANT = ("DTSTART", "DTEND", "DUE", "SUMMARY", "DESCRIPTION", "STATUS", "ORGANIZER")


class CaldavError(Exception):
    """The CalDAV server refused or could not be reached."""


def resource_name(uid: str) -> str:
    """The resource name for a UID: readable, URL-safe, deterministic."""
    safe = re.sub(r"[^A-Za-z0-9._@-]", "_", uid)
    if safe != uid:
        import hashlib

        safe = f"{safe[:80]}-{hashlib.sha256(uid.encode()).hexdigest()[:12]}"
    return quote(safe, safe="@._-") + ".ics"


def _component(cal: Calendar) -> Any:
    for comp in cal.walk():
        if comp.name in ("VEVENT", "VTODO"):
            return comp
    raise CaldavError("calendar object holds no VEVENT or VTODO")


def fingerprint(cal: Calendar) -> tuple[str, ...]:
    """What decides whether a stored object must be rewritten (not DTSTAMP, not SEQUENCE)."""
    comp = _component(cal)
    values = [comp.name]
    for prop in _SIGNIFICANT:
        value = comp.get(prop)
        if value is None:
            values.append("")
        elif hasattr(value, "dt"):
            values.append(str(value.to_ical()))
        else:
            values.append(str(value))
    attendees = comp.get("ATTENDEE") or []
    if not isinstance(attendees, list):
        attendees = [attendees]
    values.append(",".join(sorted(str(a).lower() for a in attendees)))
    return tuple(values)


def sequence_of(cal: Calendar) -> int:
    """The stored object's SEQUENCE (0 when it has none)."""
    value = _component(cal).get("SEQUENCE")
    return int(value) if value is not None else 0


def with_sequence(item: CalendarItem, sequence: int, cancelled: bool = False) -> CalendarItem:
    """``item`` at ``sequence``, cancelled or not."""
    from dataclasses import replace

    return replace(item, sequence=sequence, method="CANCEL" if cancelled else "REQUEST")


def stored_object(item: CalendarItem, dtstamp: datetime | None = None) -> Calendar:
    """``item`` as a calendar object to store (no METHOD)."""
    return build_calendar(item, method="", dtstamp=dtstamp)


class CaldavPublisher:
    """Publishes ``CalendarItem``s to one calendar collection (``url``)."""

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 30.0,
        verify: bool | str = True,
        auth_type: str | None = None,
        client: Any = None,
    ) -> None:
        from caldav.davclient import DAVClient

        self.url = url if url.endswith("/") else url + "/"
        self.client = client or DAVClient(
            url=self.url,
            username=username,
            password=password,
            timeout=int(max(1, timeout)),
            ssl_verify_cert=verify,
            enable_rfc6764=False,
            auth_type=auth_type,
        )

    # --- plumbing -------------------------------------------------------------------------------

    def _request(self, url: str, method: str, body: str = "", headers: dict[str, str] | None = None) -> Any:
        try:
            return self.client.request(url, method, body, headers or {})
        except Exception as exc:
            raise CaldavError(f"CalDAV {method} {url}: {type(exc).__name__}: {exc}") from exc

    def href(self, uid: str) -> str:
        """The resource URL of ``uid``."""
        return self.url + resource_name(uid)

    def ensure_calendar(self) -> None:
        """Create the calendar collection if it does not exist (MKCALENDAR)."""
        response = self._request(self.url, "PROPFIND", "", {"Depth": "0"})
        if response.status in (200, 207):
            return
        if response.status != 404:
            raise CaldavError(f"cannot read calendar {self.url}: HTTP {response.status}")
        created = self._request(self.url, "MKCALENDAR")
        if created.status not in (200, 201):
            raise CaldavError(f"cannot create calendar {self.url}: HTTP {created.status}")

    def get(self, uid: str) -> tuple[Calendar, str | None] | None:
        """The stored calendar object for ``uid`` and its ETag, or None."""
        response = self._request(self.href(uid), "GET")
        if response.status == 404:
            return None
        if response.status != 200:
            raise CaldavError(f"GET {self.href(uid)}: HTTP {response.status}")
        text = response.raw
        return Calendar.from_ical(text), response.headers.get("ETag")

    def _put(self, uid: str, cal: Calendar, condition: dict[str, str]) -> tuple[int, str | None]:
        headers = {"Content-Type": "text/calendar; charset=utf-8", **condition}
        response = self._request(self.href(uid), "PUT", cal.to_ical().decode("utf-8"), headers)
        if response.status in (200, 201, 204):
            return response.status, response.headers.get("ETag")
        if response.status == 412:
            return 412, None
        raise CaldavError(f"PUT {self.href(uid)}: HTTP {response.status} {getattr(response, 'reason', '')}")

    # --- operations -----------------------------------------------------------------------------

    def publish(self, item: CalendarItem, *, dtstamp: datetime | None = None) -> PublishResult:
        """Create or update ``item`` (or cancel it when ``item.method`` is CANCEL)."""
        if item.method.upper() == "CANCEL":
            return self.cancel(item, dtstamp=dtstamp)
        for _ in range(3):
            existing = self.get(item.uid)
            if existing is None:
                status, etag = self._put(item.uid, stored_object(item, dtstamp), {"If-None-Match": "*"})
                if status != 412:
                    return PublishResult("created", item.uid, item.sequence, etag)
                continue  # created meanwhile (or a retried create): compare with what is there
            result = self._update(item, existing, dtstamp, cancelled=False)
            if result is not None:
                return result
        raise CaldavError(f"{item.uid}: the event kept changing underneath us (3 conflicting writes)")

    create = publish

    def cancel(self, item: CalendarItem, *, dtstamp: datetime | None = None) -> PublishResult:
        """Mark the stored event/to-do CANCELLED (SEQUENCE+1); nothing to do if absent."""
        for _ in range(3):
            existing = self.get(item.uid)
            if existing is None:
                return PublishResult("absent", item.uid, item.sequence)
            result = self._update(item, existing, dtstamp, cancelled=True)
            if result is not None:
                return result
        raise CaldavError(f"{item.uid}: the event kept changing underneath us (3 conflicting writes)")

    def _update(
        self,
        item: CalendarItem,
        existing: tuple[Calendar, str | None],
        dtstamp: datetime | None,
        *,
        cancelled: bool,
    ) -> PublishResult | None:
        stored, etag = existing
        current = sequence_of(stored)
        wanted = stored_object(with_sequence(item, current, cancelled), dtstamp)
        if fingerprint(wanted) == fingerprint(stored):
            return PublishResult("unchanged", item.uid, current, etag)
        sequence = max(item.sequence, current + 1)
        new = stored_object(with_sequence(item, sequence, cancelled), dtstamp)
        condition = {"If-Match": etag} if etag else {}
        status, new_etag = self._put(item.uid, new, condition)
        if status == 412:
            return None  # changed since we read it: read again
        return PublishResult("cancelled" if cancelled else "updated", item.uid, sequence, new_etag)

    def delete(self, uid: str) -> bool:
        """Remove the resource; False if it did not exist."""
        response = self._request(self.href(uid), "DELETE")
        if response.status == 404:
            return False
        if response.status not in (200, 204):
            raise CaldavError(f"DELETE {self.href(uid)}: HTTP {response.status}")
        return True

    def uids(self) -> list[str]:
        """UIDs of every event and to-do in the calendar (for checks and tests)."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:prop><C:calendar-data/></D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter>'
            "</C:calendar-query>"
        )
        response = self._request(
            self.url, "REPORT", body, {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
        )
        if response.status not in (200, 207):
            raise CaldavError(f"REPORT {self.url}: HTTP {response.status}")
        found = re.findall(r"^UID:(.+?)\r?$", response.raw, flags=re.MULTILINE)
        return sorted(u.strip() for u in found)


if TYPE_CHECKING:  # mypy checks the adapter against the port, parameter and return types included
    from connectors.ports import CalendarPublisher

    _publisher: type[CalendarPublisher] = CaldavPublisher
