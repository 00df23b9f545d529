"""SMTP out against a real server (aiosmtpd) on loopback: delivery, refusals, timeouts, TLS."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from connectors.email.config import SmtpConfig
from connectors.email.render import message_id_for
from connectors.email.smtp import (
    PermanentSendError,
    SmtpSender,
    TemporarySendError,
    TlsVerificationError,
    UnknownOutcomeError,
)
from flows.relay import relay_outbox
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import (
    DOMAIN,
    MAIL_FROM,
    T0,
    SmtpServer,
    enqueue,
    make_notification,
    outbox_rows,
    renderer,
)

# fixtures shared with the other mail/calendar test modules
self_signed_cert = cm.self_signed_cert
silent_server = cm.silent_server
smtp_server = cm.smtp_server
sqlite_mail_engine = cm.sqlite_mail_engine
ssl_smtp_server = cm.ssl_smtp_server
tls_smtp_server = cm.tls_smtp_server


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting for {what} after {timeout} s")
        time.sleep(0.02)


def sender_for(server: SmtpServer, **overrides: object) -> SmtpSender:
    settings: dict[str, object] = {"host": server.host, "port": server.port, "security": "none",
                                   "mail_from": MAIL_FROM, "timeout": 5.0}
    settings.update(overrides)
    return SmtpSender(SmtpConfig(**settings))  # type: ignore[arg-type]


def test_message_arrives_once_with_exactly_the_intended_headers(smtp_server: SmtpServer) -> None:
    n = make_notification(to=("dana@example.org", "sam@example.org"))
    message = renderer()(n)
    result = sender_for(smtp_server).send(message)
    assert set(result.accepted) == {"dana@example.org", "sam@example.org"}
    [got] = smtp_server.handler.received
    assert got.mail_from == MAIL_FROM
    assert sorted(got.rcpt_tos) == ["dana@example.org", "sam@example.org"]
    parsed = got.message
    assert parsed["Message-ID"] == message_id_for(n.key, DOMAIN)
    assert parsed["Subject"] == "[ldflow #1] Your request was cancelled"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["dana@example.org", "sam@example.org"]
    assert parsed.get_all("Bcc") is None and parsed.get_all("Cc") is None
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_relay_twice_every_outbox_email_arrives_exactly_once(smtp_server: SmtpServer, sqlite_mail_engine) -> None:
    keys = [f"{i}:intake_acknowledgement" for i in range(1, 6)]
    enqueue(sqlite_mail_engine, *[make_notification(k, request_id=i + 1, to=(f"p{i}@example.org",))
                                  for i, k in enumerate(keys)])
    sender = sender_for(smtp_server)
    first = relay_outbox(sqlite_mail_engine, sender, renderer(), T0, "relay-a")
    second = relay_outbox(sqlite_mail_engine, sender, renderer(), T0 + timedelta(minutes=10), "relay-b")
    assert (first.sent, second.claimed) == (5, 0)
    ids = [r.message_id for r in smtp_server.handler.received]
    assert sorted(ids) == sorted(message_id_for(k, DOMAIN) for k in keys)
    rows = outbox_rows(sqlite_mail_engine)
    assert {r["status"] for r in rows.values()} == {"sent"}
    assert {r["message_id"] for r in rows.values()} == set(ids)


def test_4xx_is_retried_with_backoff_then_delivered_once(smtp_server: SmtpServer, sqlite_mail_engine) -> None:
    enqueue(sqlite_mail_engine, make_notification())
    smtp_server.handler.data_replies = ["451 4.3.0 mailbox busy, try later"]
    sender = sender_for(smtp_server)
    summary = relay_outbox(sqlite_mail_engine, sender, renderer(), T0, "relay")
    assert summary.retried == 1
    [row] = outbox_rows(sqlite_mail_engine).values()
    assert row["status"] == "pending" and "451" in row["last_error"]
    assert row["not_before"].replace(tzinfo=None) >= (T0 + timedelta(minutes=1)).replace(tzinfo=None)
    # not due yet: nothing happens
    assert relay_outbox(sqlite_mail_engine, sender, renderer(), T0 + timedelta(seconds=30), "relay").claimed == 0
    later = relay_outbox(sqlite_mail_engine, sender, renderer(), T0 + timedelta(minutes=2), "relay")
    assert later.sent == 1
    assert len(smtp_server.handler.received) == 1
    [row] = outbox_rows(sqlite_mail_engine).values()
    assert (row["status"], row["attempts"]) == ("sent", 2)


def test_5xx_fails_with_the_reason_recorded(smtp_server: SmtpServer, sqlite_mail_engine) -> None:
    enqueue(sqlite_mail_engine, make_notification())
    smtp_server.handler.data_replies = ["554 5.7.1 message rejected as spam"]
    summary = relay_outbox(sqlite_mail_engine, sender_for(smtp_server), renderer(), T0, "relay")
    assert summary.failed == 1
    [row] = outbox_rows(sqlite_mail_engine).values()
    assert row["status"] == "failed"
    assert "554" in row["last_error"] and "rejected as spam" in row["last_error"]
    assert relay_outbox(sqlite_mail_engine, sender_for(smtp_server), renderer(), T0 + timedelta(hours=1),
                        "relay").claimed == 0


def test_mail_from_5xx_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.handler.mail_reply = "550 5.7.1 sender not allowed"
    with pytest.raises(PermanentSendError, match="MAIL FROM refused: 550"):
        sender_for(smtp_server).send(renderer()(make_notification()))


def test_one_of_three_refused_is_recorded_and_the_others_not_resent(smtp_server: SmtpServer,
                                                                     sqlite_mail_engine) -> None:
    to = ("ann@example.org", "bob@example.org", "cat@example.org")
    enqueue(sqlite_mail_engine, make_notification(to=to))
    smtp_server.handler.rcpt_replies["bob@example.org"] = "550 5.1.1 no such user"
    sender = sender_for(smtp_server)
    assert relay_outbox(sqlite_mail_engine, sender, renderer(), T0, "relay").sent == 1
    [row] = outbox_rows(sqlite_mail_engine).values()
    assert row["status"] == "sent"
    assert "bob@example.org: 550 5.1.1 no such user (permanent)" in row["last_error"]
    assert set(__import__("json").loads(row["recipients_done"])) == set(to)
    [got] = smtp_server.handler.received
    assert sorted(got.rcpt_tos) == ["ann@example.org", "cat@example.org"]
    relay_outbox(sqlite_mail_engine, sender, renderer(), T0 + timedelta(hours=1), "relay")
    assert len(smtp_server.handler.received) == 1


def test_temporary_refusal_of_one_recipient_retries_only_that_one(smtp_server: SmtpServer,
                                                                  sqlite_mail_engine) -> None:
    to = ("ann@example.org", "bob@example.org", "cat@example.org")
    enqueue(sqlite_mail_engine, make_notification(to=to))
    smtp_server.handler.rcpt_replies["bob@example.org"] = "452 4.2.2 mailbox full"
    sender = sender_for(smtp_server)
    assert relay_outbox(sqlite_mail_engine, sender, renderer(), T0, "relay").retried == 1
    smtp_server.handler.rcpt_replies.clear()
    assert relay_outbox(sqlite_mail_engine, sender, renderer(), T0 + timedelta(minutes=5), "relay").sent == 1
    first, second = smtp_server.handler.received
    assert sorted(first.rcpt_tos) == ["ann@example.org", "cat@example.org"]
    assert second.rcpt_tos == ["bob@example.org"]
    assert first.message_id == second.message_id
    for address in to:
        assert len(smtp_server.handler.deliveries(address)) == 1


def test_silent_server_gives_up_within_the_timeout(silent_server: int) -> None:
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=silent_server, security="none",
                                   mail_from=MAIL_FROM, timeout=1.0))
    started = time.monotonic()
    with pytest.raises(TemporarySendError):
        sender.send(renderer()(make_notification()))
    assert time.monotonic() - started < 3.0


def test_silent_server_with_implicit_tls_gives_up_too(silent_server: int) -> None:
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=silent_server, security="ssl",
                                   mail_from=MAIL_FROM, timeout=1.0))
    started = time.monotonic()
    with pytest.raises(TemporarySendError):
        sender.send(renderer()(make_notification()))
    assert time.monotonic() - started < 3.0


def test_lost_final_reply_is_an_unknown_outcome_and_never_resent_blindly(smtp_server: SmtpServer,
                                                                         sqlite_mail_engine) -> None:
    from connectors.db.engine import write_transaction
    from connectors.db.outbox import requeue

    enqueue(sqlite_mail_engine, make_notification())
    smtp_server.handler.data_delay = 2.5
    sender = sender_for(smtp_server, timeout=1.0)
    with pytest.raises(UnknownOutcomeError):
        sender.send(renderer()(make_notification()))
    received = smtp_server.handler.received
    wait_until(lambda: len(received) == 1, timeout=10, what="the server to record the message")
    received.clear()

    summary = relay_outbox(sqlite_mail_engine, sender, renderer(), T0, "relay")
    wait_until(lambda: len(received) == 1, timeout=10, what="the server to record the relayed message")
    assert summary.unknown == 1
    [row] = outbox_rows(sqlite_mail_engine).values()
    assert row["status"] == "unknown" and "may or may not" in row["last_error"]
    smtp_server.handler.data_delay = 0
    assert relay_outbox(sqlite_mail_engine, sender, renderer(), T0 + timedelta(days=1), "relay").claimed == 0
    # the server did get it once (the relay gave up waiting for its answer, it did not resend)
    assert len(smtp_server.handler.received) == 1
    # the explicit operator retry resends it, with the same Message-ID
    with write_transaction(sqlite_mail_engine) as conn:
        assert requeue(conn, T0 + timedelta(days=1)) == 1
    assert relay_outbox(sqlite_mail_engine, sender, renderer(), T0 + timedelta(days=1), "relay").sent == 1
    first, second = smtp_server.handler.received
    assert first.message_id == second.message_id


def test_starttls_with_an_untrusted_certificate_is_refused_clearly(tls_smtp_server: SmtpServer) -> None:
    sender = sender_for(tls_smtp_server, security="starttls")
    with pytest.raises(TlsVerificationError, match="not trusted") as caught:
        sender.send(renderer()(make_notification()))
    assert "allow_untrusted" in str(caught.value) and "cafile" in str(caught.value)
    assert tls_smtp_server.handler.received == []


def test_starttls_untrusted_allowed_explicitly(tls_smtp_server: SmtpServer) -> None:
    sender = sender_for(tls_smtp_server, security="starttls", allow_untrusted=True)
    assert sender.send(renderer()(make_notification())).accepted == ("dana@example.org",)
    assert len(tls_smtp_server.handler.received) == 1


def test_starttls_trusted_through_cafile(tls_smtp_server: SmtpServer, self_signed_cert) -> None:
    sender = sender_for(tls_smtp_server, security="starttls", cafile=self_signed_cert.certfile)
    assert sender.send(renderer()(make_notification())).accepted == ("dana@example.org",)


def test_plain_server_without_starttls_is_refused_in_starttls_mode(smtp_server: SmtpServer) -> None:
    with pytest.raises(TemporarySendError, match="does not offer STARTTLS"):
        sender_for(smtp_server, security="starttls").send(renderer()(make_notification()))
    assert smtp_server.handler.received == []


def test_implicit_tls_verifies_the_certificate(ssl_smtp_server: SmtpServer, self_signed_cert) -> None:
    with pytest.raises(TlsVerificationError):
        sender_for(ssl_smtp_server, security="ssl").send(renderer()(make_notification()))
    ok = sender_for(ssl_smtp_server, security="ssl", cafile=self_signed_cert.certfile)
    assert ok.send(renderer()(make_notification())).accepted == ("dana@example.org",)


def test_invite_arrives_as_imip_with_an_ics_attachment(smtp_server: SmtpServer) -> None:
    from icalendar import Calendar

    from states.notifications import CalendarItem, Recipient

    cal = CalendarItem(uid="ldflow-1-delivery@ldflow", kind="event", summary="Negotiation workshop",
                       start="2026-12-01T09:00:00+00:00", end="2026-12-01T12:00:00+00:00",
                       organizer=Recipient("L&D", MAIL_FROM), attendees=(Recipient("Dana", "dana@example.org"),))
    n = make_notification("1:delivery_invite", template="delivery_invite", subject="Invitation", calendar=cal,
                          context={"request": {"title": "Sales coaching"}})
    sender_for(smtp_server).send(renderer()(n))
    parsed = smtp_server.handler.received[0].message
    calendar_parts = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    assert len(calendar_parts) == 1 and calendar_parts[0].get_param("method") == "REQUEST"
    ics = Calendar.from_ical(calendar_parts[0].get_content())
    assert str(ics["METHOD"]) == "REQUEST"
    [event] = ics.walk("VEVENT")
    assert str(event["UID"]) == "ldflow-1-delivery@ldflow"
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["invite.ics"]


def test_exactly_once_across_a_simulated_crash(smtp_server: SmtpServer, sqlite_mail_engine) -> None:
    from connectors.db import outbox as ob
    from connectors.db.engine import write_transaction

    keys = ["1:a", "2:b", "3:c"]
    enqueue(sqlite_mail_engine, *[make_notification(k, request_id=i + 1) for i, k in enumerate(keys)])
    sender = sender_for(smtp_server)
    # a relay claims everything, sends the first message, records it, and dies
    rows = ob.claim_batch(sqlite_mail_engine, "dead", T0, timedelta(minutes=5))
    first = rows[0]
    result = sender.send(renderer()(first.notification), [r.email for r in first.notification.to])
    with write_transaction(sqlite_mail_engine) as conn:
        assert ob.mark_sent(conn, first.id, "dead", message_id=result.message_id, now=T0,
                            recipients_done=result.done)
    # after the lease, another relay finishes the job - twice, for good measure
    for _ in range(2):
        relay_outbox(sqlite_mail_engine, sender, renderer(), T0 + timedelta(minutes=6), "live")
    got = sorted(r.message_id for r in smtp_server.handler.received)
    assert got == sorted(message_id_for(k, DOMAIN) for k in keys)
    assert {r["status"] for r in outbox_rows(sqlite_mail_engine).values()} == {"sent"}


def test_every_recipient_refused_fails_the_row(smtp_server: SmtpServer, sqlite_mail_engine) -> None:
    enqueue(sqlite_mail_engine, make_notification(to=("ann@example.org", "bob@example.org")))
    smtp_server.handler.rcpt_replies.update({"ann@example.org": "550 5.1.1 unknown",
                                             "bob@example.org": "553 5.1.3 bad address"})
    assert relay_outbox(sqlite_mail_engine, sender_for(smtp_server), renderer(), T0, "r").failed == 1
    [row] = outbox_rows(sqlite_mail_engine).values()
    assert row["status"] == "failed"
    assert "ann@example.org: 550" in row["last_error"] and "bob@example.org: 553" in row["last_error"]
    assert smtp_server.handler.received == []
