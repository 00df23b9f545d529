"""The API token store port (``SqlTokens``, ``InMemoryTokens``) and its record.

A personal access token is stored as the SHA-256 of its secret only: the secret itself is shown
once, when the token is made, and never stored, logged or audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ApiToken:
    """One personal access token: who it acts as (``owner``), with which ``role``; never its secret."""

    id: int
    name: str
    owner: str
    role: str
    prefix: str  # the secret's first characters, to tell tokens apart in a list
    created_at: datetime
    created_by: str
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TokenStore(Protocol):
    """Personal access tokens for the JSON API, by the hash of their secret."""

    def add(self, name: str, owner: str, role: str, secret_hash: str, prefix: str, created_at: datetime,
            created_by: str) -> ApiToken:
        """Store a new token; ``ValueError`` when ``name`` (or the hash) is taken: nothing is written."""
        ...

    def by_hash(self, secret_hash: str) -> ApiToken | None:
        """The token whose secret hashes to ``secret_hash`` (revoked ones too), or None."""
        ...

    def by_name(self, name: str) -> ApiToken | None:
        """The token called ``name``, or None."""
        ...

    def all(self) -> list[ApiToken]:
        """Every token, oldest first."""
        ...

    def revoke(self, name: str, at: datetime) -> ApiToken | None:
        """Mark the token ``name`` revoked at ``at`` (once: a revoked token keeps its first time);
        the token as it is now, or None when there is no such token."""
        ...

    def touch(self, token_id: int, at: datetime) -> None:
        """Record that the token was used at ``at``."""
        ...
