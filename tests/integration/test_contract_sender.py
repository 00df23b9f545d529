"""The ``Sender`` port's contract on the fake, the file sender and SMTP against a real server.

``test_smtp.py`` and ``tests/unit/test_email_senders.py`` test each sender on its own (TLS,
timeouts, cut connections, file names); here the same cases run on all three, so the fake the
unit tests use cannot drift from the senders production uses.
"""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from connectors.email.addresses import InvalidAddressError
from connectors.email.config import SmtpConfig
from connectors.email.smtp import FileSender, SmtpSender
from connectors.ports import PermanentSendError, Refusal, Sender, SendError, TemporarySendError
from connectors.testing import InMemorySender
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import MAIL_FROM, SmtpServer

smtp_server = cm.smtp_server

#: (Message-ID, envelope recipients or None where the sender keeps none) of each delivery
#: (in order, except for files: by name)
Deliveries = Callable[[], list[tuple[str, tuple[str, ...] | None]]]


@dataclass
class Harness:
    sender: Sender
    delivered: Deliveries
    refuse: Callable[[str, int, str], None] | None = None  # make the "server" refuse one recipient
    fail: Callable[[int, str], None] | None = None  # make the next send fail as a whole


def _memory() -> Harness:
    sender = InMemorySender()

    def fail(code: int, text: str) -> None:
        kind = TemporarySendError if 400 <= code < 500 else PermanentSendError
        sender.failures.append(kind(f"MAIL FROM refused: {code} {text}", code=code))

    return Harness(sender, lambda: [(str(m["Message-ID"]), rcpts) for m, rcpts in sender.sent],
                   lambda address, code, text: sender.refuse.__setitem__(address, Refusal(code, text)), fail)


def _files(folder: Path) -> Harness:
    def delivered() -> list[tuple[str, tuple[str, ...] | None]]:
        paths = sorted(folder.glob("*.eml")) if folder.exists() else []
        return [(str(email.message_from_bytes(p.read_bytes(), policy=default_policy)["Message-ID"]), None)
                for p in paths]

    return Harness(FileSender(folder), delivered)


def _smtp(server: SmtpServer) -> Harness:
    sender = SmtpSender(SmtpConfig(host=server.host, port=server.port, security="none", mail_from=MAIL_FROM,
                                   timeout=5.0))

    def refuse(address: str, code: int, text: str) -> None:
        server.handler.rcpt_replies[address] = f"{code} {text}"

    def fail(code: int, text: str) -> None:
        server.handler.mail_reply = f"{code} {text}"

    return Harness(sender, lambda: [(r.message_id, tuple(r.rcpt_tos)) for r in server.handler.received],
                   refuse, fail)


SENDERS = ["memory", "file", "smtp"]


