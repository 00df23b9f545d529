"""Seeding a database at an older revision with real data: today's store cannot write an old schema
(it writes the columns added since), so the rows are made at HEAD in a scratch database and copied,
the columns the old revision has only, with raw SQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from connectors.db import schema
from connectors.db.engine import make_engine
from connectors.db.store import SqlStore

TABLES = ("requests", "audit_events", "checkpoints", "outbox")


def seed_old(old: Engine, revision: str, scratch: Path, make: Callable[[SqlStore], object]) -> None:
    """Migrate ``old`` to ``revision`` and fill it with what ``make`` writes through a HEAD store."""
    schema.upgrade(old, revision)
    new = make_engine(f"sqlite:///{scratch}")
    schema.ensure_schema(new)
    make(SqlStore(new))
    with new.connect() as src, old.begin() as dst:
        for table in TABLES:
            columns = [c["name"] for c in inspect(dst).get_columns(table)]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = [dict(r._mapping) for r in src.execute(text(f"SELECT {quoted} FROM {table}"))]
            if rows:
                dst.execute(text(f"INSERT INTO {table} ({quoted}) VALUES ({', '.join(':' + c for c in columns)})"),
                            rows)
    new.dispose()
