"""Sending mail: SMTP (the real thing) and .eml files (the embedded default).

Every sender implements the ``Sender`` port of :mod:`connectors.ports`
(``send(message, recipients=None) -> SendResult``; the fake for tests is
``connectors.testing.InMemorySender``) and
classifies failures so the relay can act on them:

* ``TemporarySendError`` - nothing was delivered and trying later may work
  (4xx replies, connection refused or timed out *before* the message data was
  sent, TLS certificate not trusted - a configuration problem the operator
  fixes without the message being lost); its subclass
  ``ServerUnavailableError`` when the server could not be reached or did not
  greet: the relay then stops the pass instead of waiting out one timeout per
  message;
* ``PermanentSendError`` - the server refused for good (5xx to MAIL FROM or
  to the message data);
* ``UnknownOutcomeError`` - the connection failed or timed out *after* the
  whole message was transmitted and before the server's final reply: the
  message may or may not have been accepted. The relay never resends such a
  message blindly (see ``connectors/db/outbox.py``).

Per-recipient refusals at RCPT time are not exceptions: ``SendResult`` lists
them as permanent (5xx) or temporary (4xx) so that a retry goes only to the
recipients still open.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import smtplib
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.email.addresses import validate_address
from connectors.email.config import SmtpConfig
from connectors.files import private_dir
from connectors.ports import (
    PermanentSendError,
    Refusal,
    Sender,
    SendError,
    SendResult,
    ServerUnavailableError,
    TemporarySendError,
    UnknownOutcomeError,
)

__all__ = [
    "FileSender",
    "PermanentSendError",
    "Refusal",
    "SendError",
    "SendResult",
    "Sender",
    "ServerUnavailableError",
    "SmtpSender",
    "TemporarySendError",
    "TlsVerificationError",
    "UnknownOutcomeError",
    "envelope_recipients",
    "message_id_of",
]


class TlsVerificationError(TemporarySendError):
    """The server's certificate was not trusted (fix the configuration, then retry)."""


def envelope_recipients(message: EmailMessage) -> list[str]:
    """The validated, de-duplicated addr-specs of To, Cc and Bcc."""
    values: list[str] = []
    for header in ("To", "Cc", "Bcc"):
        values.extend(str(v) for v in message.get_all(header, []))
    result: list[str] = []
    seen: set[str] = set()
    for _name, addr in getaddresses(values):
        checked = validate_address("recipient", addr)
        if checked.lower() not in seen:
            seen.add(checked.lower())
            result.append(checked)
    return result


def message_id_of(message: EmailMessage) -> str:
    """The message's Message-ID (every sender needs one: it names the message in results and files)."""
    value = message.get("Message-ID")
    if not value:
        raise ValueError("message has no Message-ID; render() always sets one")
    return str(value).strip()


def _wire_bytes(message: EmailMessage) -> bytes:
    """The message as SMTP DATA: CRLF line ends, Bcc removed, dots stuffed, terminated."""
    if "Bcc" in message:
        message = copy.deepcopy(message)
        del message["Bcc"]
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    raw = re.sub(rb"(?m)^\.", b"..", raw)
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw + b".\r\n"


