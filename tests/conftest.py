"""Shared fixtures: clocks, services on the in-memory store, SQLite and PostgreSQL databases.

PostgreSQL tests create their own database (``ldflow_test_<random>``) on the
server named by ``LDFLOW_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and drop it afterwards. Without
a reachable server they skip, unless ``LDFLOW_TEST_POSTGRES_URL`` is set: then
PostgreSQL is mandatory and they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from connectors.db import schema
from connectors.db.engine import make_engine
from connectors.db.store import SqlStore
from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from tests.builders import T0

# Modest example counts keep the unit suite at a few seconds; HYPOTHESIS_PROFILE=thorough digs deeper.
settings.register_profile("ldflow", deadline=None, max_examples=50, stateful_step_count=30,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", parent=settings.get_profile("ldflow"), max_examples=1000,
                          stateful_step_count=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ldflow"))

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


# --- clock and in-memory service -------------------------------------------------------------------

@pytest.fixture
def clock() -> FixedClock:
    """A clock standing still at ``tests.builders.T0`` until advanced."""
    return FixedClock(T0)


@pytest.fixture
def memory_store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def memory_service(memory_store: InMemoryStore, clock: FixedClock) -> Service:
    return Service(memory_store, clock)


# --- SQLite ----------------------------------------------------------------------------------------

@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite file (schema applied) under this test's tmp_path."""
    url = f"sqlite:///{tmp_path / 'ldflow.db'}"
    engine = make_engine(url)
    schema.ensure_schema(engine)
    engine.dispose()
    return url


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


# --- PostgreSQL ------------------------------------------------------------------------------------

def postgres_admin_url() -> str:
    return os.environ.get("LDFLOW_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def _postgres_mandatory() -> bool:
    return bool(os.environ.get("LDFLOW_TEST_POSTGRES_URL"))


_pg_state: dict[str, str | None] = {}


def _postgres_unavailable() -> str | None:
    """None when the server answers, else why not (checked once per session)."""
    if "why" not in _pg_state:
        try:
            import psycopg

            with psycopg.connect(postgres_admin_url(), connect_timeout=3, autocommit=True) as conn:
                conn.execute("SELECT 1")
            _pg_state["why"] = None
        except Exception as exc:  # any failure to connect means "no PostgreSQL here"
            _pg_state["why"] = f"PostgreSQL at {make_url(postgres_admin_url())!r} unavailable: {exc}"
    return _pg_state["why"]


def require_postgres() -> None:
    """Skip (or fail, when LDFLOW_TEST_POSTGRES_URL is set) without a PostgreSQL server."""
    why = _postgres_unavailable()
    if why is None:
        return
    if _postgres_mandatory():
        pytest.fail(f"LDFLOW_TEST_POSTGRES_URL is set but {why}")
    pytest.skip(why + " (set LDFLOW_TEST_POSTGRES_URL to make these tests mandatory)")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database that is dropped after the test (schema applied)."""
    require_postgres()
    import psycopg

    admin = postgres_admin_url()
    name = f"ldflow_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        schema.ensure_schema(engine)
        engine.dispose()
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """Like ``pg_url`` but without the schema (for migration tests)."""
    require_postgres()
    import psycopg

    admin = postgres_admin_url()
    name = f"ldflow_test_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


# --- either backend --------------------------------------------------------------------------------

BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database with the schema applied: SQLite, then PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sql_store(engine: Engine) -> SqlStore:
    return SqlStore(engine)


@pytest.fixture
def sql_service(sql_store: SqlStore, clock: FixedClock) -> Service:
    return Service(sql_store, clock)
