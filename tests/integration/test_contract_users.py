"""The staff accounts port: the same cases on ``InMemoryUsers``, SQLite and PostgreSQL (``SqlUsers``);
and the 0006_web_users migration on a database holding requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from connectors.db.users import SqlUsers
from connectors.ports import UserStore
from connectors.testing import InMemoryUsers
from states.notifications import Notification, Recipient
from tests.builders import T0

BACKENDS = [pytest.param("memory", id="memory"), pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def users(request: pytest.FixtureRequest) -> UserStore:
    if request.param == "memory":
        return InMemoryUsers()
    engine: Engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    return SqlUsers(engine)


def _note(link: str) -> Notification:
    return Notification(key=f"signin:{link}", request_id=0, template="sign_in_link",
                        to=(Recipient("Ada", "ada@example.org"),), subject="Your ldflow sign-in link",
                        context={"link": link, "minutes": 15})


def test_accounts_are_added_found_and_unique_by_lower_cased_email(users: UserStore) -> None:
    ada = users.add_user("Ada@Example.org", "Ada", "admin", "$argon2id$hash", T0)
    assert (ada.email, ada.role, ada.active, ada.session_epoch) == ("ada@example.org", "admin", True, 0)
    assert users.user_by_email("ADA@example.org") == ada == users.user_by_id(ada.id)
    with pytest.raises(ValueError, match="exists"):
        users.add_user("ada@example.org", "Ada again", "viewer", None, T0)
    users.add_user("bob@example.org", "Bob", "viewer", None, T0)
    assert [u.email for u in users.users()] == ["ada@example.org", "bob@example.org"]
    assert users.user_by_email("nobody@example.org") is None and users.user_by_id(999) is None


def test_a_change_bumps_the_session_epoch(users: UserStore) -> None:
    ada = users.add_user("ada@example.org", "Ada", "partner", None, T0)
    changed = users.change_user(ada.id, T0, role="viewer")
    assert (changed.role, changed.session_epoch, changed.active) == ("viewer", 1, True)
    disabled = users.change_user(ada.id, T0, active=False)
    assert (disabled.active, disabled.session_epoch, disabled.role) == (False, 2, "viewer")
    assert users.change_user(ada.id, T0, password_hash="$argon2id$new").password_hash == "$argon2id$new"


def test_a_sign_in_link_is_used_once_and_not_after_it_expires(users: UserStore) -> None:
    ada = users.add_user("ada@example.org", "Ada", "partner", None, T0)
    users.add_sign_in_link("a" * 32, ada.id, T0, T0 + timedelta(minutes=15), _note("a" * 32))
    assert users.use_sign_in_link("a" * 32, T0 + timedelta(minutes=1)) == ada.id
    assert users.use_sign_in_link("a" * 32, T0 + timedelta(minutes=2)) is None
    users.add_sign_in_link("b" * 32, ada.id, T0, T0 + timedelta(minutes=15), _note("b" * 32))
    assert users.use_sign_in_link("b" * 32, T0 + timedelta(minutes=15)) is None
    assert users.use_sign_in_link("c" * 32, T0) is None


def test_the_link_and_its_mail_are_written_together(sqlite_engine: Engine) -> None:
    from connectors.db.outbox import SqlOutbox

    users = SqlUsers(sqlite_engine)
    ada = users.add_user("ada@example.org", "Ada", "partner", None, T0)
    users.add_sign_in_link("d" * 32, ada.id, T0, T0 + timedelta(minutes=15), _note("d" * 32))
    rows = SqlOutbox(sqlite_engine).rows()
    assert [(r.key, r.template, r.request_id) for r in rows] == [(f"signin:{'d' * 32}", "sign_in_link", 0)]
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):  # the same link twice: neither the link nor a second mail
        users.add_sign_in_link("d" * 32, ada.id, T0, T0 + timedelta(minutes=15), _note("d" * 32))
    assert len(SqlOutbox(sqlite_engine).rows()) == 1 and users.count_links() == 1


def test_upgrading_to_0006_keeps_the_requests_and_their_history(tmp_path: object) -> None:
    """A 0005-era database (rows written with raw SQL as that schema had them) keeps its rows through 0006;
    the store of today's schema works on it once it is at HEAD."""
    from pathlib import Path

    from sqlalchemy import text

    from connectors.db import schema
    from connectors.db.engine import make_engine
    from connectors.db.store import SqlStore

    engine = make_engine(f"sqlite:///{Path(str(tmp_path)) / 'old.db'}")
    schema.upgrade(engine, "0005_event_outbox")  # the revision before the accounts' tables
    assert schema.current_revision(engine) == "0005_event_outbox"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO requests (id, title, state, version, requester_email, sponsor_email, "
                          "created_at, updated_at, head_seq, document) VALUES (41, 'Old one', 'received', 1, "
                          "'a@example.org', 'b@example.org', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0, '{}')"))

    def rows() -> list[tuple[object, ...]]:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT * FROM requests ORDER BY id"))]

    before = rows()
    assert schema.upgrade(engine, "0006_web_users") == "0006_web_users"
    assert rows() == before
    assert schema.upgrade(engine) == schema.HEAD
    assert SqlStore(engine).history(41) == []
    SqlUsers(engine).add_user("ada@example.org", "Ada", "admin", None, T0)
    engine.dispose()
