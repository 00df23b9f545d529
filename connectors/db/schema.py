"""Schema management: Alembic migrations, applied on first use and by ``ldflow db upgrade``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

from connectors.db.engine import MIGRATION_LOCK_KEY, write_transaction

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0011_sla_clocks"  # newest revision; a test checks it matches the migrations folder


class MigrationRefused(RuntimeError):
    """A migration that cannot apply to the database as it is (the message says why and what to do);
    nothing was changed."""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return row[0] if row else None


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate to ``revision``; safe when several processes start at once. Returns the revision."""
    from alembic import command
    from alembic.config import Config

    with write_transaction(engine, MIGRATION_LOCK_KEY) as conn:  # serialises concurrent first uses
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return current_revision(engine)


def ensure_schema(engine: Engine) -> str | None:
    """Apply pending migrations if the database is not at HEAD (cheap when it is); returns the revision it
    had before when it migrated (None: nothing to do, or a new database)."""
    before = current_revision(engine)
    if before != HEAD:
        upgrade(engine)
        return before
    return None


def unsealed_by_migration(before: str | None) -> bool:
    """Whether migrating from ``before`` left chain heads without the audit key's HMAC (0009 re-chains the
    history without the key): the caller then signs a checkpoint, which vouches for them."""
    return before is not None and before < "0009"
