"""``ldflow tokens`` as a user runs it: a token printed once (alone on stdout), listed without its
secret, stored as its SHA-256 only, refused with the fields named, revoked."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.cli_support import Ldflow


@pytest.fixture
def ldflow(tmp_path: Path) -> Ldflow:
    return Ldflow(tmp_path / "home", tmp_path / "prefect")


def test_create_list_revoke(ldflow: Ldflow) -> None:
    made = ldflow("tokens", "create", "--name", "ci-reports", "--role", "partner", "--owner", "Ann Lee")
    secret = made.out.strip()
    assert secret.startswith("ldf_") and len(secret) == 47 and "\n" not in secret
    assert "not shown again" in made.err and "Ann Lee" in made.err
    listed = ldflow("tokens", "list")
    assert "ci-reports" in listed.out and "Ann Lee" in listed.out and "never" in listed.out
    assert secret not in listed.out and secret[:12] in listed.out
    rows = ldflow("tokens", "list", "--json").json()
    assert [(r["name"], r["owner"], r["role"], r["revoked_at"]) for r in rows] == \
        [("ci-reports", "Ann Lee", "partner", None)]
    assert "token" not in rows[0] and secret not in str(rows)
    database = (ldflow.home / "ldflow.db").read_bytes() + b"".join(
        p.read_bytes() for p in ldflow.home.glob("ldflow.db-wal"))
    assert secret.encode() not in database
    with sqlite3.connect(ldflow.home / "ldflow.db") as conn:
        assert conn.execute("SELECT secret_hash FROM api_tokens").fetchall() == \
            [(hashlib.sha256(secret.encode()).hexdigest(),)]
    as_json = ldflow("tokens", "create", "--name", "board", "--role", "viewer", "--owner", "Vic", "--json").json()
    assert as_json["token"].startswith("ldf_") and as_json["role"] == "viewer"
    assert ldflow("tokens", "revoke", "ci-reports").out.strip() == "token 'ci-reports' revoked"
    assert "revoked already" in ldflow("tokens", "revoke", "ci-reports").out
    assert ldflow("tokens", "list", "--json").json()[0]["revoked_at"] is not None


def test_bad_input_names_each_field_and_writes_nothing(ldflow: Ldflow) -> None:
    wrong = ldflow("tokens", "create", "--name", "no spaces", "--role", "boss", "--owner", " ", code=2)
    assert "name:" in wrong.err and "role: 'boss' is not one of admin, partner, viewer" in wrong.err
    assert "owner:" in wrong.err and "nothing was written." in wrong.err
    ldflow("tokens", "create", "--name", "ci", "--role", "viewer", "--owner", "Ann")
    assert "exists already" in ldflow("tokens", "create", "--name", "ci", "--role", "admin", "--owner", "Bo",
                                      code=2).err
    assert "not found: token 'nope'" in ldflow("tokens", "revoke", "nope", code=4).err
    assert [r["name"] for r in ldflow("tokens", "list", "--json").json()] == ["ci"]
    assert "tokens" in ldflow("--help").out
