"""Personal access tokens of the JSON API: made, listed and revoked by ``ldflow tokens``, checked by
:mod:`flows.web.api` on every call.

A token is ``ldf_`` and 32 random bytes (URL-safe base64). It is shown once, when it is made; the
store keeps its SHA-256 only (the secret has 256 bits, so a fast hash is enough: nobody can guess
one from its hash), its first characters to tell it apart in a list, the role it acts with and
the owner recorded as the actor of its writes (their events' ``via`` is ``api``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from connectors.ports import ApiToken, TokenStore
from flows.clock import Clock
from flows.service import valid_actor
from states.errors import FieldError, InvalidInput, NotFound

PREFIX = "ldf_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SECRET = re.compile(r"^ldf_[A-Za-z0-9_-]{43}$")


class Role(StrEnum):
    """What a token may do: ``viewer`` reads; ``partner`` also runs every request command;
    ``admin`` may do everything a partner may."""

    ADMIN = "admin"
    PARTNER = "partner"
    VIEWER = "viewer"

    @property
    def writes(self) -> bool:
        return self in (Role.ADMIN, Role.PARTNER)


def secret_hash(secret: str) -> str:
    """What the store keeps of a token's secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A token just made, with its secret: the only time the secret is known."""

    token: ApiToken
    secret: str


@dataclass(frozen=True)
class Principal:
    """Who calls the API: the token's owner, acting with the token's role."""

    token: ApiToken

    @property
    def role(self) -> Role:
        return Role(self.token.role)

    @property
    def actor(self) -> str:
        """The actor recorded on the history entries of this caller's writes (the channel, ``api``, is
        the entries' ``via``: the API's service is ``Service.via("api")``)."""
        return self.token.owner


class TokenService:
    """Making, listing, revoking and checking API tokens."""

    def __init__(self, store: TokenStore, clock: Clock, touch_every: timedelta = timedelta(minutes=1)) -> None:
        self.store = store
        self.clock = clock
        self.touch_every = touch_every  # last use is recorded at most this often (a write per call is too many)

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def create(self, name: str, role: str, owner: str, created_by: str) -> NewToken:
        """A new token called ``name`` acting as ``owner`` with ``role``; InvalidInput naming every
        wrong field (a taken name too), and then nothing is stored."""
        errors: list[FieldError] = []
        name = (name or "").strip()
        if not _NAME.match(name):
            errors.append(FieldError("name", "give 1 to 100 letters, digits, '.', '_' or '-' (e.g. ci-reports)"))
        elif self.store.by_name(name) is not None:
            errors.append(FieldError("name", f"a token named {name!r} exists already (see `ldflow tokens list`)"))
        if role not in {r.value for r in Role}:
            errors.append(FieldError("role", f"{role!r} is not one of {', '.join(r.value for r in Role)}"))
        try:
            owner = valid_actor(owner)
            if len(owner) > 300:
                raise InvalidInput([])
        except InvalidInput:
            errors.append(FieldError("owner", "give the person the token acts as (a name or e-mail, one line, "
                                              "at most 300 characters)"))
        if errors:
            raise InvalidInput(errors)
        secret = PREFIX + secrets.token_urlsafe(32)
        try:
            token = self.store.add(name, owner, role, secret_hash(secret), secret[:12], self._now(),
                                   valid_actor(created_by))
        except ValueError as exc:  # taken by a concurrent create
            raise InvalidInput([FieldError("name", str(exc))]) from None
        return NewToken(token, secret)

    def list(self) -> list[ApiToken]:
        """Every token, oldest first, revoked ones too (never their secrets)."""
        return self.store.all()

    def revoke(self, name: str) -> tuple[ApiToken, bool]:
        """Revoke the token ``name``: (the token, whether this call revoked it — False when it was
        revoked already). NotFound for an unknown name."""
        before = self.store.by_name(name)
        if before is None:
            raise NotFound(f"token {name!r} (see `ldflow tokens list`)")
        token = self.store.revoke(name, self._now())
        assert token is not None
        return token, before.revoked_at is None

    def authenticate(self, secret: str) -> Principal | None:
        """The caller a presented secret stands for; None when it is not a token's, or revoked."""
        if not _SECRET.match(secret or ""):
            return None
        token = self.store.by_hash(secret_hash(secret))
        if token is None or token.revoked_at is not None:
            return None
        now = self._now()
        if token.last_used_at is None or now - token.last_used_at >= self.touch_every:
            self.store.touch(token.id, now)
        return Principal(token)
