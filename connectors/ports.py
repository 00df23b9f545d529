"""The ports: every protocol the application needs from the outside world, with its data types.

Each port has a real adapter (named by technology: ``SqlStore``, ``SmtpSender`` …) and an
in-memory fake in :mod:`connectors.testing`; ``tests/integration/test_contract_*.py`` runs the
same cases against both, and checks that every adapter and fake has each port method with the
same parameters (names, kinds, defaults).

This module holds data and protocols only: it imports no adapter, no database and no network
library, so the fakes and the application can depend on it without pulling any of them in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol

from connectors.email.inbound import InboundItem, InboundRef
from states.notifications import CalendarItem

if TYPE_CHECKING:  # the domain model pulls in pydantic, the calendar type icalendar: types only here
    from icalendar import Calendar

    from states.request import TrainingRequest

__all__ = [
    "SORT_KEYS",
    "AuditRecord",
    "CalendarPublisher",
    "InboundItem",
    "InboundRef",
    "InboundSource",
    "ListFilter",
    "PermanentSendError",
    "PublishResult",
    "Refusal",
    "RequestStore",
    "RequestSummary",
    "SendError",
    "SendResult",
    "Sender",
    "TemporarySendError",
    "UnknownOutcomeError",
    "VerifyReport",
]

# --- request store --------------------------------------------------------------------------------

#: The keys ``ListFilter.sort`` accepts (each also with a leading ``-`` for descending).
SORT_KEYS = ("id", "created", "updated", "state", "title")


@dataclass(frozen=True)
class AuditRecord:
    """One event of a request's history, a link of the hash chain (see :mod:`connectors.audit_chain`)."""

    seq: int
    request_id: int
    type: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    version: int
    actor: str
    at: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of walking the hash chain: ok, or the first broken link and why."""

    ok: bool
    events_checked: int
    requests_checked: int
    broken_seq: int | None = None
    request_id: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events_checked": self.events_checked, "requests_checked": self.requests_checked,
                "broken_seq": self.broken_seq, "request_id": self.request_id, "reason": self.reason}


@dataclass(frozen=True)
class RequestSummary:
    """One row of ``RequestStore.list``: the columns a listing shows, without the document."""

    id: int
    title: str
    state: str
    version: int
    requester: str
    sponsor: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ListFilter:
    """Which requests ``RequestStore.list`` returns, in which order, which page."""

    states: Sequence[str] = ()
    requester: str | None = None
    sponsor: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    sort: str = "id"  # one of SORT_KEYS; prefix "-" for descending
    limit: int = 50
    offset: int = 0


class RequestStore(Protocol):
    """Requests, their hash-chained history, checkpoint timers and outbox (``SqlStore``, ``InMemoryStore``).

    Every write is all or nothing: the request's document and version, one history record per
    pending event, the checkpoint timers it touched and its outbox messages (at most one per key).
    """

    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Store a new request as version 1; assigns ``request.id`` and clears its pending changes."""
        ...

    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Commit the pending changes and bump the version; ``Conflict`` when the stored version is not
        ``request.version`` (changed meanwhile, or no such request) — then nothing is written."""
        ...

    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest:
        """Load, ``mutate`` and commit one request atomically. ``NotFound`` for an unknown id,
        ``Conflict`` when ``expect_version`` is given and is not the stored one; whatever ``mutate``
        raises propagates and nothing is written."""
        ...

    def get(self, request_id: int) -> TrainingRequest:
        """The stored request (a fresh copy); ``NotFound`` for an unknown id."""
        ...

    def history(self, request_id: int) -> list[AuditRecord]:
        """The request's events, oldest first; ``NotFound`` for an unknown id."""
        ...

    def counts_by_state(self) -> dict[str, int]:
        """How many requests are in each state (states with none are absent)."""
        ...

    def due_checkpoints(self, now: datetime, limit: int = 1000) -> list[tuple[int, str]]:
        """(request id, checkpoint key) of scheduled checkpoints due by ``now``, oldest due first."""
        ...

    def count_due_checkpoints(self, now: datetime) -> int:
        """How many scheduled checkpoints are due by ``now`` (a progress display's total)."""
        ...

    def measurable_requests(self, after_id: int = 0, limit: int = 500) -> list[int]:
        """Ids above ``after_id`` (ascending, at most ``limit``) of delivered requests that have
        checkpoints and none of them still open: what the pipeline measures."""
        ...

    def unanswered_checkpoints(self, sent_before: datetime, limit: int = 1000,
                               max_reminders: int | None = None) -> list[tuple[int, str]]:
        """Sent, unanswered checkpoints whose survey (or last reminder) went out by ``sent_before``;
        given ``max_reminders``, only those reminded fewer times. Oldest first."""
        ...

    def verify(self) -> VerifyReport:
        """Walk the whole hash chain and name the first broken link, if any."""
        ...

    # Last in the class: a method named `list` shadows the builtin in annotations below it.
    def list(self, flt: ListFilter) -> tuple[list[RequestSummary], int]:
        """One page of summaries and the number of requests that match; ``KeyError`` for a sort key
        not in ``SORT_KEYS``."""
        ...


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


# --- outbox and inbound log -----------------------------------------------------------------------
# isort: split
from collections.abc import Iterable  # noqa: E402
from contextlib import AbstractContextManager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import timedelta  # noqa: E402
from enum import StrEnum  # noqa: E402
from typing import TYPE_CHECKING, Protocol  # noqa: E402

