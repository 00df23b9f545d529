"""Time and faults: an unreachable SMTP server ends the dispatch step (one wait, not one timeout per row),
and a clock that ran ahead and was put back strands no deferred or leased mail (SQLite, then PostgreSQL)."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

from sqlalchemy import Engine

from connectors.db import outbox as ob
from connectors.email.config import SmtpConfig
from connectors.email.smtp import ServerUnavailableError, SmtpSender
from flows.relay import relay_outbox
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import MAIL_FROM, T0, SmtpServer, enqueue, make_notification, outbox_rows, renderer

mail_engine = cm.mail_engine
silent_server = cm.silent_server
smtp_server = cm.smtp_server

LEASE = timedelta(minutes=5)


def _rows(n: int) -> list[object]:
    return [make_notification(f"{i}:request_cancelled", request_id=i, to=(f"p{i}@example.org",))
            for i in range(1, n + 1)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_silent_smtp_server_costs_one_timeout_per_pass_and_the_rows_stay_pending(
        silent_server: int, smtp_server: SmtpServer, mail_engine: Engine) -> None:
    enqueue(mail_engine, *_rows(20))
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=silent_server, security="none", mail_from=MAIL_FROM,
                                   timeout=1.0))
    started = time.monotonic()
    summary = relay_outbox(mail_engine, sender, renderer(), T0, "relay")
    assert time.monotonic() - started < 5.0  # one timeout, not 20
    assert (summary.claimed, summary.deferred, summary.sent, summary.retried) == (20, 20, 0, 0)
    assert all(part in summary.errors[0] for part in ("SMTP server 127.0.0.1", "timed out", "next pass"))
    rows = outbox_rows(mail_engine)
    assert {(r["status"], r["attempts"], r["lease_owner"]) for r in rows.values()} == {("pending", 0, None)}
    # the next pass, with the server back, sends them all at once (no backoff was added)
    back = SmtpSender(SmtpConfig(host=smtp_server.host, port=smtp_server.port, security="none", mail_from=MAIL_FROM,
                                 timeout=5.0))
    assert relay_outbox(mail_engine, back, renderer(), T0 + timedelta(seconds=1), "relay").sent == 20
    assert {r["attempts"] for r in outbox_rows(mail_engine).values()} == {1}


def test_a_refused_connection_ends_the_pass_too(mail_engine: Engine) -> None:
    enqueue(mail_engine, *_rows(5))
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=_closed_port(), security="none", mail_from=MAIL_FROM,
                                   timeout=1.0))
    try:
        sender.send(renderer()(make_notification()))
    except ServerUnavailableError as exc:
        assert "cannot connect" in str(exc)
    else:
        raise AssertionError("a closed port accepted mail")
    summary = relay_outbox(mail_engine, sender, renderer(), T0, "relay")
    assert (summary.deferred, summary.failed, summary.unknown) == (5, 0, 0)
    assert {r["status"] for r in outbox_rows(mail_engine).values()} == {"pending"}


def test_mail_deferred_or_leased_by_a_clock_that_ran_ahead_is_due_after_the_clock_is_put_back(
        mail_engine: Engine) -> None:
    ahead = T0 + timedelta(days=40)
    enqueue(mail_engine, *_rows(3))
    [deferred, leased, transmitting] = ob.claim_batch(mail_engine, "ahead", ahead, LEASE, limit=3)
    ob.SqlOutbox(mail_engine).mark_retry(deferred.id, "ahead", now=ahead, backoff=ob.backoff_for(1), error="451")
    ob.SqlOutbox(mail_engine).mark_transmitting(transmitting.id, "ahead", "<m@x>")
    # the clock is corrected: 40 days back. Nothing waits 40 days.
    claimed = ob.claim_batch(mail_engine, "now", T0, LEASE, limit=10)
    assert sorted(r.key for r in claimed) == sorted([deferred.key, leased.key])
    rows = outbox_rows(mail_engine)
    assert rows[transmitting.key]["status"] == "unknown"  # never resent blindly
    # a normal backoff and a normal lease still hold
    enqueue(mail_engine, make_notification("9:request_cancelled", request_id=9))
    [row] = ob.claim_batch(mail_engine, "a", T0, LEASE, limit=1)
    ob.SqlOutbox(mail_engine).mark_retry(row.id, "a", now=T0, backoff=ob.backoff_for(8), error="451")
    assert ob.claim_batch(mail_engine, "b", T0 + timedelta(minutes=1), LEASE, limit=10) == []
    later = ob.claim_batch(mail_engine, "b", T0 + ob.MAX_BACKOFF, LEASE, limit=10)
    assert row.key in [r.key for r in later]
    assert ob.claim_batch(mail_engine, "c", T0 + ob.MAX_BACKOFF + LEASE / 2, LEASE, limit=10) == []  # leased

