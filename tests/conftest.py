"""Shared fixtures: clocks, services on the in-memory store, SQLite and PostgreSQL databases.

PostgreSQL tests create their own database (``ldflow_test_<random>``) on the
server named by ``LDFLOW_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and drop it afterwards; it is a
copy of a template migrated once per session (``pg_template``). Without
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


def _database_url(name: str) -> str:
    return make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)


def _create_database(name: str, template: str | None = None) -> None:
    import psycopg

    clause = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{clause}')


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """The name of a database migrated to HEAD once per test session, copied by every ``pg_url``.

    Copying a template (``CREATE DATABASE … TEMPLATE``) takes a fraction of running the migrations
    on each test's database. The name is unique to the session, so sessions running at once on one
    server never share (or drop) a template. ``CREATE DATABASE … TEMPLATE`` refuses while anyone
    is connected to the template: the engine is disposed after migrating (no pooled connection is
    left) and the template then refuses connections. Dropped at the end of the session.
    """
    require_postgres()
    name = f"ldflow_template_{secrets.token_hex(6)}"
    _create_database(name)
    try:
        engine = make_engine(_database_url(name))
        try:
            schema.ensure_schema(engine)
        finally:
            engine.dispose()
        import psycopg

        with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        yield name
    finally:
        _drop_database(name)


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """URL of a fresh PostgreSQL database (schema applied: a copy of ``pg_template``), dropped after the test."""
    name = f"ldflow_test_{secrets.token_hex(6)}"
    _create_database(name, template=pg_template)
    try:
        yield _database_url(name)
    finally:
        _drop_database(name)


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """Like ``pg_url`` but without the schema (for migration tests)."""
    require_postgres()
    name = f"ldflow_test_{secrets.token_hex(6)}"
    _create_database(name)
    try:
        yield _database_url(name)
    finally:
        _drop_database(name)


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
