"""``ldflow users`` as an operator runs it (the password from stdin, never an argument), and
``plan approve --by`` by someone other than the sponsor: refused unless an admin gives a reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.cli_support import ACTOR, EXAMPLES, LDFLOW, Ldflow

SPONSOR = "dana.reyes@northwind.example"
ADMIN = "ada.admin@northwind.example"
PASSWORD = "a long and secret passphrase"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Ldflow:
    return Ldflow(tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("prefect"))


def _with_stdin(cli: Ldflow, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LDFLOW), *args], input=stdin, capture_output=True, text=True, env=cli.env,
                          cwd=cli.home, timeout=120)


def test_users_add_list_role_disable(cli: Ldflow) -> None:
    added = _with_stdin(cli, "users", "add", ADMIN, "--name", "Ada Admin", "--role", "admin", "--password-stdin",
                        stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"account {ADMIN} added (admin)" and PASSWORD not in added.stdout + added.stderr
    cli("users", "add", "pat@northwind.example", "--name", "Pat Partner", "--no-password")
    assert cli("users", "list", "--json").json() == [
        {"email": ADMIN, "name": "Ada Admin", "role": "admin", "active": True},
        {"email": "pat@northwind.example", "name": "Pat Partner", "role": "partner", "active": True}]
    assert "pat@northwind.example is now viewer" in cli("users", "role", "pat@northwind.example", "viewer").out
    assert "disabled" in cli("users", "disable", "pat@northwind.example").out
    assert "(disabled)" in cli("users", "list").out
    short = _with_stdin(cli, "users", "add", "x@northwind.example", "--name", "X", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "password: at least 12 characters" in short.stderr
    assert "role: 'owner' is not one of admin, partner, viewer" in cli(
        "users", "role", ADMIN, "owner", code=2).err
    assert cli("users", "disable", "nobody@northwind.example", code=4)
    # no terminal to ask on and no --password-stdin: refused, nothing written
    no_tty = _with_stdin(cli, "users", "add", "y@northwind.example", "--name", "Y", stdin="")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    db = (Path(cli.home) / "ldflow.db").read_bytes()
    assert PASSWORD.encode() not in db and b"$argon2id$" in db


def test_approving_for_the_sponsor_from_the_cli(cli: Ldflow) -> None:
    rid = cli("submit", "-f", EXAMPLES / "intake.yaml", "--quiet").out.strip()
    cli("diagnose", rid, "-f", EXAMPLES / "diagnosis.yaml")
    cli("plan", "draft", rid, "-f", EXAMPLES / "plan.yaml")
    refused = cli("plan", "approve", rid, "--by", SPONSOR, code=3)
    assert f"the approver's own approval: {ACTOR} is not {SPONSOR}" in refused.err
    assert "nothing was written" in refused.err
    no_reason = cli("plan", "approve", rid, "--by", SPONSOR, "--actor", ADMIN, code=3)
    assert "a reason for recording" in no_reason.err
    cli("plan", "approve", rid, "--by", SPONSOR, "--actor", ADMIN, "--reason", "Approved in the steering group.")
    history = cli("history", rid, "--json").json()
    last = history[-1] if isinstance(history, list) else history["events"][-1]
    assert last["actor"] == ADMIN
    assert last["payload"] == {"approver": SPONSOR, "comment": "", "recorded_by": ADMIN,
                               "reason": "Approved in the steering group.", "via": "cli"}
    words = cli("history", rid).out
    assert f"recorded on their behalf by the admin {ADMIN}" in words and f"by {ADMIN} (via cli)" in words
