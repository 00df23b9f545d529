"""``InMemoryTokens``: the fake of :class:`connectors.ports.TokenStore`."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from connectors.ports.tokens import ApiToken


class InMemoryTokens:
    """API tokens in a dict, with the SQL adapter's rules (unique name and hash, revoked once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[int, ApiToken] = {}
        self._hashes: dict[str, int] = {}

    def add(self, name: str, owner: str, role: str, secret_hash: str, prefix: str, created_at: datetime,
            created_by: str) -> ApiToken:
        with self._lock:
            if secret_hash in self._hashes or any(t.name == name for t in self._tokens.values()):
                raise ValueError(f"a token named {name!r} exists already")
            token = ApiToken(id=len(self._tokens) + 1, name=name, owner=owner, role=role, prefix=prefix,
                             created_at=created_at, created_by=created_by)
            self._tokens[token.id] = token
            self._hashes[secret_hash] = token.id
            return token

    def by_hash(self, secret_hash: str) -> ApiToken | None:
        with self._lock:
            token_id = self._hashes.get(secret_hash)
            return self._tokens.get(token_id) if token_id is not None else None

    def by_name(self, name: str) -> ApiToken | None:
        with self._lock:
            return next((t for t in self._tokens.values() if t.name == name), None)

    def all(self) -> list[ApiToken]:
        with self._lock:
            return [self._tokens[i] for i in sorted(self._tokens)]

    def revoke(self, name: str, at: datetime) -> ApiToken | None:
        with self._lock:
            token = next((t for t in self._tokens.values() if t.name == name), None)
            if token is None:
                return None
            if token.revoked_at is None:
                token = self._tokens[token.id] = replace(token, revoked_at=at)
            return token

    def touch(self, token_id: int, at: datetime) -> None:
        with self._lock:
            if token_id in self._tokens:
                self._tokens[token_id] = replace(self._tokens[token_id], last_used_at=at)
