"""Recording link uses on SQL (:class:`connectors.ports.LinkUseLog`), in the caller's transaction.

A single-use link's row carries its id in ``once_key`` (unique): the check before the insert
answers the ordinary case, and the constraint makes a race between two posts end with one row.
Writers run in ``write_transaction`` (``BEGIN IMMEDIATE`` on SQLite, the chain lock on
PostgreSQL), so the second post sees the first's row once it may go on.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select

from connectors.db.engine import read_transaction
from connectors.db.tables import link_uses
from connectors.ports.links import LinkUse


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SqlLinkUses:
    """Link uses over a connection in a write transaction, or an engine for reads."""

    def __init__(self, target: Connection | Engine) -> None:
        self._target = target

    def record(self, use: LinkUse, *, once: bool) -> bool:
        if not isinstance(self._target, Connection):
            raise TypeError("a link use is recorded inside the transaction of its action")
        conn = self._target
        if once and conn.execute(select(link_uses.c.id).where(link_uses.c.once_key == use.link_id)).first():
            return False
        conn.execute(insert(link_uses).values(
            link_id=use.link_id, purpose=use.purpose, request_id=use.request_id, person=use.person,
            action=use.action, used_at=_utc(use.used_at), once_key=use.link_id if once else None))
        return True

    def uses(self, link_id: str) -> list[LinkUse]:
        query = select(link_uses).where(link_uses.c.link_id == link_id).order_by(link_uses.c.id)
        if isinstance(self._target, Connection):
            rows = self._target.execute(query).all()
        else:
            with read_transaction(self._target) as conn:
                rows = conn.execute(query).all()
        return [LinkUse(link_id=r.link_id, purpose=r.purpose, request_id=r.request_id, person=r.person,
                        action=r.action, used_at=_utc(r.used_at)) for r in rows]