if TYPE_CHECKING:
    from connectors.email.inbound import InboundRef
    from states.events import DomainEvent
    from states.notifications import Notification
    from states.request import TrainingRequest


class OutboxStatus(StrEnum):
    """Where an outbox row is in its life (see ``connectors.db.outbox``)::

        pending --claim--> sending --(data goes out)--> transmitting --> sent | unknown
           ^                  +--> pending (retry, backoff)    +--> pending (4xx) | failed (5xx)
           +-- requeue (an operator's retry) <-- unknown | failed
    """

    PENDING = "pending"
    SENDING = "sending"
    TRANSMITTING = "transmitting"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: The rows an operator may put back to pending (``ldflow outbox retry``).
RETRYABLE = (OutboxStatus.UNKNOWN, OutboxStatus.FAILED)


class InboundStatus(StrEnum):
    """What became of an inbound message or drop-folder file."""

    PROCESSED = "processed"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row, its notification decoded. Times are UTC."""

    id: int
    key: str
    request_id: int
    template: str
    notification: Notification
    status: OutboxStatus
    attempts: int
    lease_owner: str | None
    lease_until: datetime | None
    message_id: str | None
    recipients_done: frozenset[str] = field(default_factory=frozenset)
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class InboundRecord:
    """One recorded inbound message or file, with what became of it."""

    id: int
    source: str
    uidvalidity: int | None
    uid: int | None
    message_id: str | None
    received_at: datetime
    status: InboundStatus
    request_id: int | None
    reason: str | None
    raw_path: str | None


class OutboxLog(Protocol):
    """The outbox: rows the store enqueued with the change that caused them, the relay's claims and
    marks (fenced by the lease owner: a ``mark_*`` on a lost lease returns False) and the operator's
    retries. Outside a transaction each call commits on its own; through ``Transaction.outbox`` it
    joins that transaction."""

    def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 100) -> list[OutboxRow]: ...
    def mark_transmitting(self, row_id: int, owner: str, message_id: str,
                          lease_until: datetime | None = None) -> bool: ...
    def mark_sent(self, row_id: int, owner: str | None, *, message_id: str, now: datetime,
                  recipients_done: Iterable[str] = (), note: str | None = None) -> bool: ...
    def mark_retry(self, row_id: int, owner: str, *, now: datetime, backoff: timedelta, error: str,
                   recipients_done: Iterable[str] = ()) -> bool: ...
    def mark_failed(self, row_id: int, owner: str, *, reason: str, recipients_done: Iterable[str] = ()) -> bool: ...
    def mark_unknown(self, row_id: int, owner: str, *, reason: str, recipients_done: Iterable[str] = ()) -> bool: ...
    def requeue(self, now: datetime, *, keys: Sequence[str] | None = None,
                statuses: Sequence[OutboxStatus] = (OutboxStatus.UNKNOWN,)) -> int: ...
    def rows(self, status: OutboxStatus | None = None, limit: int = 200) -> list[OutboxRow]: ...
    def by_keys(self, keys: Sequence[str]) -> dict[str, OutboxRow]: ...
    def sent_as(self, message_ids: Iterable[str]) -> dict[str, tuple[int, str]]: ...


class InboundLog(Protocol):
    """Inbound messages and files, recorded once each by (source, UIDVALIDITY, UID) or (source,
    Message-ID). ``claim`` records a new one (None when it was seen before); inside a transaction
    it commits together with what the message caused."""

    def seen(self, ref: InboundRef) -> bool: ...
    def claim(self, ref: InboundRef, *, received_at: datetime,
              status: InboundStatus = InboundStatus.PROCESSED) -> int | None: ...
    def set_outcome(self, row_id: int, *, status: InboundStatus, request_id: int | None = None,
                    reason: str | None = None, raw_path: str | None = None) -> None: ...
    def record(self, ref: InboundRef, *, received_at: datetime, status: InboundStatus,
               request_id: int | None = None, reason: str | None = None,
               raw_path: str | None = None) -> int | None: ...
    def max_uid(self, source: str, uidvalidity: int) -> int | None: ...
    def quarantined(self, limit: int = 100) -> list[InboundRecord]: ...


class Transaction(Protocol):
    """One write transaction: the request changes, history events, outbox and inbound records made
    through it commit together when the ``with`` block ends, or not at all when it raises.

    It has the request store's write methods, so the application service runs a command in it
    (``Service.within(tx)``)."""

    @property
    def outbox(self) -> OutboxLog: ...
    @property
    def inbound(self) -> InboundLog: ...
    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest: ...
    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest: ...
    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest: ...
    def get(self, request_id: int) -> TrainingRequest: ...
    def record_events(self, request_id: int, events: Sequence[DomainEvent], actor: str, at: datetime) -> None: ...


class UnitOfWork(Protocol):
    """The one way the application opens a write transaction: ``with uow.transaction() as tx``.

    ``outbox`` and ``inbound`` outside a transaction read, or write in a transaction of their own."""

    @property
    def outbox(self) -> OutboxLog: ...
    @property
    def inbound(self) -> InboundLog: ...
    def transaction(self) -> AbstractContextManager[Transaction]: ...
