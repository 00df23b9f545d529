"""Engines: the embedded SQLite file by default, PostgreSQL through one URL.

SQLite runs in WAL mode with a busy timeout; a write transaction starts with
``BEGIN IMMEDIATE`` so writers queue for the lock up front instead of failing
half-way with SQLITE_BUSY. On PostgreSQL there is no global write lock: each
request has its own audit chain and a writer holds that request's row lock
(``SELECT … FOR UPDATE``) while it appends, so writers on different requests run
in parallel. Schema migrations and checkpoint writers take a transaction-scoped
advisory lock of their own (``lock=``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text

# Advisory lock keys on PostgreSQL (any constants will do): schema migrations, checkpoint writers.
MIGRATION_LOCK_KEY = 0x6C64666C6F77  # "ldflow"
CHECKPOINT_LOCK_KEY = 0x6C64666C6F78


def sqlite_url(home: Path) -> str:
    from connectors.files import private_dir, private_file

    private_dir(home)  # 0700; the database 0600 before SQLite creates it (its WAL and SHM follow)
    return f"sqlite:///{private_file(home / 'ldflow.db').resolve()}"


def make_engine(url: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 30_000) -> Engine:
    """An engine for ``url``. ``synchronous`` applies to SQLite (FULL or NORMAL)."""
    if url.startswith("sqlite"):
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        # Pooled (SQLAlchemy's default QueuePool for a file): opening a SQLite connection costs
        # pragmas and a schema parse, and closing the last one checkpoints and deletes the WAL —
        # about 3x the cost of a transition (bench/README.md).
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _configure_sqlite(engine, synchronous.upper(), busy_timeout_ms)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "BEGIN IMMEDIATE" if conn.get_execution_options().get("ldflow_write") else "BEGIN"
        conn.exec_driver_sql(mode)


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine, lock: int | None = None) -> Iterator[Connection]:
    """A write transaction: ``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL row locks, plus the advisory
    lock ``lock`` when given (writers that must not run at once: migrations, checkpoints)."""
    with engine.connect() as conn:
        conn.execution_options(ldflow_write=True)
        with conn.begin():
            if lock is not None and conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn
