"""The token store port: the same cases on the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.db.tokens import SqlTokens
from connectors.ports import TokenStore
from connectors.testing import InMemoryTokens
from tests.builders import T0
from tests.integration.conftest import STORES


@pytest.fixture(params=STORES)
def token_store(request: pytest.FixtureRequest) -> TokenStore:
    if request.param == "memory":
        return InMemoryTokens()
    return SqlTokens(request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine"))


def test_add_find_list_revoke_touch(token_store: TokenStore) -> None:
    made = token_store.add("ci", "Ann Lee", "partner", "a" * 64, "ldf_abcdefgh", T0, "ops")
    assert token_store.by_hash("a" * 64) == made == token_store.by_name("ci")
    assert made.active and made.last_used_at is None and made.created_at == T0
    assert token_store.by_hash("b" * 64) is None and token_store.by_name("nope") is None
    token_store.add("viewer", "Bo", "viewer", "b" * 64, "ldf_12345678", T0 + timedelta(seconds=1), "ops")
    assert [t.name for t in token_store.all()] == ["ci", "viewer"]
    token_store.touch(made.id, T0 + timedelta(minutes=5))
    assert token_store.by_name("ci").last_used_at == T0 + timedelta(minutes=5)  # type: ignore[union-attr]
    revoked = token_store.revoke("ci", T0 + timedelta(hours=1))
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1) and not revoked.active
    again = token_store.revoke("ci", T0 + timedelta(hours=2))
    assert again is not None and again.revoked_at == T0 + timedelta(hours=1)  # revoked once
    assert token_store.revoke("nope", T0) is None
    assert token_store.by_hash("a" * 64) == again  # still found, so the caller can tell it is revoked


def test_a_taken_name_or_hash_is_refused_and_nothing_is_stored(token_store: TokenStore) -> None:
    token_store.add("ci", "Ann", "partner", "a" * 64, "ldf_abcdefgh", T0, "ops")
    with pytest.raises(ValueError, match="exists already"):
        token_store.add("ci", "Bo", "viewer", "c" * 64, "ldf_cccccccc", T0, "ops")
    with pytest.raises(ValueError):
        token_store.add("other", "Bo", "viewer", "a" * 64, "ldf_abcdefgh", T0, "ops")
    assert [t.name for t in token_store.all()] == ["ci"]
