"""Recording link uses on SQL (:class:`connectors.ports.LinkUseLog`), in the caller's transaction.

A single-use link's row carries its id in ``once_key`` (unique): the check before the insert
answers the ordinary case, and the constraint makes a race between two posts end with one row.
The insert of a single-use link is ``INSERT … ON CONFLICT (once_key) DO NOTHING``: on PostgreSQL,
where writers take no global lock, the second of two racing posts waits for the first's commit
and then inserts nothing (``record`` answers False) instead of failing on the constraint.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, insert, select, text

from connectors.db.engine import read_transaction
from connectors.db.tables import link_uses
from connectors.ports.links import LinkUse


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_INSERT_ONCE = text(
    "INSERT INTO link_uses (link_id, purpose, request_id, person, action, used_at, once_key) "
    "VALUES (:link_id, :purpose, :request_id, :person, :action, :used_at, :once_key) "
    "ON CONFLICT (once_key) DO NOTHING").bindparams(bindparam("used_at", type_=link_uses.c.used_at.type))


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
        values = {"link_id": use.link_id, "purpose": use.purpose, "request_id": use.request_id,
                  "person": use.person, "action": use.action, "used_at": _utc(use.used_at),
                  "once_key": use.link_id if once else None}
        if not once:
            conn.execute(insert(link_uses).values(**values))
            return True
        return bool(conn.execute(_INSERT_ONCE, values).rowcount == 1)

    def uses(self, link_id: str) -> list[LinkUse]:
        query = select(link_uses).where(link_uses.c.link_id == link_id).order_by(link_uses.c.id)
        if isinstance(self._target, Connection):
            rows = self._target.execute(query).all()
        else:
            with read_transaction(self._target) as conn:
                rows = conn.execute(query).all()
        return [LinkUse(link_id=r.link_id, purpose=r.purpose, request_id=r.request_id, person=r.person,
                        action=r.action, used_at=_utc(r.used_at)) for r in rows]
