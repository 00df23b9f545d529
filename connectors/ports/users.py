"""The staff accounts port (``SqlUsers``, ``InMemoryUsers``) and its data types.

Accounts hold an argon2 hash (made by the application, never the password), a role and a
``session_epoch`` that every session carries: bumping it signs the account's sessions out.
Sign-in links are stored as an id and an expiry; the link a person receives is that id, signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from states.notifications import Notification

ROLES = ("admin", "partner", "viewer")


@dataclass(frozen=True)
class User:
    """One staff account (the hash stays inside the store's callers that check passwords)."""

    id: int
    email: str
    name: str
    role: str
    active: bool
    session_epoch: int
    password_hash: str | None
    created_at: datetime


class UserStore(Protocol):
    """Staff accounts and their sign-in links."""

    def add_user(self, email: str, name: str, role: str, password_hash: str | None, now: datetime) -> User:
        """A new active account; ``ValueError`` when the (lower-cased) e-mail has one already."""
        ...

    def user_by_email(self, email: str) -> User | None:
        ...

    def user_by_id(self, user_id: int) -> User | None:
        ...

    def users(self) -> list[User]:
        """Every account, by e-mail."""
        ...

    def change_user(self, user_id: int, now: datetime, *, role: str | None = None, active: bool | None = None,
                    password_hash: str | None = None) -> User:
        """Set what is given and bump ``session_epoch`` (the account's sessions end)."""
        ...

    def add_sign_in_link(self, link_id: str, user_id: int, now: datetime, expires_at: datetime,
                         notification: Notification) -> None:
        """Store the link and queue its mail as an outbox row (key ``notification.key``), together."""
        ...

    def use_sign_in_link(self, link_id: str, now: datetime) -> int | None:
        """Mark the link used and return its account's id; None when unknown, used or expired."""
        ...
