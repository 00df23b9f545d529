"""Fixtures for the mail and calendar connector tests: real servers on loopback.

Imported explicitly by the test modules that need them (this is not a
conftest.py, so nothing here is active elsewhere):

* ``smtp_server`` - aiosmtpd on 127.0.0.1 with a scriptable handler
  (4xx/5xx answers, per-recipient refusals, a slow final reply);
* ``tls_smtp_server`` - the same with STARTTLS and a self-signed certificate;
* ``silent_server`` - accepts TCP connections and never says a word;
* ``cut_proxy`` - a TCP proxy that cuts the connection after N bytes;
* ``imap_box`` - a fresh mailbox on the Dovecot test instance
  (``.ci/services.sh``); skips without it unless LDFLOW_TEST_IMAP=1;
* ``radicale`` - a Radicale CalDAV server started for the test;
* ``mail_engine`` - a database (SQLite, PostgreSQL) with the outbox/inbound tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import imaplib
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

IMAP_HOST = "127.0.0.1"
IMAP_PORT = int(os.environ.get("LDFLOW_TEST_IMAP_PORT", "10143"))
IMAP_USER = os.environ.get("LDFLOW_TEST_IMAP_USER", "ldflow")
IMAP_PASSWORD = os.environ.get("LDFLOW_TEST_IMAP_PASSWORD", "ldflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --- SMTP ----------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any = None  # the client's (host, port): one per connection

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class ScriptedHandler:
    """An aiosmtpd handler whose answers the test sets."""

    received: list[Received] = field(default_factory=list)
    mail_reply: str | None = None  # e.g. "451 4.3.0 try later"
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_replies: list[str] = field(default_factory=list)  # queue; empty -> 250
    data_delay: float = 0.0  # seconds before the final reply (deliver anyway)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        if self.data_delay:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                          session.peer))
            await asyncio.sleep(self.data_delay)
            return "250 OK queued (late)"
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                                      session.peer))
        return "250 OK queued"

    def deliveries(self, address: str) -> list[Received]:
        return [r for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: ScriptedHandler


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller

    handler = ScriptedHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@dataclass
class Certificate:
    certfile: str
    keyfile: str


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1/localhost, made with ``cryptography``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ldflow test mail server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(str(certfile), str(keyfile))


def _server_context(cert: Certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.certfile, cert.keyfile)
    return context


@pytest.fixture
def tls_smtp_server(self_signed_cert: Certificate) -> Iterator[SmtpServer]:
    """aiosmtpd offering STARTTLS with the self-signed certificate."""
    from aiosmtpd.controller import Controller

    handler = ScriptedHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(self_signed_cert),
        require_starttls=True,
        ready_timeout=10,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def ssl_smtp_server(self_signed_cert: Certificate) -> Iterator[SmtpServer]:
    """aiosmtpd speaking implicit TLS (SMTPS) with the self-signed certificate."""
    from aiosmtpd.controller import Controller

    handler = ScriptedHandler()
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, ssl_context=_server_context(self_signed_cert), ready_timeout=10
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


class _Silent:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.conns: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)  # hold it open, say nothing
            except OSError:
                continue

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port where connections are accepted and never answered."""
    server = _Silent()
    try:
        yield server.port
    finally:
        server.close()


# --- a TCP proxy that cuts the connection --------------------------------------------------------------


