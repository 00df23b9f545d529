"""In-memory fakes of the outbox, event-outbox, inbound-log and unit-of-work ports, over an
:class:`InMemoryStore`."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.notification_codec import decode_notification
from connectors.ports import (
    RETRYABLE,
    InboundRecord,
    InboundRef,
    InboundStatus,
    LinkUse,
    OutboxRow,
    OutboxStatus,
    StagedEvent,
)
from connectors.ports.outbox import stranded_after
from connectors.testing.store import InMemoryStore, OutboxMessage
from states.errors import Conflict
from states.events import DomainEvent
from states.notifications import Notification
from states.request import TrainingRequest

__all__ = ["InMemoryEventLog", "InMemoryInbound", "InMemoryLinkUses", "InMemoryOutbox", "InMemoryTransaction",
           "InMemoryUnitOfWork"]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware (UTC)")
    return value.astimezone(UTC)


@dataclasses.dataclass(frozen=True)
class _Entry:
    row: OutboxRow
    not_before: datetime | None = None


class InMemoryOutbox:
    """The :class:`connectors.ports.OutboxLog` port over an :class:`InMemoryStore`'s queued messages
    (with the same claim, lease and fencing rules as ``connectors.db.outbox``)."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.RLock()

    def _sync(self) -> dict[str, _Entry]:
        """Take in the messages the store queued since the last call (ids in the order they came)."""
        for key, message in list(self._store.outbox.items()):
            if key not in self._entries:
                row = OutboxRow(id=len(self._entries) + 1, key=key, request_id=message.request_id,
                                template=message.template,
                                notification=decode_notification(json.dumps(message.notification, default=str)),
                                status=OutboxStatus.PENDING, attempts=0, lease_owner=None, lease_until=None,
                                message_id=None, created_at=message.created_at)
                self._entries[key] = _Entry(row)
        return self._entries

    def _by_id(self, row_id: int) -> _Entry | None:
        return next((e for e in self._sync().values() if e.row.id == row_id), None)

    def _put(self, entry: _Entry, changes: dict[str, Any], not_before: datetime | None = None) -> None:
        keep = entry.not_before if not_before is None else not_before
        self._entries[entry.row.key] = _Entry(dataclasses.replace(entry.row, **changes), keep)

    def _fenced(self, row_id: int, owner: str, changes: dict[str, Any], not_before: datetime | None = None) -> bool:
        """Apply ``changes`` if ``owner`` still holds the row's lease (the SQL adapter's ``_fenced``)."""
        with self._lock:
            entry = self._by_id(row_id)
            allowed = ((OutboxStatus.SENDING,) if changes.get("status") == OutboxStatus.TRANSMITTING
                       else (OutboxStatus.SENDING, OutboxStatus.TRANSMITTING))
            if entry is None or entry.row.lease_owner != owner or entry.row.status not in allowed:
                return False
            self._put(entry, changes, not_before)
            return True

    @staticmethod
    def _released(status: OutboxStatus, note: str | None, done: Iterable[str]) -> dict[str, Any]:
        return {"status": status, "lease_owner": None, "lease_until": None, "last_error": note,
                "recipients_done": frozenset(d.lower() for d in done)}

    def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 100) -> list[OutboxRow]:
        now = _utc(now)
        deferred_max, lease_max = stranded_after(now, lease)  # a clock that ran ahead (connectors/db/outbox.py)

        def expired(r: OutboxRow) -> bool:
            return r.lease_until is not None and not now <= r.lease_until <= lease_max

        with self._lock:
            if limit <= 0:
                return []
            for entry in list(self._sync().values()):
                r = entry.row
                if r.status == OutboxStatus.TRANSMITTING and expired(r):
                    self._put(entry, {"status": OutboxStatus.UNKNOWN, "lease_owner": None, "lease_until": None,
                                      "last_error": "relay stopped while the message was being transmitted; "
                                                    "outcome unknown"})
            due = [e for e in self._entries.values()
                   if (e.row.status == OutboxStatus.PENDING
                       and (e.not_before is None or not now < e.not_before <= deferred_max))
                   or (e.row.status == OutboxStatus.SENDING and expired(e.row))]
            claimed = []
            for entry in sorted(due, key=lambda e: e.row.id)[:limit]:
                self._put(entry, {"status": OutboxStatus.SENDING, "lease_owner": owner,
                                  "lease_until": now + lease, "attempts": entry.row.attempts + 1})
                claimed.append(self._entries[entry.row.key].row)
            return claimed

    def mark_transmitting(self, row_id: int, owner: str, message_id: str,
                          lease_until: datetime | None = None) -> bool:
        changes: dict[str, Any] = {"status": OutboxStatus.TRANSMITTING, "message_id": message_id}
        if lease_until is not None:
            changes["lease_until"] = _utc(lease_until)
        return self._fenced(row_id, owner, changes)

    def mark_sent(self, row_id: int, owner: str | None, *, message_id: str, now: datetime,
                  recipients_done: Iterable[str] = (), note: str | None = None) -> bool:
        changes = {**self._released(OutboxStatus.SENT, note, recipients_done), "sent_at": _utc(now),
                   "message_id": message_id}
        if owner is not None:
            return self._fenced(row_id, owner, changes)
        with self._lock:
            entry = self._by_id(row_id)
            if entry is None or entry.row.status != OutboxStatus.UNKNOWN:
                return False
            self._put(entry, changes)
            return True

    def mark_retry(self, row_id: int, owner: str, *, now: datetime, backoff: timedelta, error: str,
                   recipients_done: Iterable[str] = ()) -> bool:
        return self._fenced(row_id, owner, self._released(OutboxStatus.PENDING, error, recipients_done),
                            _utc(now) + backoff)

    def mark_failed(self, row_id: int, owner: str, *, reason: str, recipients_done: Iterable[str] = ()) -> bool:
        return self._fenced(row_id, owner, self._released(OutboxStatus.FAILED, reason, recipients_done))

    def release(self, row_id: int, owner: str, *, note: str) -> bool:
        with self._lock:
            entry = self._by_id(row_id)
            if entry is None or entry.row.lease_owner != owner or entry.row.status not in (
                    OutboxStatus.SENDING, OutboxStatus.TRANSMITTING):
                return False
            self._put(entry, {"status": OutboxStatus.PENDING, "lease_owner": None, "lease_until": None,
                              "last_error": note, "attempts": max(0, entry.row.attempts - 1)})
            return True

    def mark_unknown(self, row_id: int, owner: str, *, reason: str, recipients_done: Iterable[str] = ()) -> bool:
        return self._fenced(row_id, owner, self._released(OutboxStatus.UNKNOWN, reason, recipients_done))

    def requeue(self, now: datetime, *, keys: Sequence[str] | None = None,
                statuses: Sequence[OutboxStatus] = (OutboxStatus.UNKNOWN,)) -> int:
        allowed = {s for s in statuses if s in RETRYABLE}
        with self._lock:
            chosen = [e for e in self._sync().values()
                      if e.row.status in allowed and (keys is None or e.row.key in keys)]
            for entry in chosen:
                self._put(entry, {"status": OutboxStatus.PENDING, "attempts": 0, "lease_owner": None,
                                  "lease_until": None}, _utc(now))
            return len(chosen)

    def release_held(self, owner_prefix: str, *, note: str) -> int:
        with self._lock:
            held = [e for e in self._sync().values() if e.row.status == OutboxStatus.SENDING
                    and (e.row.lease_owner or "").startswith(owner_prefix)]
            for entry in held:
                self._put(entry, {"status": OutboxStatus.PENDING, "lease_owner": None, "lease_until": None,
                                  "last_error": note, "attempts": max(0, entry.row.attempts - 1)})
            return len(held)

    def enqueue(self, notifications: Sequence[Notification], now: datetime) -> int:
        with self._lock:
            fresh = [n for n in notifications if n.key not in self._store.outbox]
            for n in fresh:
                self._store.outbox[n.key] = OutboxMessage(n.key, n.request_id, n.template, dataclasses.asdict(n),
                                                          _utc(now))
            return len(fresh)

    def rows(self, status: OutboxStatus | None = None, limit: int = 200) -> list[OutboxRow]:
        with self._lock:
            rows = [e.row for e in self._sync().values() if status is None or e.row.status == status]
        return sorted(rows, key=lambda r: -r.id)[:limit]

    def by_keys(self, keys: Sequence[str]) -> dict[str, OutboxRow]:
        with self._lock:
            entries = self._sync()
            return {k: entries[k].row for k in keys if k in entries}

    def sent_as(self, message_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
        wanted = set(message_ids)
        with self._lock:
            return {e.row.message_id: (e.row.request_id, e.row.key) for e in self._sync().values()
                    if e.row.message_id is not None and e.row.message_id in wanted}

    def for_request(self, request_id: int, templates: Sequence[str] = ()) -> list[OutboxRow]:
        with self._lock:
            return sorted((e.row for e in self._sync().values() if e.row.request_id == request_id
                           and (not templates or e.row.template in templates)), key=lambda r: r.id)

    def snapshot(self) -> dict[str, _Entry]:
        with self._lock:
            return dict(self._sync())

    def restore(self, entries: dict[str, _Entry]) -> None:
        with self._lock:
            self._entries = dict(entries)


class InMemoryEventLog:
    """The :class:`connectors.ports.EventLog` port over an :class:`InMemoryStore`'s staged events."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    def pending(self, limit: int = 500) -> list[StagedEvent]:
        with self._store._lock:
            return [e for e in self._store.events if e.published_at is None][:limit]

    def mark_published(self, ids: Sequence[int], at: datetime) -> int:
        wanted = set(ids)
        with self._store._lock:
            marked = [dataclasses.replace(e, published_at=at) if e.id in wanted and e.published_at is None else e
                      for e in self._store.events]
            count = sum(1 for old, new in zip(self._store.events, marked, strict=True) if old is not new)
            self._store.events = marked
        return count

    def count_pending(self) -> int:
        return len(self.pending(limit=1 << 62))

    def prune(self, published_before: datetime, pending_before: datetime) -> int:
        def gone(e: StagedEvent) -> bool:
            return (e.published_at < published_before) if e.published_at is not None else e.occurred < pending_before

        with self._store._lock:
            kept = [e for e in self._store.events if not gone(e)]
            count, self._store.events = len(self._store.events) - len(kept), kept
        return count


class InMemoryInbound:
    """The :class:`connectors.ports.InboundLog` port in a list (one record per message, as on SQL)."""

    def __init__(self) -> None:
        self._records: list[InboundRecord] = []
        self._digests: dict[int, str | None] = {}
        self._lock = threading.RLock()

    def seen(self, ref: InboundRef) -> bool:
        """By UID, or by Message-ID with the same content (``connectors.db.inbound.already_seen``)."""
        with self._lock:
            mine = [r for r in self._records if r.source == ref.source]
            if ref.uidvalidity is not None and ref.uid is not None and any(
                    (r.uidvalidity, r.uid) == (ref.uidvalidity, ref.uid) for r in mine):
                return True
            same_id = [r for r in mine if ref.message_id and r.message_id == ref.message_id]
            if not same_id:
                return False
            if ref.digest is None:
                return ref.uid is None
            recorded = self._digests.get(same_id[0].id)
            if recorded is None or recorded == ref.digest:
                return True
            return any(r.message_id == ref.conflicting().message_id for r in mine)

    def claim(self, ref: InboundRef, *, received_at: datetime,
              status: InboundStatus = InboundStatus.PROCESSED) -> int | None:
        with self._lock:
            if self.seen(ref) or any(r.source == ref.source and ref.message_id and r.message_id == ref.message_id
                                     for r in self._records):  # the unique (source, Message-ID) of SQL
                return None
            record = InboundRecord(id=len(self._records) + 1, source=ref.source, uidvalidity=ref.uidvalidity,
                                   uid=ref.uid, message_id=ref.message_id, received_at=_utc(received_at),
                                   status=InboundStatus(status), request_id=None, reason=None, raw_path=None)
            self._records.append(record)
            self._digests[record.id] = ref.digest
            return record.id

    def set_outcome(self, row_id: int, *, status: InboundStatus, request_id: int | None = None,
                    reason: str | None = None, raw_path: str | None = None) -> None:
        if status not in (InboundStatus.PROCESSED, InboundStatus.QUARANTINED):
            raise ValueError(f"inbound status must be processed or quarantined, not {status!r}")
        with self._lock:
            index = next(i for i, r in enumerate(self._records) if r.id == row_id)
            self._records[index] = dataclasses.replace(self._records[index], status=InboundStatus(status),
                                                       request_id=request_id, reason=reason, raw_path=raw_path)

    def record(self, ref: InboundRef, *, received_at: datetime, status: InboundStatus,
               request_id: int | None = None, reason: str | None = None,
               raw_path: str | None = None) -> int | None:
        with self._lock:
            row_id = self.claim(ref, received_at=received_at, status=status)
            if row_id is not None:
                self.set_outcome(row_id, status=status, request_id=request_id, reason=reason, raw_path=raw_path)
            return row_id

    def max_uid(self, source: str, uidvalidity: int) -> int | None:
        with self._lock:
            uids = [r.uid for r in self._records
                    if r.source == source and r.uidvalidity == uidvalidity and r.uid is not None]
        return max(uids, default=None)

    def quarantined(self, limit: int = 100) -> list[InboundRecord]:
        with self._lock:
            found = [r for r in self._records if r.status == InboundStatus.QUARANTINED]
        return sorted(found, key=lambda r: -r.id)[:limit]

    def snapshot(self) -> list[InboundRecord]:
        with self._lock:
            return list(self._records)

    def restore(self, records: list[InboundRecord]) -> None:
        with self._lock:
            self._records = list(records)


class InMemoryLinkUses:
    """The :class:`connectors.ports.LinkUseLog` port in a list (a single-use link recorded once)."""

    def __init__(self) -> None:
        self._uses: list[tuple[LinkUse, bool]] = []
        self._lock = threading.RLock()

    def record(self, use: LinkUse, *, once: bool) -> bool:
        with self._lock:
            if once and any(u.link_id == use.link_id and single for u, single in self._uses):
                return False
            self._uses.append((dataclasses.replace(use, used_at=_utc(use.used_at)), once))
            return True

    def uses(self, link_id: str) -> list[LinkUse]:
        with self._lock:
            return [u for u, _ in self._uses if u.link_id == link_id]

    def snapshot(self) -> list[tuple[LinkUse, bool]]:
        with self._lock:
            return list(self._uses)

    def restore(self, uses: list[tuple[LinkUse, bool]]) -> None:
        with self._lock:
            self._uses = list(uses)


class InMemoryTransaction:
    """A transaction of :class:`InMemoryUnitOfWork` (see :class:`connectors.ports.Transaction`)."""

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    @property
    def outbox(self) -> InMemoryOutbox:
        return self._uow.outbox

    @property
    def inbound(self) -> InMemoryInbound:
        return self._uow.inbound

    @property
    def links(self) -> InMemoryLinkUses:
        return self._uow.links

    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        return self._uow.store.add(request, actor)

    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        return self._uow.store.save(request, actor)

    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest:
        request = self.get(request_id)
        if expect_version is not None and request.version != expect_version:
            raise Conflict(request_id, expect_version, request.version)
        mutate(request)
        return self.save(request, actor)

    def get(self, request_id: int) -> TrainingRequest:
        return self._uow.store.get(request_id)

    def record_events(self, request_id: int, events: Sequence[DomainEvent], actor: str, at: datetime) -> None:
        self._uow.store.append_events(request_id, events, actor, at)


class InMemoryUnitOfWork:
    """The :class:`connectors.ports.UnitOfWork` over an :class:`InMemoryStore`: a transaction holds the
    store's lock and puts everything back as it was when the block raises."""

    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.store = store or InMemoryStore()
        self._outbox = InMemoryOutbox(self.store)
        self._inbound = InMemoryInbound()
        self._links = InMemoryLinkUses()
        self._events = InMemoryEventLog(self.store)

    @property
    def outbox(self) -> InMemoryOutbox:
        return self._outbox

    @property
    def events(self) -> InMemoryEventLog:
        return self._events

    @property
    def inbound(self) -> InMemoryInbound:
        return self._inbound

    @property
    def links(self) -> InMemoryLinkUses:
        return self._links

    @contextmanager
    def transaction(self) -> Iterator[InMemoryTransaction]:
        store = self.store
        with store._lock:
            saved = (dict(store._rows), list(store._events), dict(store._timers), dict(store.outbox),
                     self._outbox.snapshot(), self._inbound.snapshot(), self._links.snapshot(), store.events)
            try:
                yield InMemoryTransaction(self)
            except BaseException:
                store._rows, store._events, store._timers, store.outbox = (saved[0], saved[1], saved[2], saved[3])
                store.events = saved[7]
                self._outbox.restore(saved[4])
                self._inbound.restore(saved[5])
                self._links.restore(saved[6])
                raise