@pytest.fixture(params=SENDERS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "memory":
        yield _memory()
    elif request.param == "file":
        yield _files(tmp_path / "outbox")
    else:
        yield _smtp(request.getfixturevalue("smtp_server"))


@pytest.fixture(params=["memory", "smtp"])
def refusing(request: pytest.FixtureRequest) -> Harness:
    """The senders that can be refused (a folder takes every message)."""
    return _memory() if request.param == "memory" else _smtp(request.getfixturevalue("smtp_server"))


def message(n: int = 1, *, bcc: bool = True, message_id: bool = True) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"L&D <{MAIL_FROM}>"
    msg["To"] = "Dana <dana@example.org>"
    msg["Cc"] = "sam@example.org"
    if bcc:
        msg["Bcc"] = "eve@example.org"
    msg["Subject"] = f"[ldflow #{n}] Your request"
    if message_id:
        msg["Message-ID"] = f"<contract-{n}@ldflow.example.org>"
    msg.set_content("Hello.\n")
    return msg


def test_the_default_recipients_are_to_cc_and_bcc(harness: Harness) -> None:
    result = harness.sender.send(message())
    assert result.message_id == "<contract-1@ldflow.example.org>"
    assert result.accepted == ("dana@example.org", "sam@example.org", "eve@example.org")
    assert (result.refused_permanent, result.refused_temporary) == ({}, {})
    assert result.done == result.accepted
    [(message_id, recipients)] = harness.delivered()
    assert message_id == "<contract-1@ldflow.example.org>"
    assert recipients in (None, result.accepted)


def test_explicit_recipients_replace_the_headers(harness: Harness) -> None:
    result = harness.sender.send(message(), ["Sam@Example.org"])
    assert result.accepted == ("Sam@Example.org",)
    [(_, recipients)] = harness.delivered()
    assert recipients in (None, ("Sam@Example.org",))


def test_no_recipients_accepts_nobody(harness: Harness) -> None:
    result = harness.sender.send(message(), [])
    assert (result.message_id, result.accepted, result.done) == ("<contract-1@ldflow.example.org>", (), ())


def test_idempotent_says_whether_sending_twice_delivers_twice(harness: Harness) -> None:
    assert isinstance(harness.sender.idempotent, bool)
    harness.sender.send(message())
    harness.sender.send(message())
    harness.sender.send(message(2))
    ids = sorted(message_id for message_id, _ in harness.delivered())
    once = ["<contract-1@ldflow.example.org>", "<contract-2@ldflow.example.org>"]
    assert ids == (once if harness.sender.idempotent else [once[0], once[0], once[1]])


def test_a_message_without_a_message_id_is_refused_before_sending(harness: Harness) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        harness.sender.send(message(message_id=False))
    assert harness.delivered() == []


@pytest.mark.parametrize("bad", ["not an address", "dana@example.org\r\nBcc: mallory@example.com",
                                 "alice@example.org(<bob@example.com>"],
                         ids=["not-an-address", "header-injection", "comment-smuggling"])
def test_an_invalid_recipient_is_refused_before_anything_is_sent(harness: Harness, bad: str) -> None:
    with pytest.raises(InvalidAddressError):
        harness.sender.send(message(), ["dana@example.org", bad])
    assert harness.delivered() == []


def test_refused_recipients_are_listed_not_raised(refusing: Harness) -> None:
    assert refusing.refuse is not None
    refusing.refuse("sam@example.org", 550, "5.1.1 no such user")
    refusing.refuse("eve@example.org", 452, "4.2.2 mailbox full")
    result = refusing.sender.send(message())
    assert result.accepted == ("dana@example.org",)
    assert result.refused_permanent == {"sam@example.org": Refusal(550, "5.1.1 no such user")}
    assert result.refused_temporary == {"eve@example.org": Refusal(452, "4.2.2 mailbox full")}
    assert result.done == ("dana@example.org", "sam@example.org")
    assert refusing.delivered() == [("<contract-1@ldflow.example.org>", ("dana@example.org",))]


def test_when_every_recipient_is_refused_nothing_is_delivered(refusing: Harness) -> None:
    assert refusing.refuse is not None
    for address in ("dana@example.org", "sam@example.org", "eve@example.org"):
        refusing.refuse(address, 550, "5.1.1 no such user")
    result = refusing.sender.send(message())
    assert result.accepted == () and set(result.refused_permanent) == {
        "dana@example.org", "sam@example.org", "eve@example.org"}
    assert refusing.delivered() == []


@pytest.mark.parametrize(("code", "kind"), [(451, TemporarySendError), (550, PermanentSendError)])
def test_a_refused_send_raises_its_class_and_delivers_nothing(refusing: Harness, code: int,
                                                              kind: type[SendError]) -> None:
    assert refusing.fail is not None
    refusing.fail(code, "5.7.1 not now" if code >= 500 else "4.3.0 try later")
    with pytest.raises(kind) as info:
        refusing.sender.send(message())
    assert info.value.code == code
    assert refusing.delivered() == []