class CutProxy:
    """Forwards 127.0.0.1:<port> to a target; after ``cut_after`` bytes from the server, hangs up.

    ``cut_after=None`` forwards everything. Each new connection gets the
    current setting, so a test can cut the first session and let the next
    one through.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cut_after: int | None = None
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self._stop = False
        self._threads: list[threading.Thread] = []
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            limit = self.cut_after
            for src, dst, counted in ((client, upstream, False), (upstream, client, True)):
                t = threading.Thread(target=self._pump, args=(src, dst, counted, limit, client, upstream), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(
        self, src: socket.socket, dst: socket.socket, counted: bool, limit: int | None,
        client: socket.socket, upstream: socket.socket,
    ) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if counted and limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def cut_proxy() -> Iterator[Callable[[int], CutProxy]]:
    proxies: list[CutProxy] = []

    def make(target_port: int) -> CutProxy:
        proxy = CutProxy(target_port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


# --- IMAP (Dovecot from .ci/services.sh) --------------------------------------------------------------


def _imap_available() -> str | None:
    try:
        with socket.create_connection((IMAP_HOST, IMAP_PORT), timeout=2) as sock:
            sock.settimeout(2)
            greeting = sock.recv(200)
        if not greeting.startswith(b"* OK"):
            return f"127.0.0.1:{IMAP_PORT} answered {greeting[:40]!r}, not an IMAP greeting"
        return None
    except OSError as exc:
        return f"no IMAP server on {IMAP_HOST}:{IMAP_PORT} ({exc})"


def require_imap() -> None:
    why = _imap_available()
    if why is None:
        return
    if os.environ.get("LDFLOW_TEST_IMAP") == "1":
        pytest.fail(f"LDFLOW_TEST_IMAP=1 but {why}; start it with: sudo .ci/services.sh")
    pytest.skip(f"{why}; run `sudo .ci/services.sh` (Dovecot on loopback) or set LDFLOW_TEST_IMAP=1 to require it")


class ImapAdmin:
    """A direct imaplib session for setting up test mailboxes."""

    def __init__(self) -> None:
        self.client = imaplib.IMAP4(IMAP_HOST, IMAP_PORT, timeout=10)
        self.client.login(IMAP_USER, IMAP_PASSWORD)

    def create(self, mailbox: str) -> None:
        status, data = self.client.create(mailbox)
        assert status == "OK", data

    def delete(self, mailbox: str) -> None:
        with contextlib.suppress(Exception):
            self.client.delete(mailbox)

    def append(self, mailbox: str, raw: bytes, flags: str | None = None) -> None:
        status, data = self.client.append(mailbox, flags, None, raw)
        assert status == "OK", data

    def flags(self, mailbox: str) -> dict[int, str]:
        self.client.select(mailbox, readonly=True)
        status, data = self.client.uid("FETCH", "1:*", "(FLAGS)")
        result: dict[int, str] = {}
        for entry in data:
            if isinstance(entry, bytes) and b"UID" in entry:
                text = entry.decode()
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                result[uid] = text
        self.client.unselect() if hasattr(self.client, "unselect") else self.client.close()
        return result

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.logout()


@dataclass
class ImapBox:
    mailbox: str
    admin: ImapAdmin

    def config(self, port: int = IMAP_PORT, timeout: float = 10.0) -> Any:
        from connectors.email.config import ImapConfig

        return ImapConfig(
            host=IMAP_HOST, port=port, security="none", username=IMAP_USER, password=IMAP_PASSWORD,
            mailbox=self.mailbox, timeout=timeout,
        )


@pytest.fixture
def imap_box() -> Iterator[ImapBox]:
    """A fresh, uniquely named mailbox on the test Dovecot, deleted afterwards."""
    require_imap()
    admin = ImapAdmin()
    mailbox = f"ldflow-test-{secrets.token_hex(5)}"
    admin.create(mailbox)
    try:
        yield ImapBox(mailbox, admin)
    finally:
        admin.delete(mailbox)
        admin.close()


# --- CalDAV (Radicale) -----------------------------------------------------------------------------------


@dataclass
class Radicale:
    url: str  # the calendar collection
    username: str
    password: str
    base: str


@pytest.fixture(scope="module")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """Radicale on a free loopback port (one per test module), htpasswd (plain) auth."""
    tmp_path = tmp_path_factory.mktemp("radicale")
    port = free_port()
    users = tmp_path / "users"
    users.write_text("ldflow:secret\n")
    log = (tmp_path / "radicale.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "radicale",
            "--server-hosts", f"127.0.0.1:{port}",
            "--storage-filesystem-folder", str(tmp_path / "collections"),
            "--auth-type", "htpasswd",
            "--auth-htpasswd-filename", str(users),
            "--auth-htpasswd-encryption", "plain",
            "--logging-level", "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=20)
        base = f"http://127.0.0.1:{port}/"
        yield Radicale(f"{base}ldflow/training/", "ldflow", "secret", base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def radicale(radicale_server: Radicale) -> Radicale:
    """A fresh, not yet created calendar collection on the module's Radicale."""
    name = f"cal-{secrets.token_hex(4)}"
    return Radicale(f"{radicale_server.base}ldflow/{name}/", radicale_server.username, radicale_server.password,
                    radicale_server.base)


# --- database ---------------------------------------------------------------------------------------


@pytest.fixture
def mail_engine(engine: Engine) -> Engine:
    """The shared ``engine`` fixture (SQLite, then PostgreSQL) with the outbox/inbound tables present."""
    from connectors.db import tables

    tables.metadata.create_all(engine, tables=[tables.outbox, tables.inbound], checkfirst=True)
    return engine


@pytest.fixture
def sqlite_mail_engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite file with every table (``metadata.create_all``)."""
    from connectors.db import tables
    from connectors.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'mail.db'}")
    tables.metadata.create_all(engine)
    yield engine
    engine.dispose()


# --- outbox helpers -----------------------------------------------------------------------------------

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
MAIL_FROM = "ld-team@example.org"
DOMAIN = "ldflow.example.org"


def make_notification(
    key: str = "1:request_cancelled",
    *,
    request_id: int = 1,
    to: tuple[str, ...] = ("dana@example.org",),
    template: str = "request_cancelled",
    subject: str = "Your request was cancelled",
    context: dict[str, Any] | None = None,
    calendar: Any = None,
) -> Any:
    from states.notifications import Notification, Recipient

    return Notification(
        key=key,
        request_id=request_id,
        template=template,
        to=tuple(Recipient(name=a.split("@")[0].title(), email=a) for a in to),
        subject=subject,
        context=context if context is not None else {"request": {"id": request_id, "title": "Sales coaching"},
                                                     "reason": "the team was reorganised"},
        calendar=calendar,
    )


def enqueue(engine: Engine, *notifications: Any, now: dt.datetime = T0) -> None:
    """Insert outbox rows the way the store does (JSON of the dataclass)."""
    import dataclasses
    import json

    from sqlalchemy import insert

    from connectors.db.engine import write_transaction
    from connectors.db.tables import outbox

    with write_transaction(engine) as conn:
        for n in notifications:
            conn.execute(insert(outbox).values(
                key=n.key, request_id=n.request_id, template=n.template,
                notification=json.dumps(dataclasses.asdict(n), default=str),
                created_at=now, status="pending", attempts=0,
            ))


def outbox_rows(engine: Engine) -> dict[str, dict[str, Any]]:
    from sqlalchemy import select

    from connectors.db.tables import outbox

    with engine.connect() as conn:
        return {r["key"]: dict(r) for r in conn.execute(select(outbox).order_by(outbox.c.id)).mappings()}


def renderer() -> Callable[[Any], EmailMessage]:
    import functools

    from connectors.email.render import render

    return functools.partial(render, mail_from=MAIL_FROM, domain=DOMAIN, now=T0)
