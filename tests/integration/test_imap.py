"""IMAP in against a real Dovecot (started by .ci/services.sh) on loopback.

Skips with a message when no IMAP server listens on 127.0.0.1:10143, unless
LDFLOW_TEST_IMAP=1 (as in .ci/run): then a missing server fails the tests.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.db import inbound as inbound_db
from connectors.db.tables import inbound, outbox
from connectors.db.unit_of_work import SqlUnitOfWork
from connectors.email.imap import ImapError, ImapSource
from connectors.email.inbound import InboundItem, InboundRef
from connectors.email.replies import interpret_reply, match_request
from connectors.ports import Transaction
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import (
    T0,
    CutProxy,
    ImapBox,
    enqueue,
    make_notification,
)

# fixtures shared with the other mail/calendar test modules
cut_proxy = cm.cut_proxy
imap_box = cm.imap_box
sqlite_mail_engine = cm.sqlite_mail_engine

pytestmark = pytest.mark.imap


def mail(n: int, *, subject: str | None = None, body: str = "Please help.", extra: str = "",
         size: int = 0) -> bytes:
    padding = ("x" * 70 + "\r\n") * (size // 72) if size else ""
    return (
        f"From: Requester {n} <req{n}@example.org>\r\n"
        f"To: ld@example.org\r\n"
        f"Subject: {subject or f'Training request {n}'}\r\n"
        f"Message-ID: <req-{n}-{os.getpid()}@example.org>\r\n"
        f"Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n"
        f"{extra}"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n{padding}"
    ).encode()


class Recorder:
    """A handler that turns each mail into a 'request' and remembers what it saw."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    def __call__(self, tx: Transaction, item: InboundItem) -> inbound_db.Handled:
        assert item.message is not None
        self.handled.append(item.message.message_id)
        return inbound_db.Handled("processed", request_id=len(self.handled))


def run(engine: Engine, box: ImapBox, handle: Callable[..., inbound_db.Handled], *, port: int | None = None,
        source_wrapper: Callable[[ImapSource], Any] | None = None) -> inbound_db.IngestSummary:
    config = box.config(port=port) if port else box.config()
    with ImapSource(config) as source:
        target = source_wrapper(source) if source_wrapper else source
        return inbound_db.ingest(SqlUnitOfWork(engine), target, handle, T0)


def seen_flags(box: ImapBox) -> list[bool]:
    return ["\\Seen" in flags for _, flags in sorted(box.admin.flags(box.mailbox).items())]


def recorded(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(inbound).order_by(inbound.c.id)).mappings()]


def test_new_requests_are_ingested_once_across_repeated_runs(imap_box: ImapBox, sqlite_mail_engine: Engine) -> None:
    for n in range(3):
        imap_box.admin.append(imap_box.mailbox, mail(n))
    handle = Recorder()
    first = run(sqlite_mail_engine, imap_box, handle)
    second = run(sqlite_mail_engine, imap_box, handle)
    assert (first.processed, second.processed, second.skipped) == (3, 0, 0)
    assert len(handle.handled) == 3
    assert seen_flags(imap_box) == [True, True, True]
    rows = recorded(sqlite_mail_engine)
    assert [r["uid"] for r in rows] == [1, 2, 3]
    assert {r["status"] for r in rows} == {"processed"} and all(r["uidvalidity"] for r in rows)


class ForgetfulAck:
    """Wraps a source and 'crashes' between the commit and the \\Seen flag."""

    def __init__(self, source: ImapSource) -> None:
        self.inner = source
        self.source = source.source

    def fetch_new(self, is_seen: Any = None, limit: int | None = None) -> Iterator[InboundItem]:
        return self.inner.fetch_new(is_seen, limit)

    def acknowledge(self, item: InboundItem, status: str, reason: str | None = None) -> None:
        pass  # the process died before flagging the message


def test_commit_without_seen_flag_is_not_ingested_twice(imap_box: ImapBox, sqlite_mail_engine: Engine) -> None:
    imap_box.admin.append(imap_box.mailbox, mail(1))
    handle = Recorder()
    run(sqlite_mail_engine, imap_box, handle, source_wrapper=ForgetfulAck)
    assert seen_flags(imap_box) == [False]
    again = run(sqlite_mail_engine, imap_box, handle)
    assert again.processed == 0 and len(handle.handled) == 1
    assert seen_flags(imap_box) == [True]  # recognised as done, flagged now


