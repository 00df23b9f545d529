"""Messages the domain asks to be sent.

The domain never sends anything: a transition *records* the notifications it
causes, the store writes them as outbox rows in the same transaction, and a
dispatcher (``flows``) renders and sends them through a connector later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipient:
    """One addressee: a display name and a validated e-mail address."""

    name: str
    email: str
    role: str = ""


@dataclass(frozen=True)
class Notification:
    """An e-mail (and optionally a calendar item) to send once.

    ``key`` is the idempotency key: the outbox holds at most one row per key, and
    the Message-ID of the sent mail is derived from it, so a retried enqueue or a
    retried send never produces a second message.

    ``template`` names a template (``intake_acknowledgement``,
    ``diagnosis_summary``, ``plan_approval_request``, ``survey``,
    ``survey_reminder``, ``results_report``, ``delivery_invite``,
    ``checkpoint_reminder``, ``request_cancelled``, ``request_declined``,
    ``redirect_assigned``, ``plan_changes_requested``); ``context`` holds the plain
    JSON-able data the template renders. ``calendar`` optionally describes an
    iCalendar item to attach (see ``CalendarItem``).
    """

    key: str
    request_id: int
    template: str
    to: tuple[Recipient, ...]
    subject: str
    context: dict[str, Any] = field(default_factory=dict)
    calendar: CalendarItem | None = None


@dataclass(frozen=True)
class CalendarItem:
    """A calendar event (VEVENT) or to-do (VTODO) attached to a notification.

    ``uid`` is deterministic (derived from the request and the item) so that a
    changed date updates the same event (``sequence`` grows) and a cancelled
    request cancels it (``method`` CANCEL). Times are ISO 8601 strings in UTC.
    """

    uid: str
    kind: str  # "event" | "todo"
    summary: str
    start: str  # ISO 8601 UTC, e.g. "2026-12-01T09:00:00+00:00"
    end: str | None = None  # events: end time; to-dos: due time
    description: str = ""
    organizer: Recipient | None = None  # None: the team's organizer (LDFLOW_ORGANIZER), filled in when sent
    location: str = ""
    attendees: tuple[Recipient, ...] = ()
    sequence: int = 0
    method: str = "REQUEST"  # "REQUEST" | "CANCEL"


def recipient(person: Any) -> Recipient:
    """A recipient from anything with ``name``, ``email`` and optionally ``role`` (a ``Person``)."""
    return Recipient(name=person.name, email=person.email, role=getattr(person, "role", ""))


def recipients(people: Iterable[Any]) -> list[Recipient]:
    """One recipient per address, the first mention winning, in order."""
    seen: dict[str, Recipient] = {}
    for p in people:
        seen.setdefault(p.email, recipient(p))
    return list(seen.values())
