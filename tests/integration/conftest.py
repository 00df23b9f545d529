"""Integration fixtures: each store (in-memory fake, SQLite, PostgreSQL), the service on it, table snapshots."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select

from connectors.db.store import SqlStore
from connectors.db.tables import audit_events, checkpoints, outbox, requests
from connectors.ports import RequestStore
from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service

STORES = [pytest.param("memory", id="memory"), pytest.param("sqlite", id="sqlite"),
          pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def any_store(request: pytest.FixtureRequest) -> RequestStore:
    """The request store port: the in-memory fake, SQLite and PostgreSQL — one contract for all three."""
    if request.param == "memory":
        return InMemoryStore()
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    engine: Engine = request.getfixturevalue(name)
    return SqlStore(engine)


@pytest.fixture
def any_service(any_store: RequestStore, clock: FixedClock) -> Service:
    """The service on each store (``any_store``)."""
    return Service(any_store, clock)


def table_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a command writes, in a stable order (of ``requests``, the columns the
    database has: an older revision's lack the board's card columns)."""
    with engine.connect() as conn:
        present = [requests.c[c["name"]] for c in inspect(conn).get_columns("requests")]
        return {
            "requests": [tuple(r) for r in conn.execute(select(*present).order_by(requests.c.id))],
            "audit_events": [tuple(r) for r in conn.execute(select(audit_events).order_by(audit_events.c.seq))],
            "checkpoints": [tuple(r) for r in conn.execute(select(checkpoints).order_by(checkpoints.c.key))],
            "outbox": [tuple(r) for r in conn.execute(select(outbox).order_by(outbox.c.id))],
        }
