"""Staff accounts: ``Accounts``, what ``ldflow users`` and the web app's sign-in call.

Passwords are hashed with argon2id (``argon2-cffi``) and never kept, printed or logged; a failed
sign-in costs the same whether or not the account exists (a dummy hash is checked). A sign-in link
is a random id, signed with the ``sign-in-links`` key (``connectors.keys``): the database holds the
id and its expiry, the outbox row the id; the signed link is made when the mail is rendered
(:func:`with_sign_in_url`), so no stored row is a working link. Links are single use and expire.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

from connectors.email.addresses import InvalidAddressError, validate_address
from connectors.keys import secret_key
from connectors.ports.users import ROLES, User, UserStore
from states.errors import FieldError, InvalidInput, NotFound
from states.notifications import Notification, Recipient

if TYPE_CHECKING:
    from flows.settings import Settings

MIN_PASSWORD = 12
LINK_MINUTES = 15
SIGN_IN_TEMPLATE = "sign_in_link"


def _email(value: str) -> str:
    try:
        return validate_address("email", value).lower()
    except InvalidAddressError as exc:
        raise InvalidInput([FieldError("email", str(exc))]) from None


def _role(value: str) -> str:
    if value not in ROLES:
        raise InvalidInput([FieldError("role", f"{value!r} is not one of {', '.join(ROLES)}")])
    return value


def _password(value: str) -> str:
    if len(value) < MIN_PASSWORD or not value.strip():
        raise InvalidInput([FieldError("password", f"at least {MIN_PASSWORD} characters")])
    if len(value) > 1000:
        raise InvalidInput([FieldError("password", "at most 1000 characters")])
    return value


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key(settings.keys_dir, "sign-in-links"), salt="ldflow.sign-in")


def with_sign_in_url(settings: Settings, notification: Notification) -> Notification:
    """The notification with its sign-in ``url`` when it is a sign-in link's mail (the signed link is
    made here, as the mail is rendered, so the outbox row alone cannot sign anybody in)."""
    if notification.template != SIGN_IN_TEMPLATE:
        return notification
    token = _signer(settings).dumps(str(notification.context["link"]))
    return replace(notification, context={**notification.context,
                                          "url": f"{settings.web_url}/sign-in/link/{token}"})


class Accounts:
    """Add, list, change and sign in staff accounts."""

    def __init__(self, users: UserStore, settings: Settings, now: Callable[[], datetime],
                 hasher: PasswordHasher | None = None) -> None:
        self.users = users
        self.settings = settings
        self._now = now
        self.hasher = hasher or PasswordHasher()  # argon2id, the library's recommended parameters
        self._dummy: str | None = None

    def _dummy_hash(self) -> str:
        """A hash no password matches, checked for unknown accounts so that they cost the same."""
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    def add(self, email: str, name: str, role: str, password: str | None) -> User:
        """A new active account; ``password`` None: it signs in by link only."""
        errors: list[FieldError] = []
        checks: list[Callable[[], object]] = [lambda: _email(email), lambda: _role(role)]
        if password is not None:
            checks.append(lambda: _password(password))
        for check in checks:
            try:
                check()
            except InvalidInput as exc:
                errors += exc.errors
        name = (name or "").strip()
        if not name or len(name) > 200 or any(c in name for c in "\r\n\x00"):
            errors.append(FieldError("name", "a name on one line (at most 200 characters)"))
        if errors:
            raise InvalidInput(errors)
        hashed = self.hasher.hash(password) if password is not None else None
        try:
            return self.users.add_user(_email(email), name, role, hashed, self._now())
        except ValueError:
            raise InvalidInput([FieldError("email", f"{email}: an account with this e-mail exists")]) from None

    def list(self) -> list[User]:
        return self.users.users()

    def get(self, email: str) -> User:
        found = self.users.user_by_email(_email(email))
        if found is None:
            raise NotFound(f"account {email}")
        return found

    def disable(self, email: str) -> User:
        """Disable the account: it cannot sign in, and its sessions end."""
        return self.users.change_user(self.get(email).id, self._now(), active=False)

    def enable(self, email: str) -> User:
        return self.users.change_user(self.get(email).id, self._now(), active=True)

    def set_role(self, email: str, role: str) -> User:
        return self.users.change_user(self.get(email).id, self._now(), role=_role(role))

    def set_password(self, email: str, password: str) -> User:
        hashed = self.hasher.hash(_password(password))
        return self.users.change_user(self.get(email).id, self._now(), password_hash=hashed)

    def active(self, user_id: int, epoch: int) -> User | None:
        """The account of a session: active and with the session's epoch, else None (signed out)."""
        user = self.users.user_by_id(user_id)
        return user if user is not None and user.active and user.session_epoch == epoch else None

    def is_admin(self, email: str) -> bool:
        """Whether ``email`` is an active admin account (the CLI's check before acting on someone's behalf)."""
        try:
            user = self.users.user_by_email(email.strip().lower())
        except Exception:
            return False
        return user is not None and user.active and user.role == "admin"

    def authenticate(self, email: str, password: str) -> User | None:
        """The active account whose password this is, else None (same cost either way)."""
        user = self.users.user_by_email(email.strip().lower()) if email else None
        hashed = user.password_hash if user is not None and user.active and user.password_hash else None
        try:
            self.hasher.verify(hashed or self._dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        if hashed is None or user is None:
            return None
        if self.hasher.check_needs_rehash(hashed):
            user = self.users.change_user(user.id, self._now(), password_hash=self.hasher.hash(password))
        return user

    def send_sign_in_link(self, email: str) -> bool:
        """Queue a sign-in link's mail to an active account (True); nothing for an unknown one (False).
        The page says the same either way, so it tells nobody which addresses have accounts."""
        user = self.users.user_by_email(email.strip().lower()) if email else None
        if user is None or not user.active:
            return False
        link_id = secrets.token_hex(16)
        now: datetime = self._now()
        note = Notification(key=f"signin:{link_id}", request_id=0, template=SIGN_IN_TEMPLATE,
                            to=(Recipient(user.name, user.email, "staff"),), subject="Your ldflow sign-in link",
                            context={"link": link_id, "minutes": LINK_MINUTES})
        self.users.add_sign_in_link(link_id, user.id, now, now + timedelta(minutes=LINK_MINUTES), note)
        return True

    def redeem(self, token: str) -> User | None:
        """The account a sign-in link's token signs in (once, before it expires), else None."""
        try:
            link_id = _signer(self.settings).loads(token)
        except BadSignature:
            return None
        user_id = self.users.use_sign_in_link(str(link_id), self._now())
        if user_id is None:
            return None
        user = self.users.user_by_id(user_id)
        return user if user is not None and user.active else None
