"""Recording inbound mail and drop-folder files, once each, with what became of them.

The record is written in the same transaction as the domain change the
message causes (a new request, an approved plan, a recorded survey result),
so a message is either processed *and* recorded, or neither. ``ingest`` runs
that loop over the ports (:class:`connectors.ports.UnitOfWork`), the same on
SQL and on the in-memory fakes::

    with uow.transaction() as tx:
        row_id = tx.inbound.claim(item.ref, received_at=now)
        if row_id is None:
            ...                      # seen before: skip (and mark it \\Seen again)
        else:
            outcome = handle(tx, item)   # the domain change, same transaction
            tx.inbound.set_outcome(row_id, status=outcome.status, request_id=outcome.request_id)
    source.acknowledge(item, ...)    # only after the commit

A message is "seen" if its (source, UIDVALIDITY, UID) or its (source,
Message-ID) was recorded. The second key keeps a message from being
ingested twice when the server's UIDVALIDITY changes (all UIDs renumbered)
or when the same mail arrives in two copies. ``claim`` uses INSERT … ON
CONFLICT DO NOTHING, so two concurrent runners cannot both claim one
message: the second waits for the first's commit and then gets None.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.db.engine import read_transaction, write_transaction
from connectors.db.tables import inbound
from connectors.email.inbound import InboundItem, InboundRef
from connectors.files import FILE_MODE, private_dir
from connectors.ports import InboundRecord, InboundSource, InboundStatus, Transaction, UnitOfWork

__all__ = [
    "Handled",
    "Handler",
    "IngestSummary",
    "InboundKey",
    "InboundSource",
    "Quarantine",
    "SqlInbound",
    "ingest",
    "already_seen",
    "claim",
    "list_quarantined",
    "max_uid",
    "record",
    "set_outcome",
]

PROCESSED = InboundStatus.PROCESSED
QUARANTINED = InboundStatus.QUARANTINED


#: How one inbound message is identified: source plus IMAP coordinates and/or Message-ID.
InboundKey = InboundRef


def _db_time(conn: Connection, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("inbound times must be timezone-aware (UTC)")
    value = value.astimezone(UTC)
    return value.replace(tzinfo=None) if conn.dialect.name == "sqlite" else value


def already_seen(conn: Connection, key: InboundKey) -> bool:
    """True if this message was recorded before: by UID, or by Message-ID with the same content.

    A known Message-ID with *other* content (``key.digest`` differs from the recorded one) is not
    seen - ``ingest`` quarantines it, recorded under ``key.conflicting()`` - unless that variant was
    recorded already. A known Message-ID under a new UID whose content is not known yet (the IMAP
    pre-check, before the body is fetched) is not seen either: the content decides."""
    if key.uidvalidity is not None and key.uid is not None:
        found = conn.execute(select(inbound.c.id).where(
            inbound.c.source == key.source, inbound.c.uidvalidity == key.uidvalidity, inbound.c.uid == key.uid
        ).limit(1)).first()
        if found is not None:
            return True
    if not key.message_id:
        return False
    digests = list(conn.execute(select(inbound.c.content_sha256).where(
        inbound.c.source == key.source, inbound.c.message_id == key.message_id).limit(1)).scalars())
    if not digests:
        return False
    if key.digest is None:
        return key.uid is None
    if digests[0] is None or digests[0] == key.digest:
        return True
    variant = key.conflicting().message_id
    return conn.execute(select(inbound.c.id).where(
        inbound.c.source == key.source, inbound.c.message_id == variant).limit(1)).first() is not None


def claim(conn: Connection, key: InboundKey, *, received_at: datetime,
          status: InboundStatus = PROCESSED) -> int | None:
    """Record the message if it is new; returns its row id, or None when it was seen before.

    The row starts as ``status`` (``processed`` by default); change it with
    ``set_outcome`` in the same transaction once the outcome is known.
    """
    if already_seen(conn, key):
        return None
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(inbound)
        .values(
            source=key.source,
            uidvalidity=key.uidvalidity,
            uid=key.uid,
            message_id=key.message_id,
            received_at=_db_time(conn, received_at),
            status=status,
            content_sha256=key.digest,
        )
        .on_conflict_do_nothing()
        .returning(inbound.c.id)
    )
    row_id = conn.execute(statement).scalar()
    return int(row_id) if row_id is not None else None


def set_outcome(
    conn: Connection,
    row_id: int,
    *,
    status: InboundStatus,
    request_id: int | None = None,
    reason: str | None = None,
    raw_path: str | None = None,
) -> None:
    """Set what became of a claimed message (processed → request, or quarantined with the reason)."""
    if status not in (PROCESSED, QUARANTINED):
        raise ValueError(f"inbound status must be processed or quarantined, not {status!r}")
    conn.execute(
        update(inbound)
        .where(inbound.c.id == row_id)
        .values(status=status, request_id=request_id, reason=reason, raw_path=raw_path)
    )


def record(
    conn: Connection,
    key: InboundKey,
    *,
    received_at: datetime,
    status: InboundStatus,
    request_id: int | None = None,
    reason: str | None = None,
    raw_path: str | None = None,
) -> int | None:
    """``claim`` and ``set_outcome`` in one call; None when the message was seen before."""
    row_id = claim(conn, key, received_at=received_at, status=status)
    if row_id is not None:
        set_outcome(conn, row_id, status=status, request_id=request_id, reason=reason, raw_path=raw_path)
    return row_id


def max_uid(conn: Connection, source: str, uidvalidity: int) -> int | None:
    """The highest UID recorded for this mailbox generation (None if none)."""
    value = conn.execute(
        select(func.max(inbound.c.uid)).where(inbound.c.source == source, inbound.c.uidvalidity == uidvalidity)
    ).scalar()
    return int(value) if value is not None else None


def _record(row: Any) -> InboundRecord:
    received = row.received_at
    return InboundRecord(
        id=row.id, source=row.source, uidvalidity=row.uidvalidity, uid=row.uid, message_id=row.message_id,
        received_at=received.replace(tzinfo=UTC) if received.tzinfo is None else received.astimezone(UTC),
        status=InboundStatus(row.status), request_id=row.request_id, reason=row.reason, raw_path=row.raw_path)


def list_quarantined(conn: Connection, limit: int = 100) -> list[InboundRecord]:
    """The newest quarantined messages with their reasons."""
    rows = conn.execute(select(inbound).where(inbound.c.status == QUARANTINED).order_by(inbound.c.id.desc())
                        .limit(limit))
    return [_record(r) for r in rows]


class SqlInbound:
    """The :class:`connectors.ports.InboundLog` port on SQL: on an Engine each call is a transaction
    of its own, on a Connection (``SqlTransaction.inbound``) it joins the caller's."""

    def __init__(self, target: Engine | Connection) -> None:
        self._target = target

    def _write(self) -> AbstractContextManager[Connection]:
        target = self._target
        return write_transaction(target) if isinstance(target, Engine) else nullcontext(target)

    def _read(self) -> AbstractContextManager[Connection]:
        target = self._target
        return read_transaction(target) if isinstance(target, Engine) else nullcontext(target)

    def seen(self, ref: InboundRef) -> bool:
        with self._read() as conn:
            return already_seen(conn, ref)

    def claim(self, ref: InboundRef, *, received_at: datetime,
              status: InboundStatus = InboundStatus.PROCESSED) -> int | None:
        with self._write() as conn:
            return claim(conn, ref, received_at=received_at, status=status)

    def set_outcome(self, row_id: int, *, status: InboundStatus, request_id: int | None = None,
                    reason: str | None = None, raw_path: str | None = None) -> None:
        with self._write() as conn:
            set_outcome(conn, row_id, status=status, request_id=request_id, reason=reason, raw_path=raw_path)

    def record(self, ref: InboundRef, *, received_at: datetime, status: InboundStatus,
               request_id: int | None = None, reason: str | None = None,
               raw_path: str | None = None) -> int | None:
        with self._write() as conn:
            return record(conn, ref, received_at=received_at, status=status, request_id=request_id, reason=reason,
                          raw_path=raw_path)

    def max_uid(self, source: str, uidvalidity: int) -> int | None:
        with self._read() as conn:
            return max_uid(conn, source, uidvalidity)

    def quarantined(self, limit: int = 100) -> list[InboundRecord]:
        with self._read() as conn:
            return list_quarantined(conn, limit)