def test_changed_uidvalidity_is_handled(imap_box: ImapBox, sqlite_mail_engine: Engine) -> None:
    for n in range(2):
        imap_box.admin.append(imap_box.mailbox, mail(n))
    handle = Recorder()
    run(sqlite_mail_engine, imap_box, handle)
    with ImapSource(imap_box.config()) as source:
        old_validity = source.uidvalidity
    # the mailbox is rebuilt (restore from backup, migration): new UIDVALIDITY, flags gone
    imap_box.admin.delete(imap_box.mailbox)
    imap_box.admin.create(imap_box.mailbox)
    for n in range(3):
        imap_box.admin.append(imap_box.mailbox, mail(n))
    with ImapSource(imap_box.config()) as source:
        assert source.uidvalidity != old_validity
    summary = run(sqlite_mail_engine, imap_box, handle)
    assert summary.processed == 1  # only the new mail
    assert len(handle.handled) == 3 and len(set(handle.handled)) == 3
    assert seen_flags(imap_box) == [True, True, True]


def test_dropped_connection_mid_fetch_loses_and_duplicates_nothing(
    imap_box: ImapBox, sqlite_mail_engine: Engine, cut_proxy: Callable[[int], CutProxy]
) -> None:
    from tests.integration.conftest_mail import IMAP_PORT

    total = 6
    for n in range(total):
        imap_box.admin.append(imap_box.mailbox, mail(n, size=30_000))
    proxy = cut_proxy(IMAP_PORT)
    proxy.cut_after = 75_000  # somewhere in the third message's body
    handle = Recorder()
    first = run(sqlite_mail_engine, imap_box, handle, port=proxy.port)
    assert first.aborted is not None and proxy.cuts == 1
    assert 0 < first.processed < total
    proxy.cut_after = None
    second = run(sqlite_mail_engine, imap_box, handle, port=proxy.port)
    assert second.aborted is None
    assert first.processed + second.processed == total
    assert len(handle.handled) == total and len(set(handle.handled)) == total
    assert seen_flags(imap_box) == [True] * total
    assert len(recorded(sqlite_mail_engine)) == total


def test_connection_refused_is_a_clear_error(imap_box: ImapBox) -> None:
    from tests.integration.conftest_mail import free_port

    with pytest.raises(ImapError, match="IMAP 127.0.0.1"):
        ImapSource(imap_box.config(port=free_port(), timeout=2)).connect()


