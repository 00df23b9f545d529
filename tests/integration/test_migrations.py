"""Alembic migrations: reach HEAD on empty SQLite and PostgreSQL, match tables.py exactly, go back down."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from connectors.db import schema
from connectors.db.engine import make_engine
from connectors.db.tables import metadata

VERSIONS = schema.MIGRATIONS / "versions"
TABLES = {"requests", "audit_events", "checkpoints", "outbox", "inbound", "link_uses", "event_outbox", "api_tokens"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no tables at all."""
    url = f"sqlite:///{tmp_path / 'empty.db'}" if request.param == "sqlite" else request.getfixturevalue(
        "pg_empty_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _revisions() -> dict[str, str | None]:
    """revision -> down_revision of every migration file."""
    found: dict[str, str | None] = {}
    for path in sorted(VERSIONS.glob("*.py")):
        values = {}
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in ("revision", "down_revision")):
                values[node.targets[0].id] = ast.literal_eval(node.value)
        assert "revision" in values, f"{path.name} declares no revision"
        found[values["revision"]] = values.get("down_revision")
    return found


def test_head_is_the_newest_revision_in_the_versions_folder() -> None:
    revisions = _revisions()
    assert revisions, "no migrations found"
    parents = {down for down in revisions.values() if down is not None}
    heads = [rev for rev in revisions if rev not in parents]
    assert heads == [schema.HEAD], f"one head expected, {schema.HEAD!r} in schema.py; found {heads}"
    assert [rev for rev, down in revisions.items() if down is None] != [], "no base revision"


def test_upgrade_on_an_empty_database_reaches_head(empty_engine: Engine) -> None:
    assert schema.current_revision(empty_engine) is None
    assert schema.upgrade(empty_engine) == schema.HEAD
    assert schema.current_revision(empty_engine) == schema.HEAD
    assert set(inspect(empty_engine).get_table_names()) >= TABLES


def test_the_migrated_schema_matches_the_table_definitions(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_ensure_schema_twice_is_a_no_op(empty_engine: Engine) -> None:
    schema.ensure_schema(empty_engine)
    with empty_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        before = {t: sorted(c["name"] for c in inspect(conn).get_columns(t)) for t in TABLES}
    schema.ensure_schema(empty_engine)
    schema.ensure_schema(empty_engine)
    with empty_engine.connect() as conn:
        after = {t: sorted(c["name"] for c in inspect(conn).get_columns(t)) for t in TABLES}
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    assert after == before and schema.current_revision(empty_engine) == schema.HEAD


def test_ensure_schema_keeps_data(empty_engine: Engine) -> None:
    from connectors.db.store import SqlStore
    from flows.clock import FixedClock
    from flows.service import Service
    from tests.builders import ACTOR, T0, intake_data

    schema.ensure_schema(empty_engine)
    Service(SqlStore(empty_engine), FixedClock(T0)).submit(intake_data(), ACTOR)
    schema.ensure_schema(empty_engine)
    assert SqlStore(empty_engine).get(1).intake.title == "Objection handling course"


def test_the_event_outbox_migration_keeps_an_existing_databases_data(empty_engine: Engine) -> None:
    """A database made before the event outbox (revision 0001) with a request in it: upgraded, the
    request, its history and its outbox rows are intact and new changes stage their events."""
    from connectors.db.event_outbox import SqlEventLog
    from connectors.db.store import SqlStore
    from flows.clock import FixedClock
    from flows.service import Service
    from tests.builders import ACTOR, T0, intake_data

    schema.upgrade(empty_engine, "0001")
    assert "event_outbox" not in inspect(empty_engine).get_table_names()
    with empty_engine.begin() as conn:  # a 0001-era row, written as that schema had it
        conn.execute(text("INSERT INTO requests (id, title, state, version, requester_email, sponsor_email, "
                          "created_at, updated_at, head_seq, document) VALUES (41, 'Old one', 'received', 1, "
                          "'a@example.org', 'b@example.org', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0, '{}')"))
    before = {t: _rows(empty_engine, t) for t in ("requests", "audit_events", "outbox")}
    assert schema.upgrade(empty_engine) == schema.HEAD
    after = {t: _rows(empty_engine, t) for t in before}
    assert after == before
    assert SqlEventLog(empty_engine).count_pending() == 0
    Service(SqlStore(empty_engine), FixedClock(T0)).submit(intake_data(), ACTOR)
    assert [e.event for e in SqlEventLog(empty_engine).pending()] == ["ldflow.request.submitted",
                                                                      "ldflow.outbox.enqueued"]


# The columns of requests as revision 0001 made them (0007 added the card columns, 0009 the chain head).
OLD_REQUEST_COLUMNS = ("id, title, state, version, requester_email, sponsor_email, created_at, updated_at, head_seq, "
                       "document")


def _rows(engine: Engine, table: str) -> list[tuple[object, ...]]:
    columns = OLD_REQUEST_COLUMNS if table == "requests" else "*"
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY 1"))]


def test_downgrade_to_base_removes_the_tables(empty_engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    from connectors.db.engine import write_transaction

    schema.upgrade(empty_engine)
    with write_transaction(empty_engine) as conn:
        config = Config()
        config.set_main_option("script_location", str(schema.MIGRATIONS))
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    left = set(inspect(empty_engine).get_table_names()) - {"alembic_version"}
    assert left == set()
    assert schema.current_revision(empty_engine) is None
    if empty_engine.dialect.name == "postgresql":
        with empty_engine.connect() as conn:
            functions = conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'ldflow_audit_append_only'"))
            assert functions.scalar_one() == 0
    # and back up again: the migrations are repeatable
    assert schema.upgrade(empty_engine) == schema.HEAD


def test_concurrent_first_use_migrates_once(tmp_path: Path) -> None:
    """Several processes starting on a fresh SQLite file at once: all succeed, one schema."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = ("import sys; from connectors.db.engine import make_engine; from connectors.db import schema; "
            "schema.ensure_schema(make_engine(sys.argv[1]))")
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=root, env=env, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    engine = make_engine(url)
    assert schema.current_revision(engine) == schema.HEAD
    engine.dispose()


def test_upgrading_to_the_inbound_content_digest_keeps_the_inbound_rows(empty_engine: Engine) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    schema.upgrade(empty_engine, "0001")
    with empty_engine.begin() as conn:
        conn.execute(text("INSERT INTO inbound (source, message_id, received_at, status) "
                          "VALUES ('drop:x', '<m1@example.org>', :at, 'processed')"),
                     {"at": datetime(2026, 11, 2, 9, 0, tzinfo=UTC)})
    assert schema.upgrade(empty_engine) == schema.HEAD
    with empty_engine.connect() as conn:
        rows = conn.execute(text("SELECT message_id, status, content_sha256 FROM inbound")).all()
    assert [tuple(r) for r in rows] == [("<m1@example.org>", "processed", None)]
