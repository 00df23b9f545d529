"""The ``InboundSource`` port's contract on the fake inbox, the drop folder and IMAP (Dovecot).

``test_imap.py`` and ``tests/unit/test_email_dropfolder.py`` test each source with the ingestion
loop (UIDVALIDITY changes, cut connections, JSON/YAML intakes); here the same reading cases run on
all three, so the fake the unit tests use cannot drift from the sources production uses.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.email.config import InboundLimits
from connectors.email.dropfolder import DropFolderSource
from connectors.email.imap import ImapSource
from connectors.ports import InboundRef, InboundSource
from connectors.testing import InMemoryInbox
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import ImapBox

imap_box = cm.imap_box

LIMITS = InboundLimits(max_message_bytes=20_000)


@dataclass
class Inbox:
    source: InboundSource
    deliver: Callable[[bytes], object]


def _drop_folder(folder: Path) -> Inbox:
    count = 0

    def deliver(raw: bytes) -> None:
        nonlocal count
        count += 1
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{count:03d}.eml.tmp"
        tmp.write_bytes(raw)
        os.replace(tmp, folder / f"{count:03d}.eml")  # as the folder's writers must: whole files only

    return Inbox(DropFolderSource(folder, LIMITS), deliver)


@pytest.fixture(params=["memory", "drop", pytest.param("imap", marks=pytest.mark.imap)])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    if request.param == "memory":
        fake = InMemoryInbox(limits=LIMITS)
        yield Inbox(fake, fake.add)
    elif request.param == "drop":
        yield _drop_folder(tmp_path / "drop")
    else:
        box: ImapBox = request.getfixturevalue("imap_box")
        with ImapSource(box.config(), LIMITS) as source:
            def deliver(raw: bytes) -> None:
                box.admin.append(box.mailbox, raw)
                # The server shows a session new mail at its next sync; ImapSource does not poll (each
                # pipeline run connects anew), so reconnect as the next run would.
                source.close()
                source.connect()

            yield Inbox(source, deliver)


RUN = secrets.token_hex(4)  # Message-IDs unique to this run: the test mailboxes live on a shared server


def mail(n: int, *, size: int = 0) -> bytes:
    padding = ("x" * 70 + "\r\n") * (size // 72)
    return (f"From: Requester {n} <req{n}@example.org>\r\nTo: ld@example.org\r\nSubject: Request {n}\r\n"
            f"Message-ID: <contract-{n}-{RUN}@example.org>\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease help with {n}.\r\n"
            f"{padding}").encode()


def mid(n: int) -> str:
    return f"<contract-{n}-{RUN}@example.org>"


def fetched(inbox: Inbox, is_seen: Callable[[InboundRef], bool] | None = None,
            limit: int | None = None) -> list[str | None]:
    return [item.ref.message_id for item in inbox.source.fetch_new(is_seen, limit)]


def test_new_items_come_oldest_first_with_their_message(inbox: Inbox) -> None:
    assert isinstance(inbox.source.source, str) and inbox.source.source
    assert list(inbox.source.fetch_new()) == []
    for n in (1, 2, 3):
        inbox.deliver(mail(n))
    items = list(inbox.source.fetch_new())
    assert [i.ref.message_id for i in items] == [mid(1), mid(2), mid(3)]
    for n, item in enumerate(items, start=1):
        assert item.ref.source == inbox.source.source
        assert (item.kind, item.quarantine_reason, item.raw) == ("eml", None, mail(n))
        assert item.message is not None and item.message.subject == f"Request {n}"
        assert item.message.from_address == f"req{n}@example.org"


def test_items_are_offered_again_until_acknowledged(inbox: Inbox) -> None:
    for n in (1, 2, 3):
        inbox.deliver(mail(n))
    items = list(inbox.source.fetch_new())
    assert fetched(inbox) == [mid(1), mid(2), mid(3)]  # nothing acknowledged: a crash loses nothing
    inbox.source.acknowledge(items[0], "processed")
    inbox.source.acknowledge(items[2], "quarantined", "no request matches")
    assert fetched(inbox) == [mid(2)]
    inbox.deliver(mail(4))
    assert fetched(inbox) == [mid(2), mid(4)]


def test_items_recorded_before_are_skipped_and_marked_read(inbox: Inbox) -> None:
    for n in (1, 2, 3):
        inbox.deliver(mail(n))
    asked: list[str | None] = []

    def is_seen(ref: InboundRef) -> bool:
        asked.append(ref.message_id)
        return ref.message_id == mid(2)

    assert fetched(inbox, is_seen=is_seen) == [mid(1), mid(3)]
    assert asked == [mid(1), mid(2), mid(3)]
    assert fetched(inbox) == [mid(1), mid(3)]  # the recorded one was marked read; the others were not


def test_limit_caps_one_run_and_the_rest_comes_next(inbox: Inbox) -> None:
    for n in (1, 2, 3):
        inbox.deliver(mail(n))
    first = list(inbox.source.fetch_new(limit=2))
    assert [i.ref.message_id for i in first] == [mid(1), mid(2)]
    for item in first:
        inbox.source.acknowledge(item, "processed")
    assert fetched(inbox, limit=2) == [mid(3)]


def test_an_oversize_message_is_offered_for_quarantine(inbox: Inbox) -> None:
    inbox.deliver(mail(1, size=30_000))
    inbox.deliver(mail(2))
    big, small = inbox.source.fetch_new()
    assert big.quarantine_reason is not None and "over the limit of 20000" in big.quarantine_reason
    assert big.ref.message_id and big.ref.source == inbox.source.source
    assert small.quarantine_reason is None and small.ref.message_id == mid(2)
    inbox.source.acknowledge(big, "quarantined", big.quarantine_reason)
    assert fetched(inbox) == [mid(2)]