def _malformed() -> dict[str, bytes]:
    head = ("From: Mallory <mallory@example.org>\r\nTo: ld@example.org\r\nMIME-Version: 1.0\r\n"
            "Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n")
    nested = "Content-Type: text/plain\r\n\r\ndeep\r\n"
    for i in range(30):
        nested = (f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n{nested}\r\n--b{i}--\r\n')
    big = base64.encodebytes(os.urandom(15 * 1024 * 1024)).decode().replace("\n", "\r\n")
    return {
        "missing-boundary": (head + "Subject: no boundary\r\nMessage-ID: <m1@example.org>\r\n"
                             "Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
                             "--x--\r\n").encode(),
        "bad-charset": (head + "Subject: bad charset\r\nMessage-ID: <m2@example.org>\r\n"
                        "Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nhi\r\n").encode(),
        "deep-nesting": (head + "Subject: nesting\r\nMessage-ID: <m3@example.org>\r\n" + nested).encode(),
        "huge-part": (head + 'Subject: big\r\nMessage-ID: <m4@example.org>\r\nContent-Type: multipart/mixed; '
                      'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n'
                      "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                      + big + "\r\n--b--\r\n").encode(),
    }


class Timed:
    """Wraps a source and measures how long each item takes, fetch to verdict."""

    def __init__(self, source: ImapSource) -> None:
        self.inner = source
        self.source = source.source
        self.durations: list[float] = []
        self._started = 0.0

    def fetch_new(self, is_seen: Any = None, limit: int | None = None) -> Iterator[InboundItem]:
        self._started = time.monotonic()
        for item in self.inner.fetch_new(is_seen, limit):
            yield item
            self._started = time.monotonic()

    def acknowledge(self, item: InboundItem, status: str, reason: str | None = None) -> None:
        self.inner.acknowledge(item, status, reason)
        self.durations.append(time.monotonic() - self._started)


def test_malformed_mime_is_quarantined_with_its_defects_quickly(imap_box: ImapBox, sqlite_mail_engine: Engine,
                                                                tmp_path) -> None:
    samples = _malformed()
    for raw in samples.values():
        imap_box.admin.append(imap_box.mailbox, raw)
    handle = Recorder()
    timed: list[Timed] = []

    def wrap(source: ImapSource) -> Timed:
        timed.append(Timed(source))
        return timed[0]

    config = imap_box.config(timeout=30)
    with ImapSource(config) as source:
        summary = inbound_db.ingest(SqlUnitOfWork(sqlite_mail_engine), wrap(source), handle, T0,
                                    quarantine_dir=tmp_path / "q")
    assert summary.quarantined == 4 and handle.handled == []
    assert len(timed[0].durations) == 4 and max(timed[0].durations) < 5.0, timed[0].durations
    rows = {r["message_id"]: r for r in recorded(sqlite_mail_engine)}
    assert "Boundary" in rows["<m1@example.org>"]["reason"]
    assert "x-no-such-charset" in rows["<m2@example.org>"]["reason"]
    assert "nesting" in rows["<m3@example.org>"]["reason"]
    assert "over the limit" in rows["<m4@example.org>"]["reason"]
    assert all(r["status"] == "quarantined" and r["raw_path"] for r in rows.values())
    assert seen_flags(imap_box) == [True] * 4  # quarantined is an outcome too: not fetched again
    assert run(sqlite_mail_engine, imap_box, handle).quarantined == 0


def test_a_reply_is_matched_to_its_request_and_read(imap_box: ImapBox, sqlite_mail_engine: Engine) -> None:
    from sqlalchemy import update

    from connectors.db.engine import write_transaction
    from connectors.email.render import message_id_for

    enqueue(sqlite_mail_engine, make_notification("7:plan_approval_request:v3", request_id=7))
    sent_id = message_id_for("7:plan_approval_request:v3", "ldflow.example.org")
    with write_transaction(sqlite_mail_engine) as conn:
        conn.execute(update(outbox).values(status="sent", message_id=sent_id))
    imap_box.admin.append(imap_box.mailbox, mail(
        1, subject="Re: Please approve the measurement plan", body="Approved!\r\n\r\n> Please approve ...",
        extra=f"In-Reply-To: {sent_id}\r\nReferences: {sent_id}\r\n"))
    imap_box.admin.append(imap_box.mailbox, mail(2, subject="Re: something else", body="Thanks"))
    decisions: list[tuple[int, str]] = []

    def handle(tx: Transaction, item: InboundItem) -> inbound_db.Handled:
        assert item.message is not None
        match = match_request(item.message, tx.outbox.sent_as)
        if match is None:
            raise inbound_db.Quarantine("reply matches no request (no known thread, no [ldflow #N] tag)")
        decisions.append((match.request_id, interpret_reply(item.message.body_text).kind))
        return inbound_db.Handled("processed", request_id=match.request_id)

    summary = run(sqlite_mail_engine, imap_box, handle)
    assert decisions == [(7, "approve")]
    assert (summary.processed, summary.quarantined) == (1, 1)
    rows = recorded(sqlite_mail_engine)
    assert rows[0]["request_id"] == 7
    assert rows[1]["status"] == "quarantined" and "matches no request" in rows[1]["reason"]


def test_inbound_key_dedupes_by_message_id_across_sources_of_one_mailbox(sqlite_mail_engine: Engine) -> None:
    from connectors.db.engine import write_transaction

    ref = InboundRef("imap:INBOX", "<x@example.org>", 5, 1)
    with write_transaction(sqlite_mail_engine) as conn:
        assert inbound_db.claim(conn, ref, received_at=T0) is not None
        assert inbound_db.claim(conn, ref, received_at=T0) is None
        assert inbound_db.claim(conn, InboundRef("imap:INBOX", "<x@example.org>", 6, 9), received_at=T0) is None
        assert inbound_db.max_uid(conn, "imap:INBOX", 5) == 1


def test_with_a_uid_cursor_mail_read_by_a_human_is_still_ingested(imap_box: ImapBox,
                                                                  sqlite_mail_engine: Engine) -> None:
    imap_box.admin.append(imap_box.mailbox, mail(1))
    handle = Recorder()
    run(sqlite_mail_engine, imap_box, handle)
    imap_box.admin.append(imap_box.mailbox, mail(2), flags="(\\Seen)")  # someone opened it first
    assert run(sqlite_mail_engine, imap_box, handle).processed == 0  # UNSEEN alone misses it

    last_uid = SqlUnitOfWork(sqlite_mail_engine).inbound.max_uid
    with ImapSource(imap_box.config(), last_uid=last_uid) as source:
        summary = inbound_db.ingest(SqlUnitOfWork(sqlite_mail_engine), source, handle, T0)
    assert summary.processed == 1 and len(handle.handled) == 2
    with ImapSource(imap_box.config(), last_uid=last_uid) as source:
        assert inbound_db.ingest(SqlUnitOfWork(sqlite_mail_engine), source, handle, T0).processed == 0