def _tls_context(cafile: str | None, allow_untrusted: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if allow_untrusted:
        # An explicit opt-out (LDFLOW_SMTP_ALLOW_UNTRUSTED / allow_untrusted=True):
        # encrypted, but the server's identity is not checked.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _tls_error(host: str, exc: BaseException) -> TlsVerificationError:
    return TlsVerificationError(
        f"TLS certificate of {host} is not trusted ({exc}). Install the server's CA "
        "(cafile) or, knowingly, set allow_untrusted to send without verifying it."
    )


class _Phase:
    """Where a send is; decides whether a broken connection means 'unknown'."""

    BEFORE_DATA = "before-data"
    DATA_SENT = "data-sent"


class SmtpSender:
    """Send through an SMTP server (``none`` | ``starttls`` | ``ssl``).

    The connection is reused from one ``send`` to the next (a relay's batch is one connection,
    not one per message: greeting, EHLO, STARTTLS and login cost more than a message), for at
    most ``max_messages`` messages and while it was used in the last ``max_idle`` seconds; each
    thread has its own. Any failure drops it, so the next ``send`` connects afresh. A reused
    connection the server closed meanwhile is noticed at ``MAIL FROM`` (nothing of the message
    sent yet) and that one message is tried once more on a new connection. ``close()`` ends the
    connection (the relay calls it at the end of a run).
    """

    idempotent = False

    def __init__(self, config: SmtpConfig, max_messages: int = 100, max_idle: float = 20.0) -> None:
        self.config = config
        self.max_messages = max_messages
        self.max_idle = max_idle
        self._local = threading.local()

    def _kept(self) -> smtplib.SMTP | None:
        """This thread's open connection, if it may still be used."""
        client: smtplib.SMTP | None = getattr(self._local, "client", None)
        if client is None:
            return None
        if (self._local.count >= self.max_messages
                or time.monotonic() - self._local.used > self.max_idle):
            self.close()
            return None
        return client

    def _keep(self, client: smtplib.SMTP) -> None:
        if getattr(self._local, "client", None) is not client:
            self._local.client, self._local.count = client, 0
        self._local.count += 1
        self._local.used = time.monotonic()

    def _drop(self, client: smtplib.SMTP) -> None:
        if getattr(self._local, "client", None) is client:
            self._local.client = None
        _quit(client)

    def close(self) -> None:
        """End this thread's connection (QUIT), if one is open."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            _quit(client)

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        # loading the CA store costs ~20 ms: only for a connection that uses TLS
        context = _tls_context(cfg.cafile, cfg.allow_untrusted) if cfg.security != "none" else None
        try:
            client: smtplib.SMTP
            if cfg.security == "ssl":
                client = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=context,
                    local_hostname=cfg.local_hostname,
                )
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout, local_hostname=cfg.local_hostname)
        except ssl.SSLCertVerificationError as exc:
            raise _tls_error(cfg.host, exc) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ServerUnavailableError(
                f"cannot connect to SMTP server {cfg.host}:{cfg.port}: {_describe(exc)}") from exc
        try:
            code, reply = client.ehlo()
            if not 200 <= code < 300:
                code, reply = client.helo()
                if not 200 <= code < 300:
                    raise _classify(code, reply, "HELO")
            if cfg.security == "starttls":
                if not client.has_extn("starttls"):
                    raise TemporarySendError(
                        f"SMTP server {cfg.host}:{cfg.port} does not offer STARTTLS; refusing to send "
                        "in clear text (set LDFLOW_SMTP_SECURITY=none to allow it)"
                    )
                try:
                    client.starttls(context=context)
                except ssl.SSLCertVerificationError as exc:
                    raise _tls_error(cfg.host, exc) from exc
                except smtplib.SMTPResponseException as exc:
                    raise _classify(exc.smtp_code, exc.smtp_error, "STARTTLS") from exc
                client.ehlo()
            if cfg.username:
                try:
                    client.login(cfg.username, cfg.password or "")
                except smtplib.SMTPAuthenticationError as exc:
                    # a wrong password is a configuration problem: retry later, do not fail mail
                    raise TemporarySendError(
                        f"SMTP login as {cfg.username} failed: {exc.smtp_code} {_text(exc.smtp_error)}",
                        code=exc.smtp_code,
                    ) from exc
                except smtplib.SMTPNotSupportedError as exc:
                    raise TemporarySendError(f"SMTP server does not support AUTH: {exc}") from exc
        except (OSError, smtplib.SMTPServerDisconnected) as exc:  # silent or dropped before any message
            _close(client)
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise _tls_error(cfg.host, exc) from exc
            raise ServerUnavailableError(
                f"SMTP server {cfg.host}:{cfg.port} did not complete the greeting: {_describe(exc)}") from exc
        except BaseException:
            _close(client)
            raise
        return client

    def send(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> SendResult:
        """Send ``message``; see the module docstring for the failure classes."""
        message_id = message_id_of(message)
        targets = [validate_address("recipient", r) for r in recipients] if recipients is not None else (
            envelope_recipients(message)
        )
        if not targets:
            return SendResult(message_id=message_id)
        sender = validate_address("LDFLOW_MAIL_FROM", self.config.mail_from or _from_addr(message))
        data = _wire_bytes(message)
        phase = _Phase.BEFORE_DATA
        client = self._kept()
        if client is not None:
            try:
                code, reply = client.mail(sender)
            except (OSError, smtplib.SMTPException):  # closed by the server while idle: nothing sent yet
                self._drop(client)
                client = None
        if client is None:
            client = self._connect()
            try:
                code, reply = client.mail(sender)
            except BaseException:
                self._drop(client)
                raise
        kept = False
        try:
            if code != 250:
                raise _classify(code, reply, "MAIL FROM")
            accepted: list[str] = []
            permanent: dict[str, Refusal] = {}
            temporary: dict[str, Refusal] = {}
            for rcpt in targets:
                code, reply = client.rcpt(rcpt)
                if code in (250, 251):
                    accepted.append(rcpt)
                elif 400 <= code < 500:
                    temporary[rcpt] = Refusal(code, _text(reply))
                else:
                    permanent[rcpt] = Refusal(code, _text(reply))
            if not accepted:
                code, _reply = client.rset()
                kept = code == 250
                return SendResult(message_id, (), permanent, temporary)
            code, reply = client.docmd("DATA")
            if code != 354:
                raise _classify(code, reply, "DATA")
            # A connection lost while the data is still going out is safe to retry: a
            # server discards a message whose terminating "." it never received.
            client.send(data)
            phase = _Phase.DATA_SENT
            code, reply = client.getreply()
            if code != 250:
                raise _classify(code, reply, "end of DATA")
            kept = True
            return SendResult(message_id, tuple(accepted), permanent, temporary)
        except SendError:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            where = f"{self.config.host}:{self.config.port}"
            if phase == _Phase.DATA_SENT:
                raise UnknownOutcomeError(
                    f"connection to {where} failed after the message was transmitted, before the "
                    f"server confirmed it ({_describe(exc)}): it may or may not have been accepted"
                ) from exc
            raise TemporarySendError(f"SMTP conversation with {where} failed: {_describe(exc)}") from exc
        finally:
            # kept only after a complete transaction; after any refusal or failure the next send
            # starts on a new connection, in a known state
            if kept:
                self._keep(client)
            else:
                self._drop(client)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return reply


def _classify(code: int, reply: bytes | str, stage: str) -> SendError:
    text = f"{stage} refused: {code} {_text(reply)}"
    if 400 <= code < 500 or code == -1:
        return TemporarySendError(text, code=code)
    return PermanentSendError(text, code=code)


def _from_addr(message: EmailMessage) -> str:
    pairs = getaddresses([str(message.get("From", ""))])
    return pairs[0][1] if pairs else ""


def _close(client: smtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        client.close()


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except Exception:
        _close(client)


# --- the embedded default: .eml files in a folder ----------------------------------------------


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(message: EmailMessage) -> str:
    message_id = message_id_of(message)
    digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]
    request = _SAFE.sub("", str(message.get("X-Ldflow-Request", "")))[:12]
    template = _SAFE.sub("", str(message.get("X-Ldflow-Template", "")))[:40]
    parts = [p for p in (f"req{request}" if request else "", template, digest) if p]
    return "_".join(parts)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def calendar_part(message: EmailMessage) -> bytes | None:
    """The bytes of the message's text/calendar part, if it has one."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload
    return None


class FileSender:
    """Write each message as ``<name>.eml`` (and ``<name>.ics``) into ``folder``.

    The name derives from the Message-ID, so sending the same message twice
    leaves one file; files appear atomically (temp file + rename), so a
    reader never sees half a message.
    """

    idempotent = True

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path_for(self, message: EmailMessage) -> Path:
        """Where ``message`` is (or will be) written."""
        return self.folder / f"{_safe_name(message)}.eml"

    def send(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> SendResult:
        """Write the message (once); every recipient counts as accepted."""
        message_id = message_id_of(message)
        targets = [validate_address("recipient", r) for r in recipients] if recipients is not None else (
            envelope_recipients(message)
        )
        private_dir(self.folder)  # 0700; the files are 0600 (mkstemp)
        eml = self.path_for(message)
        ics = calendar_part(message)
        if ics is not None:
            ics_path = eml.with_suffix(".ics")
            if not ics_path.exists():
                _atomic_write(ics_path, ics)
        if not eml.exists():
            _atomic_write(eml, message.as_bytes())
        return SendResult(message_id=message_id, accepted=tuple(targets))


if TYPE_CHECKING:  # mypy checks the adapters against the port, parameter and return types included
    _senders: tuple[type[Sender], ...] = (SmtpSender, FileSender)
