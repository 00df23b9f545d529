"""``InMemoryUsers``: the staff accounts port in dictionaries (see ``connectors.ports.users``)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime

from connectors.ports.users import User
from connectors.testing.store import InMemoryStore, OutboxMessage
from states.notifications import Notification


class InMemoryUsers:
    """Accounts and links in memory; a link's mail goes to ``store``'s outbox when one is given."""

    def __init__(self, store: InMemoryStore | None = None) -> None:
        self._lock = threading.Lock()
        self._users: dict[int, User] = {}
        self._links: dict[str, tuple[int, datetime, datetime | None]] = {}
        self._store = store

    def add_user(self, email: str, name: str, role: str, password_hash: str | None, now: datetime) -> User:
        with self._lock:
            if any(u.email == email.lower() for u in self._users.values()):
                raise ValueError(f"{email}: an account with this e-mail exists")
            user = User(id=len(self._users) + 1, email=email.lower(), name=name, role=role, active=True,
                        session_epoch=0, password_hash=password_hash, created_at=now)
            self._users[user.id] = user
            return user

    def user_by_email(self, email: str) -> User | None:
        return next((u for u in self._users.values() if u.email == email.lower()), None)

    def user_by_id(self, user_id: int) -> User | None:
        return self._users.get(user_id)

    def users(self) -> list[User]:
        return sorted(self._users.values(), key=lambda u: u.email)

    def change_user(self, user_id: int, now: datetime, *, role: str | None = None, active: bool | None = None,
                    password_hash: str | None = None) -> User:
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                raise ValueError(f"no account {user_id}")
            user = dataclasses.replace(
                user, session_epoch=user.session_epoch + 1, role=role if role is not None else user.role,
                active=active if active is not None else user.active,
                password_hash=password_hash if password_hash is not None else user.password_hash)
            self._users[user_id] = user
            return user

    def add_sign_in_link(self, link_id: str, user_id: int, now: datetime, expires_at: datetime,
                         notification: Notification) -> None:
        with self._lock:
            self._links[link_id] = (user_id, expires_at, None)
            if self._store is not None:
                self._store.outbox[notification.key] = OutboxMessage(
                    notification.key, notification.request_id, notification.template,
                    dataclasses.asdict(notification), now)

    def use_sign_in_link(self, link_id: str, now: datetime) -> int | None:
        with self._lock:
            found = self._links.get(link_id)
            if found is None or found[2] is not None or found[1] <= now:
                return None
            self._links[link_id] = (found[0], found[1], now)
            return found[0]
