"""In-memory fakes of the mail and calendar ports: ``InMemorySender``, ``InMemoryInbox``, ``InMemoryCalendar``."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from icalendar import Calendar

from connectors.calendar.caldav_client import CaldavError, fingerprint, sequence_of, stored_object, with_sequence
from connectors.email.addresses import validate_address
from connectors.email.config import InboundLimits
from connectors.email.inbound import parse_message
from connectors.email.smtp import envelope_recipients, message_id_of
from connectors.ports import (
    InboundItem,
    InboundRef,
    PublishResult,
    Refusal,
    SendError,
    SendResult,
)
from states.notifications import CalendarItem

if TYPE_CHECKING:
    from connectors import ports

__all__ = ["InMemoryCalendar", "InMemoryInbox", "InMemorySender"]

# --- mail out, mail in, calendar ------------------------------------------------------------------


class InMemorySender:
    """The ``Sender`` port in a list; can be told to refuse or fail.

    ``refuse[address] = Refusal(550, "...")`` refuses that recipient
    (4xx codes count as temporary); ``failures`` is a queue of exceptions
    raised by the next ``send`` calls, one each.
    """

    idempotent = False

    def __init__(self) -> None:
        self.sent: list[tuple[EmailMessage, tuple[str, ...]]] = []
        self.refuse: dict[str, Refusal] = {}
        self.failures: list[SendError] = []
        self._lock = threading.Lock()

    @property
    def messages(self) -> list[EmailMessage]:
        """The messages accepted so far, in order."""
        return [m for m, _ in self.sent]

    def deliveries(self, address: str) -> list[EmailMessage]:
        """Messages ``address`` received."""
        return [m for m, rcpts in self.sent if address.lower() in (r.lower() for r in rcpts)]

    def send(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> SendResult:
        """Record the message for the recipients not refused."""
        message_id = message_id_of(message)
        with self._lock:
            if self.failures:
                raise self.failures.pop(0)
            targets = list(recipients) if recipients is not None else envelope_recipients(message)
            accepted: list[str] = []
            permanent: dict[str, Refusal] = {}
            temporary: dict[str, Refusal] = {}
            for rcpt in [validate_address("recipient", a) for a in targets]:
                refusal = self.refuse.get(rcpt.lower()) or self.refuse.get(rcpt)
                if refusal is None:
                    accepted.append(rcpt)
                elif 400 <= refusal.code < 500:
                    temporary[rcpt] = refusal
                else:
                    permanent[rcpt] = refusal
            if accepted:
                self.sent.append((message, tuple(accepted)))
            return SendResult(message_id, tuple(accepted), permanent, temporary)


class InMemoryInbox:
    """The ``InboundSource`` port as a fake mailbox, with ``ImapSource``'s ``fetch_new``/``mark_seen``."""

    def __init__(self, source: str = "imap:INBOX", uidvalidity: int = 1, limits: InboundLimits | None = None) -> None:
        self.source = source
        self.uidvalidity = uidvalidity
        self.limits = limits or InboundLimits()
        self.messages: dict[int, bytes] = {}
        self.seen: set[int] = set()
        self._next_uid = 1

    def add(self, raw: bytes) -> int:
        """Deliver a message; returns its UID."""
        uid = self._next_uid
        self._next_uid += 1
        self.messages[uid] = raw
        return uid

    def renumber(self) -> None:
        """Simulate a UIDVALIDITY change: new UIDVALIDITY, new UIDs, flags lost."""
        self.uidvalidity += 1
        old = [self.messages[u] for u in sorted(self.messages)]
        self.messages.clear()
        self.seen.clear()
        for raw in old:
            self.add(raw)

    def fetch_new(
        self, is_seen: Callable[[InboundRef], bool] | None = None, limit: int | None = None
    ) -> Iterator[InboundItem]:
        """Unseen messages not recorded yet."""
        known: list[InboundItem] = []
        yielded = 0
        for uid in sorted(self.messages):
            if uid in self.seen:
                continue
            message = parse_message(self.messages[uid], self.limits)
            ref = InboundRef(self.source, message.message_id, self.uidvalidity, uid, message.content_digest)
            if is_seen is not None and is_seen(ref):
                known.append(InboundItem(ref=ref, raw=b""))
                continue
            if limit is not None and yielded >= limit:
                break
            yielded += 1
            yield InboundItem(ref=ref, raw=self.messages[uid], message=message)
        self.mark_seen(known)

    def mark_seen(self, items: Iterable[InboundItem]) -> int:
        """Flag items seen (same UIDVALIDITY only)."""
        uids = {i.ref.uid for i in items if i.ref.uid is not None and i.ref.uidvalidity == self.uidvalidity}
        self.seen |= uids
        return len(uids)

    def acknowledge(self, item: InboundItem, status: str, reason: str | None = None) -> None:
        """The ``InboundSource`` port's hook."""
        self.mark_seen([item])


@dataclasses.dataclass
class InMemoryCalendar:
    """The ``CalendarPublisher`` port with ``CaldavPublisher``'s semantics, for unit tests.

    ``exists=False`` is a calendar not created yet: publishing to it or listing it fails with
    ``CaldavError`` (as the server refuses) until ``ensure_calendar``.
    """

    objects: dict[str, Calendar] = dataclasses.field(default_factory=dict)
    puts: int = 0
    exists: bool = True

    def ensure_calendar(self) -> None:
        """Create the calendar if it does not exist."""
        self.exists = True

    def _require(self, what: str) -> None:
        if not self.exists:
            raise CaldavError(f"{what}: the calendar does not exist")

    def publish(self, item: CalendarItem, *, dtstamp: datetime | None = None) -> PublishResult:
        """Create or update (or cancel) ``item``."""
        if item.method.upper() == "CANCEL":
            return self.cancel(item, dtstamp=dtstamp)
        stored = self.objects.get(item.uid)
        if stored is None:
            self._require(f"PUT {item.uid}")
            self.objects[item.uid] = stored_object(item, dtstamp)
            self.puts += 1
            return PublishResult("created", item.uid, item.sequence)
        return self._update(item, stored, dtstamp, cancelled=False)

    create = publish

    def cancel(self, item: CalendarItem, *, dtstamp: datetime | None = None) -> PublishResult:
        """Mark the stored item CANCELLED."""
        stored = self.objects.get(item.uid)
        if stored is None:
            return PublishResult("absent", item.uid, item.sequence)
        return self._update(item, stored, dtstamp, cancelled=True)

    def _update(
        self, item: CalendarItem, stored: Calendar, dtstamp: datetime | None, *, cancelled: bool
    ) -> PublishResult:
        current = sequence_of(stored)
        if fingerprint(stored_object(with_sequence(item, current, cancelled), dtstamp)) == fingerprint(stored):
            return PublishResult("unchanged", item.uid, current)
        sequence = max(item.sequence, current + 1)
        self.objects[item.uid] = stored_object(with_sequence(item, sequence, cancelled), dtstamp)
        self.puts += 1
        return PublishResult("cancelled" if cancelled else "updated", item.uid, sequence)

    def get(self, uid: str) -> tuple[Calendar, str | None] | None:
        """The stored object, or None."""
        stored = self.objects.get(uid)
        return (stored, None) if stored is not None else None

    def uids(self) -> list[str]:
        """Stored UIDs."""
        self._require("REPORT")
        return sorted(self.objects)


if TYPE_CHECKING:  # mypy checks each fake against its port, parameter and return types included
    _sender: type[ports.Sender] = InMemorySender
    _inbox: type[ports.InboundSource] = InMemoryInbox
    _calendar: type[ports.CalendarPublisher] = InMemoryCalendar


