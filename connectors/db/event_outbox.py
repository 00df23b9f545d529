"""The event outbox on SQL (:class:`connectors.ports.EventLog`): Prefect events written in the
transaction of the change they describe (:func:`stage`), read and marked published by the pipeline.

A write never waits on Prefect: staging is one ``INSERT`` in the write transaction; publishing is
the pipeline's ``publish_events`` step (``flows/events.py``). An event id is unique, so a change
staged twice (it cannot commit twice) or an event re-published after a lost answer stays one row,
and Prefect stores an id once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, text, update
from sqlalchemy.engine import Row

from connectors.db.tables import event_outbox
from connectors.ports import StagedEvent
from connectors.prefect_events import PrefectEvent, change_events
from states.events import DomainEvent


def stage(conn: Connection, request_id: int, version: int, events: Sequence[DomainEvent],
          outbox_keys: Sequence[str], at: datetime) -> int:
    """Write the Prefect events of one change in the caller's write transaction; returns how many."""
    staged = change_events(request_id, version, events, outbox_keys, at, datetime.now(UTC))
    if staged:
        insert_events(conn, staged)
    return len(staged)


# One text statement, valid on SQLite and PostgreSQL, compiled once (see ``store._insert_or``).
_COLUMNS = ("event_id", "event", "resource", "payload", "occurred", "published_at")
_INSERT = text(f'INSERT INTO event_outbox ({", ".join(_COLUMNS)}) VALUES ({", ".join(":" + c for c in _COLUMNS)}) '
               'ON CONFLICT (event_id) DO NOTHING').bindparams(
    *(bindparam(c, type_=event_outbox.c[c].type) for c in _COLUMNS))


def insert_events(conn: Connection, events: Sequence[PrefectEvent]) -> None:
    conn.execute(_INSERT, [
        {"event_id": e.id, "event": e.event, "resource": json.dumps(e.resource), "payload": json.dumps(e.payload),
         "occurred": e.occurred, "published_at": None} for e in events])


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def _staged(row: Row[tuple[object, ...]]) -> StagedEvent:
    m = row._mapping
    occurred = _utc(m["occurred"])
    assert occurred is not None
    return StagedEvent(id=m["id"], event_id=m["event_id"], event=m["event"], resource=json.loads(m["resource"]),
                       payload=json.loads(m["payload"]), occurred=occurred, published_at=_utc(m["published_at"]))


class SqlEventLog:
    """The event outbox of one database (each call its own transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, limit: int = 500) -> list[StagedEvent]:
        stmt = (select(event_outbox).where(event_outbox.c.published_at.is_(None))
                .order_by(event_outbox.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [_staged(r) for r in conn.execute(stmt)]

    def mark_published(self, ids: Sequence[int], at: datetime) -> int:
        if not ids:
            return 0
        with self.engine.begin() as conn:  # no chain lock: publishing changes no request
            result = conn.execute(update(event_outbox).where(event_outbox.c.id.in_(list(ids)),
                                                             event_outbox.c.published_at.is_(None))
                                  .values(published_at=at))
        return int(result.rowcount)

    def count_pending(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(event_outbox)
                                    .where(event_outbox.c.published_at.is_(None))).scalar_one())

    def prune(self, published_before: datetime, pending_before: datetime) -> int:
        """Delete published events older than ``published_before`` and unpublished ones older than
        ``pending_before`` (no Prefect API took them for that long; Prefect keeps events for days)."""
        with self.engine.begin() as conn:  # no chain lock: publishing changes no request
            result = conn.execute(delete(event_outbox).where(
                (event_outbox.c.published_at < published_before)
                | (event_outbox.c.published_at.is_(None) & (event_outbox.c.occurred < pending_before))))
        return int(result.rowcount)
