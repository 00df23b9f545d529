"""API tokens (flows/tokens.py) on the in-memory fake: made once, stored as a hash, checked, revoked."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from connectors.testing import InMemoryTokens
from flows.attribution import person, shown, split
from flows.clock import FixedClock
from flows.tokens import Role, TokenService
from states.errors import InvalidInput, NotFound
from tests.builders import T0


@pytest.fixture
def tokens() -> TokenService:
    return TokenService(InMemoryTokens(), FixedClock(T0))


def test_a_token_is_shown_once_and_stored_as_its_sha256_only(tokens: TokenService) -> None:
    made = tokens.create("ci-reports", "partner", "Ann Lee", "ops")
    assert made.secret.startswith("ldf_") and len(made.secret) == 47
    store = tokens.store
    assert isinstance(store, InMemoryTokens)
    assert list(store._hashes) == [hashlib.sha256(made.secret.encode()).hexdigest()]
    assert made.secret not in repr(store._tokens) and made.secret not in repr(tokens.list())
    assert made.token.prefix == made.secret[:12]
    assert (made.token.name, made.token.owner, made.token.role, made.token.created_by) == \
        ("ci-reports", "Ann Lee", "partner", "ops")
    assert tokens.create("other", "viewer", "Bo", "ops").secret != made.secret


def test_authenticate_gives_the_owner_and_role_until_revoked(tokens: TokenService) -> None:
    secret = tokens.create("ci", "viewer", "Ann Lee", "ops").secret
    who = tokens.authenticate(secret)
    assert who is not None and who.role is Role.VIEWER and not who.role.writes
    assert who.actor == "Ann Lee"  # the person; the API's service stamps via: api on the events
    for wrong in ("", "ldf_", secret[:-1] + ("A" if secret[-1] != "A" else "B"), secret + "x", "Bearer " + secret):
        assert tokens.authenticate(wrong) is None, wrong
    token, now = tokens.revoke("ci")
    assert now and token.revoked_at is not None
    assert tokens.authenticate(secret) is None
    again, now = tokens.revoke("ci")
    assert not now and again.revoked_at == token.revoked_at
    assert [t.name for t in tokens.list()] == ["ci"]  # a revoked token stays listed


def test_last_use_is_recorded_at_most_once_a_minute(tokens: TokenService) -> None:
    clock = tokens.clock
    assert isinstance(clock, FixedClock)
    secret = tokens.create("ci", "admin", "Ann", "ops").secret
    tokens.authenticate(secret)
    assert tokens.list()[0].last_used_at == T0
    clock.advance(timedelta(seconds=30))
    tokens.authenticate(secret)
    assert tokens.list()[0].last_used_at == T0
    clock.advance(timedelta(seconds=31))
    tokens.authenticate(secret)
    assert tokens.list()[0].last_used_at == T0 + timedelta(seconds=61)


def test_bad_input_names_every_field_and_stores_nothing(tokens: TokenService) -> None:
    with pytest.raises(InvalidInput) as caught:
        tokens.create("bad name", "owner", "line\nbreak", "ops")
    assert [e.field for e in caught.value.errors] == ["name", "role", "owner"]
    tokens.create("ci", "partner", "Ann", "ops")
    with pytest.raises(InvalidInput) as taken:
        tokens.create("ci", "partner", "Ann", "ops")
    assert "exists already" in str(taken.value)
    with pytest.raises(InvalidInput):
        tokens.create("long", "partner", "x" * 301, "ops")
    assert [t.name for t in tokens.list()] == ["ci"]
    with pytest.raises(NotFound):
        tokens.revoke("nope")


def test_an_entry_shows_the_person_and_the_channel_from_its_two_fields() -> None:
    assert shown("Ann Lee", "link") == "Ann Lee (via link)" and shown("ops@example.org", "") == "ops@example.org"
    # an entry written before the channel had its field: the channel is read from the actor text
    assert shown("Ann Lee (via api)") == "Ann Lee (via api)" and person("Ann Lee (via api)") == "Ann Lee"
    assert shown("Ann Lee (via api)", "api") == "Ann Lee (via api)"
    assert split("Ann Lee (via api)") == ("Ann Lee", "api")
    assert split("ops@example.org") == ("ops@example.org", None)
    assert split("Ann (via carrier pigeon)") == ("Ann (via carrier pigeon)", None)
    assert person("Ann (via carrier pigeon)") == "Ann (via carrier pigeon)"
