"""Reading the L&D inbox over IMAP - without losing or repeating a message.

* Messages are fetched with ``BODY.PEEK[]``: nothing is flagged ``\\Seen``
  until the caller, *after* its database commit, calls ``mark_seen``.
* Candidates are the UNSEEN messages; before downloading a body the
  ``is_seen`` callback (the ``inbound`` table: by UIDVALIDITY+UID, or by
  Message-ID) filters out messages already recorded - e.g. ones committed
  just before a crash and not yet flagged. Those are flagged ``\\Seen``
  straight away, since their processing is already durable.
* A changed UIDVALIDITY (mailbox recreated or restored) renumbers every UID;
  the Message-ID check then recognises what was already ingested.
* Messages are downloaded one at a time, each yielded before the next is
  fetched: if the connection drops mid-fetch, the current message is simply
  not yielded (not recorded, still unseen) and is fetched again next run.
* A message over the size limit is not downloaded: its headers are, and it
  is yielded as a quarantine item with the reason.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from connectors.email.config import ImapConfig, InboundLimits
from connectors.email.inbound import InboundItem, InboundRef, parse_message

__all__ = ["ImapError", "ImapSource"]

_FETCH_META = re.compile(rb"UID (\d+)|RFC822\.SIZE (\d+)", re.IGNORECASE)
_MSGID = re.compile(rb"<[^<>\s]+>")
_HEADER_BATCH = 100


class ImapError(Exception):
    """The IMAP server could not be reached, refused us, or dropped the connection."""


IsSeen = Callable[[InboundRef], bool]


def _quote_mailbox(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._/-]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tls_context(cafile: str | None, allow_untrusted: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if allow_untrusted:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ImapSource:
    """An IMAP mailbox as a source of inbound items. Use as a context manager."""

    def __init__(
        self,
        config: ImapConfig,
        limits: InboundLimits | None = None,
        last_uid: Callable[[str, int], int | None] | None = None,
    ) -> None:
        """``last_uid(source, uidvalidity)`` - e.g. ``connectors.db.inbound.max_uid`` - makes
        messages newer than the last recorded one candidates even if someone already
        read them in a mail client; without it only UNSEEN messages are read."""
        self.config = config
        self.limits = limits or InboundLimits()
        self.last_uid = last_uid
        self.source = f"imap:{config.mailbox}"
        self.uidvalidity: int | None = None
        self._client: imaplib.IMAP4 | None = None

    # --- connection ---------------------------------------------------------------------------

    def __enter__(self) -> ImapSource:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, log in and select the mailbox (reading its UIDVALIDITY)."""
        cfg = self.config
        context = _tls_context(cfg.cafile, cfg.allow_untrusted)
        client: imaplib.IMAP4 | None = None
        try:
            if cfg.security == "ssl":
                client = imaplib.IMAP4_SSL(cfg.host, cfg.port, ssl_context=context, timeout=cfg.timeout)
            else:
                client = imaplib.IMAP4(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.security == "starttls":
                    client.starttls(ssl_context=context)
            client.login(cfg.username, cfg.password)
            status, data = client.select(_quote_mailbox(cfg.mailbox))
            if status != "OK":
                raise ImapError(f"cannot select mailbox {cfg.mailbox!r}: {_text(data)}")
            _, values = client.response("UIDVALIDITY")
            self.uidvalidity = int(values[0]) if values and values[0] else None
        except ssl.SSLCertVerificationError as exc:
            _shutdown(client)
            raise ImapError(
                f"TLS certificate of {cfg.host} is not trusted ({exc}); set cafile or allow_untrusted"
            ) from exc
        except (OSError, imaplib.IMAP4.error, ValueError) as exc:
            _shutdown(client)
            raise ImapError(f"IMAP {cfg.host}:{cfg.port}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            _shutdown(client)
            raise
        self._client = client

    def close(self) -> None:
        """Log out (quietly: the connection may already be gone)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    def _require(self) -> imaplib.IMAP4:
        if self._client is None:
            raise ImapError("not connected (use ImapSource as a context manager)")
        return self._client

    def _uid(self, command: str, *args: str) -> list[object]:
        client = self._require()
        try:
            status, data = client.uid(command, *args)
        except (TimeoutError, OSError, imaplib.IMAP4.abort) as exc:
            self._client = None
            raise ImapError(f"IMAP connection lost during UID {command}: {type(exc).__name__}: {exc}") from exc
        except imaplib.IMAP4.error as exc:
            raise ImapError(f"IMAP UID {command} failed: {exc}") from exc
        if status != "OK":
            raise ImapError(f"IMAP UID {command} refused: {_text(data)}")
        return list(data)

    # --- reading ------------------------------------------------------------------------------

    def unseen_uids(self) -> list[int]:
        """UIDs of the unseen messages, oldest first."""
        data = self._uid("SEARCH", "UNSEEN")
        raw = data[0] if data and isinstance(data[0], bytes) else b""
        return sorted(int(x) for x in raw.split())

    def _headers(self, uids: list[int]) -> dict[int, tuple[int, str | None]]:
        """UID -> (size, Message-ID) without downloading bodies."""
        result: dict[int, tuple[int, str | None]] = {}
        for start in range(0, len(uids), _HEADER_BATCH):
            chunk = uids[start : start + _HEADER_BATCH]
            data = self._uid(
                "FETCH", ",".join(map(str, chunk)), "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            )
            for entry in data:
                if not isinstance(entry, tuple):
                    continue
                meta, literal = entry[0], entry[1]
                uid, size = None, 0
                for m in _FETCH_META.finditer(meta):
                    if m.group(1):
                        uid = int(m.group(1))
                    if m.group(2):
                        size = int(m.group(2))
                if uid is None:
                    continue
                ids = _MSGID.findall(literal or b"")
                result[uid] = (size, ids[0].decode("ascii", "replace") if ids else None)
        return result

    def _body(self, uid: int, part: str = "BODY.PEEK[]") -> bytes:
        data = self._uid("FETCH", str(uid), f"(UID {part})")
        for entry in data:
            if isinstance(entry, tuple) and isinstance(entry[1], bytes):
                return entry[1]
        raise ImapError(f"message UID {uid} vanished before it could be fetched")

    def newer_uids(self, after: int) -> list[int]:
        """UIDs above ``after`` (seen or not), oldest first."""
        data = self._uid("SEARCH", "UID", f"{after + 1}:*")
        raw = data[0] if data and isinstance(data[0], bytes) else b""
        # "n:*" always matches the newest message, even below n: filter
        return sorted(u for u in (int(x) for x in raw.split()) if u > after)

    def fetch_new(self, is_seen: IsSeen | None = None, limit: int | None = None) -> Iterator[InboundItem]:
        """Yield unseen messages not recorded yet, one at a time (see the module docstring).

        Raises ``ImapError`` if the connection drops; everything yielded
        before that is complete, the rest is fetched on the next run.
        """
        uids = self.unseen_uids()
        if self.last_uid is not None and self.uidvalidity is not None:
            last = self.last_uid(self.source, self.uidvalidity)
            if last is not None:
                uids = sorted(set(uids) | set(self.newer_uids(last)))
        if not uids:
            return
        meta = self._headers(uids)
        known: list[InboundItem] = []
        yielded = 0
        for uid in uids:
            if uid not in meta:
                continue  # expunged meanwhile
            size, message_id = meta[uid]
            raw: bytes | None = None
            if message_id is None and size <= self.limits.max_message_bytes:
                # no Message-ID: the substitute derives from the bytes, so read them first
                raw = self._body(uid)
                message_id = parse_message(raw, self.limits).message_id
            ref = InboundRef(self.source, message_id, self.uidvalidity, uid)
            if is_seen is not None and is_seen(ref):
                known.append(InboundItem(ref=ref, raw=b""))
                continue
            if limit is not None and yielded >= limit:
                break
            if size > self.limits.max_message_bytes:
                head = self._body(uid, "BODY.PEEK[HEADER]")
                message = parse_message(head, self.limits)
                reason = f"message is {size} bytes, over the limit of {self.limits.max_message_bytes}"
                item = InboundItem(ref=ref, raw=head, message=message, error=reason)
            else:
                raw = raw if raw is not None else self._body(uid)
                message = parse_message(raw, self.limits)
                ref = InboundRef(self.source, message.message_id, self.uidvalidity, uid, message.content_digest)
                item = InboundItem(ref=ref, raw=raw, message=message)
            yielded += 1
            yield item
        if known:
            self.mark_seen(known)

    def mark_seen(self, items: Iterable[InboundItem]) -> int:
        """Flag items ``\\Seen`` - call only after their database commit.

        Items from another UIDVALIDITY are skipped (their UIDs mean nothing
        now; the Message-ID check keeps them from being ingested again).
        Returns the number flagged.
        """
        uids = sorted({i.ref.uid for i in items if i.ref.uid is not None and i.ref.uidvalidity == self.uidvalidity})
        if not uids:
            return 0
        for start in range(0, len(uids), _HEADER_BATCH):
            chunk = ",".join(map(str, uids[start : start + _HEADER_BATCH]))
            self._uid("STORE", chunk, "+FLAGS.SILENT", "(\\Seen)")
        return len(uids)

    def acknowledge(self, item: InboundItem, status: str, reason: str | None = None) -> None:
        """The ``InboundSource`` port's hook: an item's outcome is committed, so flag it seen."""
        self.mark_seen([item])


def _shutdown(client: imaplib.IMAP4 | None) -> None:
    if client is not None:
        with contextlib.suppress(Exception):
            client.shutdown()


def _text(data: object) -> str:
    if isinstance(data, list | tuple):
        return " ".join(_text(d) for d in data)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


if TYPE_CHECKING:  # mypy checks the adapter against the port, parameter and return types included
    from connectors.ports import InboundSource

    _source: type[InboundSource] = ImapSource
