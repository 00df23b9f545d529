"""Recording inbound mail and drop-folder files, once each, with what became of them.

Designed to run inside the caller's write transaction, together with the
domain change the message causes (a new request, an approved plan, a
recorded survey result), so a message is either processed *and* recorded,
or neither::

    with write_transaction(engine) as conn:
        row_id = claim(conn, key, received_at=now)
        if row_id is None:
            ...                      # seen before: skip (and mark it \\Seen again)
        else:
            request_id = ...         # the domain change, same transaction
            set_outcome(conn, row_id, status="processed", request_id=request_id)
    source.mark_seen([item])         # only after the commit

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.db.tables import inbound
from connectors.email.inbound import InboundItem, InboundRef
from connectors.ports import InboundSource

__all__ = [
    "Handled",
    "IngestSummary",
    "InboundKey",
    "InboundSource",
    "Quarantine",
    "ingest",
    "already_seen",
    "claim",
    "list_quarantined",
    "max_uid",
    "record",
    "set_outcome",
]

PROCESSED = "processed"
QUARANTINED = "quarantined"


#: How one inbound message is identified: source plus IMAP coordinates and/or Message-ID.
InboundKey = InboundRef


def _db_time(conn: Connection, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("inbound times must be timezone-aware (UTC)")
    value = value.astimezone(UTC)
    return value.replace(tzinfo=None) if conn.dialect.name == "sqlite" else value


def already_seen(conn: Connection, key: InboundKey) -> bool:
    """True if this message was recorded before (by UID or by Message-ID)."""
    conditions = []
    if key.uidvalidity is not None and key.uid is not None:
        conditions.append(and_(inbound.c.uidvalidity == key.uidvalidity, inbound.c.uid == key.uid))
    if key.message_id:
        conditions.append(inbound.c.message_id == key.message_id)
    if not conditions:
        return False
    found = conn.execute(
        select(inbound.c.id).where(inbound.c.source == key.source, or_(*conditions)).limit(1)
    ).first()
    return found is not None


def claim(conn: Connection, key: InboundKey, *, received_at: datetime, status: str = PROCESSED) -> int | None:
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
    status: str,
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
    status: str,
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


def list_quarantined(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest quarantined messages with their reasons."""
    rows = conn.execute(
        select(inbound).where(inbound.c.status == QUARANTINED).order_by(inbound.c.id.desc()).limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


# --- the ingestion loop ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Handled:
    """What the application did with an item: ``processed`` (with the request) or ``quarantined``."""

    status: str
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


def _keep_raw(item: InboundItem, quarantine_dir: Path | None, source: Any) -> str | None:
    path_for = getattr(source, "quarantine_path_for", None)
    if callable(path_for):
        result = path_for(item)
        return str(result) if result is not None else None
    if quarantine_dir is None or not item.raw:
        return None
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    target = quarantine_dir / f"{hashlib.sha256(item.raw).hexdigest()[:40]}.eml"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(item.raw)
        os.replace(tmp, target)
    return str(target)


def ingest(
    engine: Engine,
    source: InboundSource,
    handle: Callable[[Connection, InboundItem], Handled],
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
    from connectors.db.engine import write_transaction

    summary = IngestSummary()
    folder = Path(quarantine_dir) if quarantine_dir is not None else None

    def is_seen(ref: InboundRef) -> bool:
        with engine.connect() as conn:
            return already_seen(conn, ref)

    def quarantine(item: InboundItem, reason: str) -> None:
        raw_path = _keep_raw(item, folder, source)
        with write_transaction(engine) as conn:
            row_id = record(conn, item.ref, received_at=now, status=QUARANTINED, reason=reason, raw_path=raw_path)
        if row_id is None:
            summary.skipped += 1
        else:
            summary.quarantined += 1
            summary.reasons.append(f"{item.path or item.ref.message_id}: {reason}")
        source.acknowledge(item, QUARANTINED, reason)

    iterator = source.fetch_new(is_seen, limit)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            break
        except Exception as exc:  # connection dropped, folder vanished: stop, resume next run
            summary.aborted = f"{type(exc).__name__}: {exc}"
            break
        problem = item.quarantine_reason
        if problem:
            quarantine(item, problem)
            continue
        try:
            with write_transaction(engine) as conn:
                row_id = claim(conn, item.ref, received_at=now)
                if row_id is None:
                    outcome = None
                else:
                    outcome = handle(conn, item)
                    set_outcome(conn, row_id, status=outcome.status, request_id=outcome.request_id,
                                reason=outcome.reason,
                                raw_path=_keep_raw(item, folder, source) if outcome.status == QUARANTINED else None)
        except Exception as exc:
            quarantine(item, str(exc) if isinstance(exc, Quarantine) else f"{type(exc).__name__}: {exc}")
            continue
        if outcome is None:
            summary.skipped += 1
            source.acknowledge(item, PROCESSED)
            continue
        if outcome.status == QUARANTINED:
            summary.quarantined += 1
            summary.reasons.append(f"{item.path or item.ref.message_id}: {outcome.reason}")
        else:
            summary.processed += 1
        source.acknowledge(item, outcome.status, outcome.reason)
    return summary
