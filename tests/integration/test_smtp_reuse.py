"""The SMTP sender reuses its connection across sends (aiosmtpd on loopback), keeping every
per-recipient outcome, and never reuses a connection in an unknown state."""

from __future__ import annotations

from aiosmtpd.controller import Controller

from connectors.email.config import SmtpConfig
from connectors.email.smtp import SmtpSender, TemporarySendError
from flows.relay import relay_outbox
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import (
    MAIL_FROM,
    T0,
    ScriptedHandler,
    SmtpServer,
    enqueue,
    make_notification,
    outbox_rows,
    renderer,
)

smtp_server = cm.smtp_server
sqlite_mail_engine = cm.sqlite_mail_engine


def sender_for(server: SmtpServer, **options: float) -> SmtpSender:
    config = SmtpConfig(host=server.host, port=server.port, security="none", mail_from=MAIL_FROM, timeout=5.0)
    return SmtpSender(config, **options)  # type: ignore[arg-type]


def connections(handler: ScriptedHandler) -> int:
    return len({r.peer for r in handler.received})


def test_a_relay_batch_goes_over_one_connection_each_mail_once(smtp_server: SmtpServer, sqlite_mail_engine) -> None:
    keys = [f"{i}:intake_acknowledgement" for i in range(1, 8)]
    enqueue(sqlite_mail_engine, *[make_notification(k, request_id=i + 1, to=(f"p{i}@example.org",))
                                  for i, k in enumerate(keys)])
    sender = sender_for(smtp_server)
    summary = relay_outbox(sqlite_mail_engine, sender, renderer(), T0, "relay-a")
    sender.close()
    assert summary.sent == 7
    assert sorted(r.rcpt_tos[0] for r in smtp_server.handler.received) == sorted(f"p{i}@example.org"
                                                                                 for i in range(7))
    assert connections(smtp_server.handler) == 1
    assert {r["status"] for r in outbox_rows(sqlite_mail_engine).values()} == {"sent"}


def test_per_recipient_refusals_on_a_reused_connection(smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies = {"gone@example.org": "550 5.1.1 no such user",
                                        "busy@example.org": "451 4.2.1 mailbox busy"}
    sender = sender_for(smtp_server)
    render = renderer()
    first = sender.send(render(make_notification("1:a", to=("dana@example.org", "gone@example.org"))))
    nobody = sender.send(render(make_notification("2:a", to=("gone@example.org", "busy@example.org"))))
    third = sender.send(render(make_notification("3:a", to=("sam@example.org", "busy@example.org"))))
    sender.close()
    assert first.accepted == ("dana@example.org",) and set(first.refused_permanent) == {"gone@example.org"}
    assert nobody.accepted == () and set(nobody.refused_permanent) == {"gone@example.org"}
    assert set(nobody.refused_temporary) == {"busy@example.org"}
    assert third.accepted == ("sam@example.org",) and set(third.refused_temporary) == {"busy@example.org"}
    # the refused-by-everyone transaction was reset (RSET) and the connection kept
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["dana@example.org"], ["sam@example.org"]]
    assert connections(smtp_server.handler) == 1


def test_after_a_failure_the_next_send_starts_a_new_connection(smtp_server: SmtpServer) -> None:
    smtp_server.handler.data_replies = ["451 4.3.0 try later"]
    sender = sender_for(smtp_server)
    render = renderer()
    try:
        sender.send(render(make_notification("1:a")))
    except TemporarySendError:
        pass
    else:
        raise AssertionError("a 451 after DATA must be a temporary failure")
    sender.send(render(make_notification("2:a")))
    sender.send(render(make_notification("3:a")))
    sender.close()
    assert len(smtp_server.handler.received) == 2
    assert connections(smtp_server.handler) == 1  # 2 and 3 share the new one


def test_a_connection_closed_by_the_server_is_replaced_and_nothing_is_sent_twice() -> None:
    handler = ScriptedHandler()
    port = cm.free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    server = SmtpServer("127.0.0.1", port, handler)
    sender = sender_for(server)
    render = renderer()
    try:
        sender.send(render(make_notification("1:a")))
        controller.stop()  # drops the idle connection the sender keeps
        controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
        controller.start()
        result = sender.send(render(make_notification("2:a")))
        sender.close()
    finally:
        controller.stop()
    assert result.accepted == ("dana@example.org",)
    assert [r.message_id for r in handler.received] == [
        str(render(make_notification(k))["Message-ID"]) for k in ("1:a", "2:a")]
    assert connections(handler) == 2


def test_a_connection_carries_at_most_max_messages(smtp_server: SmtpServer) -> None:
    sender = sender_for(smtp_server, max_messages=2)
    render = renderer()
    for i in range(5):
        sender.send(render(make_notification(f"{i}:a")))
    sender.close()
    assert len(smtp_server.handler.received) == 5
    assert connections(smtp_server.handler) == 3


def test_an_idle_connection_is_not_reused(smtp_server: SmtpServer) -> None:
    sender = sender_for(smtp_server, max_idle=0.0)
    render = renderer()
    for i in range(3):
        sender.send(render(make_notification(f"{i}:a")))
    sender.close()
    assert connections(smtp_server.handler) == 3
