"""``SqlUsers``: the staff accounts and sign-in links in the SQL database (see ``connectors.ports.users``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from connectors.db.engine import read_transaction, write_transaction
from connectors.db.tables import outbox, sign_in_links, users
from connectors.notification_codec import notification_json
from connectors.ports.outbox import OutboxStatus
from connectors.ports.users import User
from states.notifications import Notification


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _user(row: Any) -> User:
    return User(id=row.id, email=row.email, name=row.name, role=row.role, active=bool(row.active),
                session_epoch=row.session_epoch, password_hash=row.password_hash, created_at=_utc(row.created_at))


class SqlUsers:
    """Staff accounts over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_user(self, email: str, name: str, role: str, password_hash: str | None, now: datetime) -> User:
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(users).values(email=email.lower(), name=name, role=role,
                                                  password_hash=password_hash, active=1, session_epoch=0,
                                                  created_at=now, updated_at=now))
        except IntegrityError:
            raise ValueError(f"{email}: an account with this e-mail exists") from None
        found = self.user_by_email(email)
        assert found is not None
        return found

    def user_by_email(self, email: str) -> User | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(users).where(users.c.email == email.lower())).first()
        return _user(row) if row is not None else None

    def user_by_id(self, user_id: int) -> User | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).first()
        return _user(row) if row is not None else None

    def users(self) -> list[User]:
        with read_transaction(self.engine) as conn:
            return [_user(row) for row in conn.execute(select(users).order_by(users.c.email))]

    def change_user(self, user_id: int, now: datetime, *, role: str | None = None, active: bool | None = None,
                    password_hash: str | None = None) -> User:
        values: dict[str, Any] = {"updated_at": now, "session_epoch": users.c.session_epoch + 1}
        if role is not None:
            values["role"] = role
        if active is not None:
            values["active"] = int(active)
        if password_hash is not None:
            values["password_hash"] = password_hash
        with write_transaction(self.engine) as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(**values))
        found = self.user_by_id(user_id)
        if found is None:
            raise ValueError(f"no account {user_id}")
        return found

    def add_sign_in_link(self, link_id: str, user_id: int, now: datetime, expires_at: datetime,
                         notification: Notification) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(insert(sign_in_links).values(id=link_id, user_id=user_id, created_at=now,
                                                      expires_at=expires_at, used_at=None))
            conn.execute(insert(outbox).values(key=notification.key, request_id=notification.request_id,
                                               template=notification.template,
                                               notification=notification_json(notification), created_at=now,
                                               status=OutboxStatus.PENDING, attempts=0))

    def use_sign_in_link(self, link_id: str, now: datetime) -> int | None:
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(sign_in_links).where(sign_in_links.c.id == link_id)).first()
            if row is None or row.used_at is not None or _utc(row.expires_at) <= now:
                return None
            done = conn.execute(update(sign_in_links).where(sign_in_links.c.id == link_id,
                                                            sign_in_links.c.used_at.is_(None))
                                .values(used_at=now))
            return int(row.user_id) if done.rowcount == 1 else None

    def count_links(self) -> int:
        """How many sign-in links were ever issued (tests)."""
        with read_transaction(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(sign_in_links)).scalar() or 0)
