"""The mail-out, mail-in and calendar ports (``SmtpSender``/``FileSender``, ``ImapSource``/``DropFolderSource``,
``CaldavPublisher``) and their data types."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

from connectors.email.inbound import InboundItem, InboundRef
from states.notifications import CalendarItem

if TYPE_CHECKING:  # the domain model pulls in pydantic, the calendar type icalendar: types only here
    from icalendar import Calendar


# --- mail out, mail in, calendar ------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A server's refusal of one recipient: the SMTP code and text."""

    code: int
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


@dataclass(frozen=True)
class SendResult:
    """What happened to each recipient of one message.

    ``accepted`` were taken by the server (delivery is now its job);
    ``refused_permanent`` must not be retried; ``refused_temporary`` may be
    retried later, to them alone.
    """

    message_id: str
    accepted: tuple[str, ...] = ()
    refused_permanent: dict[str, Refusal] = field(default_factory=dict)
    refused_temporary: dict[str, Refusal] = field(default_factory=dict)

    @property
    def done(self) -> tuple[str, ...]:
        """Recipients that need no further attempt (accepted or refused for good)."""
        return self.accepted + tuple(self.refused_permanent)


class SendError(Exception):
    """A send that did not complete; subclasses say what the caller may do."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporarySendError(SendError):
    """Nothing was delivered; the same send may succeed later."""


class ServerUnavailableError(TemporarySendError):
    """The server could not be reached or did not greet (refused, timed out, dropped before a message
    was started): no message of this pass will fare better, so the relay ends its dispatch step."""


class PermanentSendError(SendError):
    """The server refused the message for good."""


class UnknownOutcomeError(SendError):
    """The message data was sent but the server's verdict never arrived."""


class Sender(Protocol):
    """The outgoing-mail port (``SmtpSender``, ``FileSender``, ``InMemorySender``)."""

    #: True when sending the same message twice has no visible effect (files):
    #: the relay then need not guard against crashes mid-send.
    idempotent: bool

    def send(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> SendResult:
        """Send ``message`` (it must have a Message-ID) to ``recipients`` (default: its To/Cc/Bcc).

        A recipient refused at RCPT time is listed in the result, not raised; a failure of the
        whole send raises ``TemporarySendError``, ``PermanentSendError`` or ``UnknownOutcomeError``.
        An invalid address raises ``InvalidAddressError`` (a ``ValueError``) before anything is sent.
        """
        ...


class InboundSource(Protocol):
    """Where inbound mail and intake files come from (``ImapSource``, ``DropFolderSource``,
    ``InMemoryInbox``); what ``connectors.db.inbound.ingest`` reads.

    Nothing is marked as read until ``acknowledge``: the caller acknowledges an item only after its
    outcome is committed, so a crash in between re-offers it (and ``is_seen`` then filters it out).
    A source may also offer ``quarantine_path_for(item)``, where it will keep a quarantined item.
    """

    #: Names the mailbox or folder in the inbound log (``imap:<mailbox>``, ``drop:<folder>``).
    source: str

    def fetch_new(
        self, is_seen: Callable[[InboundRef], bool] | None = None, limit: int | None = None
    ) -> Iterator[InboundItem]:
        """Yield up to ``limit`` new items, oldest first, one at a time. Items for which
        ``is_seen(ref)`` is true (recorded before) are not yielded but marked as read."""
        ...

    def acknowledge(self, item: InboundItem, status: str, reason: str | None = None) -> object:
        """The item's outcome (``processed`` or ``quarantined``, with the reason) is committed:
        mark it read (IMAP ``\\Seen``, the file moved), so it is not offered again."""
        ...


@dataclass(frozen=True)
class PublishResult:
    """What publishing did: ``created``, ``updated``, ``unchanged``, ``cancelled`` or ``absent``."""

    action: str
    uid: str
    sequence: int
    etag: str | None = None


class CalendarPublisher(Protocol):
    """A calendar that sessions and checkpoint to-dos are published to (``CaldavPublisher``,
    ``InMemoryCalendar``). Publishing is an idempotent upsert keyed by the item's UID."""

    def ensure_calendar(self) -> None:
        """Create the calendar if it does not exist yet (harmless when it does)."""
        ...

    def publish(self, item: CalendarItem, *, dtstamp: datetime | None = None) -> PublishResult:
        """Create ``item``, or update it when its content changed (SEQUENCE raised past the stored
        one), or leave it ``unchanged``; an item whose method is CANCEL is cancelled instead."""
        ...

    def cancel(self, item: CalendarItem, *, dtstamp: datetime | None = None) -> PublishResult:
        """Mark the stored item CANCELLED (it stays on the calendar); ``absent`` when there is none."""
        ...

    def get(self, uid: str) -> tuple[Calendar, str | None] | None:
        """The stored calendar object for ``uid`` and its ETag (if the calendar has them), or None."""
        ...

    def uids(self) -> list[str]:
        """The UIDs of every stored event and to-do, sorted."""
        ...


