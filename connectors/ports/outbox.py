"""The outbox, event-outbox, inbound-log and unit-of-work ports (``SqlOutbox``, ``SqlEventLog``,
``SqlInbound``, ``SqlUnitOfWork``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from connectors.email.inbound import InboundRef
from connectors.ports.links import LinkUseLog

if TYPE_CHECKING:  # the domain model pulls in pydantic, the calendar type icalendar: types only here

    from states.events import DomainEvent
    from states.notifications import Notification
    from states.request import TrainingRequest


#: The longest backoff after a temporary failure (``backoff_for``'s cap).
MAX_BACKOFF = timedelta(hours=2)


def stranded_after(now: datetime, lease: timedelta) -> tuple[datetime, datetime]:
    """``(not_before, lease_until)`` later than which a row was deferred or leased by a clock that ran
    ahead and was put back: no backoff is longer than ``MAX_BACKOFF`` and no lease (renewals included)
    longer than twice ``lease``, so such a row is due now instead of sitting out the jump."""
    return now + MAX_BACKOFF, now + 2 * lease



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
    #: when the row was queued (the domain's clock); signed links in the mail count from it
    created_at: datetime | None = None


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
    def release(self, row_id: int, owner: str, *, note: str) -> bool: ...
    def mark_unknown(self, row_id: int, owner: str, *, reason: str, recipients_done: Iterable[str] = ()) -> bool: ...
    def requeue(self, now: datetime, *, keys: Sequence[str] | None = None,
                statuses: Sequence[OutboxStatus] = (OutboxStatus.UNKNOWN,)) -> int: ...
    def release_held(self, owner_prefix: str, *, note: str) -> int: ...
    def enqueue(self, notifications: Sequence[Notification], now: datetime) -> int: ...
    def rows(self, status: OutboxStatus | None = None, limit: int = 200) -> list[OutboxRow]: ...
    def by_keys(self, keys: Sequence[str]) -> dict[str, OutboxRow]: ...
    def sent_as(self, message_ids: Iterable[str]) -> dict[str, tuple[int, str]]: ...
    def for_request(self, request_id: int, templates: Sequence[str] = ()) -> list[OutboxRow]: ...


@dataclass(frozen=True)
class StagedEvent:
    """One Prefect event in the event outbox, written with the change it describes (see
    ``connectors.prefect_events``); ``published_at`` is None until Prefect accepted it."""

    id: int
    event_id: str
    event: str
    resource: dict[str, str]
    payload: dict[str, Any]
    occurred: datetime
    published_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """The body Prefect's ``POST /events`` takes for this event."""
        return {"id": self.event_id, "event": self.event, "resource": self.resource, "related": [],
                "payload": self.payload, "occurred": self.occurred.isoformat()}


class EventLog(Protocol):
    """The event outbox: Prefect events the store wrote in the transaction of their change, oldest
    first, marked published by the pipeline once Prefect accepted them."""

    def pending(self, limit: int = 500) -> list[StagedEvent]: ...
    def mark_published(self, ids: Sequence[int], at: datetime) -> int: ...
    def count_pending(self) -> int: ...
    def prune(self, published_before: datetime, pending_before: datetime) -> int: ...


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
    @property
    def links(self) -> LinkUseLog: ...
    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest: ...
    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest: ...
    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest: ...
    def get(self, request_id: int) -> TrainingRequest: ...
    def record_events(self, request_id: int, events: Sequence[DomainEvent], actor: str, at: datetime) -> None: ...


class UnitOfWork(Protocol):
    """The one way the application opens a write transaction: ``with uow.transaction() as tx``.

    ``outbox``, ``events`` and ``inbound`` outside a transaction read, or write in a transaction of
    their own."""

    @property
    def outbox(self) -> OutboxLog: ...
    @property
    def events(self) -> EventLog: ...
    @property
    def inbound(self) -> InboundLog: ...
    @property
    def links(self) -> LinkUseLog: ...
    def transaction(self) -> AbstractContextManager[Transaction]: ...

