"""The unit of work on SQL: one write transaction for a request change, its history events and the
outbox and inbound records that go with it (:class:`connectors.ports.UnitOfWork`).

A write transaction is ``BEGIN IMMEDIATE`` on SQLite and holds the audit chain lock on PostgreSQL
(``connectors.db.engine.write_transaction``), so what a command reads through the transaction is
current until it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine

from connectors.db.engine import write_transaction
from connectors.db.event_outbox import SqlEventLog
from connectors.db.inbound import SqlInbound
from connectors.db.links import SqlLinkUses
from connectors.db.outbox import SqlOutbox
from connectors.db.store import SqlStore
from states.errors import Conflict
from states.events import DomainEvent
from states.request import TrainingRequest


class SqlTransaction:
    """One open write transaction (see :class:`connectors.ports.Transaction`)."""

    def __init__(self, store: SqlStore, connection: Connection) -> None:
        self._store = store
        #: The SQLAlchemy connection, for adapters in ``connectors.db`` that join the transaction.
        self.connection = connection
        self._outbox = SqlOutbox(connection)
        self._inbound = SqlInbound(connection)
        self._links = SqlLinkUses(connection)
        self.written: list[TrainingRequest] = []

    @property
    def outbox(self) -> SqlOutbox:
        return self._outbox

    @property
    def inbound(self) -> SqlInbound:
        return self._inbound

    @property
    def links(self) -> SqlLinkUses:
        return self._links

    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Insert a new request (assigns its id); its pending changes are cleared once committed."""
        self.written.append(request)
        return self._store.add_in(self.connection, request, actor)

    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        self.written.append(request)
        return self._store.save_in(self.connection, request, actor)

    def get(self, request_id: int) -> TrainingRequest:
        return SqlStore._get(self.connection, request_id)

    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest:
        request = self.get(request_id)
        if expect_version is not None and request.version != expect_version:
            raise Conflict(request_id, expect_version, request.version)
        mutate(request)
        return self.save(request, actor)

    def record_events(self, request_id: int, events: Sequence[DomainEvent], actor: str, at: datetime) -> None:
        self._store.record_events(self.connection, request_id, events, actor, at)


class SqlUnitOfWork:
    """Transactions over one engine; ``outbox``, ``events`` (the event outbox), ``inbound`` and ``links``
    outside them read or write on their own."""

    def __init__(self, engine: Engine, store: SqlStore | None = None) -> None:
        self.engine = engine
        self._store = store or SqlStore(engine)
        self._outbox = SqlOutbox(engine)
        self._inbound = SqlInbound(engine)
        self._links = SqlLinkUses(engine)
        self._events = SqlEventLog(engine)

    @property
    def outbox(self) -> SqlOutbox:
        return self._outbox

    @property
    def events(self) -> SqlEventLog:
        return self._events

    @property
    def inbound(self) -> SqlInbound:
        return self._inbound

    @property
    def links(self) -> SqlLinkUses:
        return self._links

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        """A write transaction: commits when the block ends, rolls back when it raises.

        Requests changed through it keep their pending events until then; a caller that rolls back
        discards them. After a commit they are cleared."""
        with write_transaction(self.engine) as conn:
            tx = SqlTransaction(self._store, conn)
            yield tx
        for request in tx.written:
            request.clear_pending()