# --- the ingestion loop ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Handled:
    """What the application did with an item: ``processed`` (with the request) or ``quarantined``."""

    status: InboundStatus
    request_id: int | None = None
    reason: str | None = None


class Quarantine(Exception):
    """Raised by a handler for an item it cannot act on (unmatched reply, unknown request…)."""


@dataclass
class IngestSummary:
    """What one ingestion run did."""

    processed: int = 0
    quarantined: int = 0
    skipped: int = 0
    aborted: str | None = None
    reasons: list[str] = field(default_factory=list)


#: What the application does with one item, inside the transaction that records it.
Handler = Callable[[Transaction, InboundItem], Handled]


def _keep_raw(item: InboundItem, quarantine_dir: Path | None, source: Any) -> str | None:
    path_for = getattr(source, "quarantine_path_for", None)
    if callable(path_for):
        result = path_for(item)
        return str(result) if result is not None else None
    if quarantine_dir is None or not item.raw:
        return None
    private_dir(quarantine_dir)
    target = quarantine_dir / f"{hashlib.sha256(item.raw).hexdigest()[:40]}.eml"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(item.raw)
        os.replace(tmp, target)
    return str(target)


class _Run:
    """One ``ingest`` run: the item loop's bookkeeping."""

    def __init__(self, uow: UnitOfWork, source: InboundSource, now: datetime, folder: Path | None) -> None:
        self.uow, self.source, self.now, self.folder = uow, source, now, folder
        self.summary = IngestSummary()

    def quarantine(self, item: InboundItem, reason: str, ref: InboundRef | None = None) -> None:
        raw_path = _keep_raw(item, self.folder, self.source)
        with self.uow.transaction() as tx:
            row_id = tx.inbound.record(ref or item.ref, received_at=self.now, status=QUARANTINED, reason=reason,
                                       raw_path=raw_path)
        if row_id is None:
            self.summary.skipped += 1
        else:
            self.summary.quarantined += 1
            self.summary.reasons.append(f"{item.path or item.ref.message_id}: {reason}")
        self.source.acknowledge(item, QUARANTINED, reason)

    def handle(self, item: InboundItem, handle: Handler) -> None:
        try:
            with self.uow.transaction() as tx:
                row_id = tx.inbound.claim(item.ref, received_at=self.now)
                outcome = None if row_id is None else handle(tx, item)
                if row_id is not None and outcome is not None:
                    status = InboundStatus(outcome.status)
                    raw = _keep_raw(item, self.folder, self.source) if status == QUARANTINED else None
                    tx.inbound.set_outcome(row_id, status=status, request_id=outcome.request_id,
                                           reason=outcome.reason, raw_path=raw)
        except Exception as exc:
            self.quarantine(item, str(exc) if isinstance(exc, Quarantine) else f"{type(exc).__name__}: {exc}")
            return
        if outcome is None and item.ref.digest is not None and not self.uow.inbound.seen(item.ref):
            # its Message-ID was recorded with other content: a forgery or a broken sender, never dropped
            self.quarantine(item, f"a message with the Message-ID {item.ref.message_id} was taken in before, "
                                  "with different content", item.ref.conflicting())
            return
        if outcome is None:
            self.summary.skipped += 1
            self.source.acknowledge(item, PROCESSED)
            return
        if outcome.status == QUARANTINED:
            self.summary.quarantined += 1
            self.summary.reasons.append(f"{item.path or item.ref.message_id}: {outcome.reason}")
        else:
            self.summary.processed += 1
        self.source.acknowledge(item, outcome.status, outcome.reason)


def ingest(
    uow: UnitOfWork,
    source: InboundSource,
    handle: Handler,
    now: datetime,
    *,
    quarantine_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> IngestSummary:
    """Read new items from ``source`` and hand each to ``handle`` in its own write transaction.

    The inbound row is claimed in the same transaction as ``handle``'s domain
    change; the source is told (``\\Seen``, file moved) only after the commit.
    An item with MIME defects is quarantined without calling ``handle``; a
    ``handle`` that raises (``Quarantine`` or anything else) rolls back its
    changes and the item is quarantined with the error as the reason - never
    dropped. A dropped connection ends the run (``aborted``); what was
    committed stays, the rest comes next run.
    """
    run = _Run(uow, source, now, Path(quarantine_dir) if quarantine_dir is not None else None)
    iterator = source.fetch_new(uow.inbound.seen, limit)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            break
        except Exception as exc:  # connection dropped, folder vanished: stop, resume next run
            run.summary.aborted = f"{type(exc).__name__}: {exc}"
            break
        if item.quarantine_reason:
            run.quarantine(item, item.quarantine_reason)
        else:
            run.handle(item, handle)
    return run.summary
