"""Migration 0003_api_tokens on a database that has data: the rows stay, the table arrives, and going
back down removes only it (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from connectors.db import schema
from connectors.db.engine import make_engine, write_transaction
from connectors.db.tokens import SqlTokens
from tests.builders import ACTOR, T0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'old.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_empty_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _alembic(engine: Engine, action: str, revision: str) -> None:
    with write_transaction(engine) as conn:
        config = Config()
        config.set_main_option("script_location", str(schema.MIGRATIONS))
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


def old_snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """The rows as 0001 had them (0007 adds columns to requests and rebuilds audit_events): raw SQL."""
    with engine.connect() as conn:
        return {"requests": [tuple(r) for r in conn.execute(text(
                    "SELECT id, title, state, version, requester_email, sponsor_email, head_seq, document "
                    "FROM requests ORDER BY id"))],
                "audit_events": [tuple(r) for r in conn.execute(text(
                    "SELECT seq, request_id, type, actor, at, payload FROM audit_events ORDER BY seq"))],
                "checkpoints": [tuple(r) for r in conn.execute(text("SELECT * FROM checkpoints ORDER BY key"))],
                "outbox": [tuple(r) for r in conn.execute(text("SELECT * FROM outbox ORDER BY id"))]}


def test_upgrade_keeps_the_data_and_adds_the_tokens_table(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine, "0001")
    with empty_engine.begin() as conn:  # a 0001-era row, written as that schema had it
        conn.execute(text("INSERT INTO requests (id, title, state, version, requester_email, sponsor_email, "
                          "created_at, updated_at, head_seq, document) VALUES (41, 'Old one', 'received', 1, "
                          "'a@example.org', 'b@example.org', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0, '{}')"))
    before = old_snapshot(empty_engine)
    assert "api_tokens" not in inspect(empty_engine).get_table_names()

    assert schema.upgrade(empty_engine) == schema.HEAD
    assert old_snapshot(empty_engine) == before
    tokens = SqlTokens(empty_engine)
    tokens.add("ci", "Ann", "partner", "a" * 64, "ldf_abcdefgh", T0, ACTOR)
    assert [t.name for t in tokens.all()] == ["ci"]

    _alembic(empty_engine, "downgrade", "0001")
    assert "api_tokens" not in inspect(empty_engine).get_table_names()
    assert old_snapshot(empty_engine) == before
