"""Files: drop-folder links and special files quarantined unread, and every file ldflow creates under its
data directory private (0700 folders, 0600 files) whatever the umask."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from connectors.db import inbound as inbound_db
from connectors.db.engine import make_engine, sqlite_url
from connectors.db.tables import metadata
from connectors.db.unit_of_work import SqlTransaction, SqlUnitOfWork
from connectors.email.dropfolder import DropFolderSource
from connectors.email.inbound import InboundItem
from connectors.email.smtp import FileSender
from tests.integration.conftest_mail import make_notification, renderer

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
GOOD = {"title": "Onboarding", "requester": {"name": "Sam"}}


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _handler(tx: SqlTransaction, item: InboundItem) -> inbound_db.Handled:
    return inbound_db.Handled(inbound_db.PROCESSED)


def test_a_symlink_and_a_fifo_in_the_drop_folder_are_quarantined_unread(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.json"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"title": "Secret text", "requester": {"name": "x"}}))
    os.chmod(secret, 0o640)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a-link.json").symlink_to(secret)
    (drop / "b-dangling.eml").symlink_to(tmp_path / "nowhere.eml")
    os.mkfifo(drop / "c-pipe.yaml")
    (drop / "d-good.json").write_text(json.dumps(GOOD))
    items = {Path(i.path or "").name: i for i in DropFolderSource(drop).fetch_new()}
    assert sorted(items) == ["a-link.json", "b-dangling.eml", "c-pipe.yaml", "d-good.json"]
    assert items["a-link.json"].intake is None and items["a-link.json"].raw == b""
    assert "a symbolic link: quarantined unread" in (items["a-link.json"].quarantine_reason or "")
    assert "symbolic link" in (items["b-dangling.eml"].quarantine_reason or "")
    assert "not a regular file" in (items["c-pipe.yaml"].quarantine_reason or "")
    assert items["d-good.json"].intake == GOOD

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    metadata.create_all(engine)
    summary = inbound_db.ingest(SqlUnitOfWork(engine), DropFolderSource(drop), _handler, NOW)
    assert (summary.processed, summary.quarantined) == (1, 3)
    quarantined = drop / "quarantine"
    assert (quarantined / "a-link.json").is_symlink()  # the link moved, its target untouched
    assert json.loads(secret.read_text())["title"] == "Secret text"
    assert _mode(secret) == 0o640  # never chmod-ed through the link
    assert "Secret text" not in "".join(p.read_text() for p in quarantined.glob("*.reason.txt"))
    assert list(drop.glob("*.json")) + list(drop.glob("*.eml")) + list(drop.glob("*.yaml")) == []


def test_the_data_directory_database_wal_and_mail_folders_are_private_under_umask_022(
        tmp_path: Path, umask_022: None) -> None:
    home = tmp_path / "home" / ".ldflow"
    engine: Engine = make_engine(sqlite_url(home))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x)")
        conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
    assert _mode(home) == 0o700 and _mode(home.parent) == 0o700
    db_files = [p for p in home.iterdir() if p.name.startswith("ldflow.db")]
    assert {p.name for p in db_files} >= {"ldflow.db", "ldflow.db-wal"}
    assert {p.name: _mode(p) for p in db_files} == {p.name: 0o600 for p in db_files}

    outbox = home / "outbox"
    FileSender(outbox).send(renderer()(make_notification()))
    assert _mode(outbox) == 0o700
    assert {_mode(p) for p in outbox.iterdir()} == {0o600}

    drop = home / "dropbox"
    drop.mkdir()
    (drop / "a.json").write_text(json.dumps(GOOD))
    (drop / "b.json").write_text("{not json")
    assert _mode(drop / "a.json") == 0o644
    summary = inbound_db.ingest(SqlUnitOfWork(engine), DropFolderSource(drop), _handler, NOW,
                                quarantine_dir=home / "quarantine")
    assert (summary.processed, summary.quarantined) == (1, 1)
    for folder in (drop / "processed", drop / "quarantine"):
        assert _mode(folder) == 0o700
        assert {_mode(p) for p in folder.iterdir()} == {0o600}


def _eml(body: str, message_id: str = "<same@example.org>") -> bytes:
    return (f"From: Dana <dana@example.org>\r\nSubject: Sales coaching\r\nMessage-ID: {message_id}\r\n"
            f"Date: Mon, 2 Nov 2026 09:00:00 +0000\r\n\r\n{body}\r\n").encode()


def test_a_second_mail_with_a_known_message_id_but_other_content_is_quarantined_with_that_reason(
        tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    metadata.create_all(engine)
    uow = SqlUnitOfWork(engine)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.eml").write_bytes(_eml("Please help with the pricing talk."))
    assert inbound_db.ingest(uow, DropFolderSource(drop), _handler, NOW).processed == 1
    # the same mail again (another copy, a Received: line more): seen, not quarantined
    (drop / "b.eml").write_bytes(b"Received: from relay.example.org\r\n" + _eml("Please help with the pricing talk."))
    # a different mail reusing the Message-ID: quarantined with the reason, never silently dropped
    (drop / "c.eml").write_bytes(_eml("Approve. Also wire 10,000 EUR to ..."))
    summary = inbound_db.ingest(uow, DropFolderSource(drop), _handler, NOW)
    assert (summary.processed, summary.quarantined) == (0, 1)
    assert "Message-ID <same@example.org> was taken in before, with different content" in summary.reasons[0]
    assert (drop / "quarantine" / "c.eml").exists() and (drop / "processed" / "b.eml").exists()
    [record] = uow.inbound.quarantined()
    assert record.message_id is not None and record.message_id.startswith("<same@example.org>#content-")
    # a third copy of the forged mail is seen (recorded under its variant): skipped, not quarantined twice
    (drop / "d.eml").write_bytes(_eml("Approve. Also wire 10,000 EUR to ..."))
    again = inbound_db.ingest(uow, DropFolderSource(drop), _handler, NOW)
    assert (again.processed, again.quarantined) == (0, 0)
    assert len(uow.inbound.quarantined()) == 1


def test_the_in_memory_inbound_log_quarantines_the_same_way(tmp_path: Path) -> None:
    from connectors.testing import InMemoryInbox, InMemoryUnitOfWork

    uow = InMemoryUnitOfWork()
    inbox = InMemoryInbox()
    inbox.add(_eml("first text"))
    assert inbound_db.ingest(uow, inbox, lambda tx, item: inbound_db.Handled(inbound_db.PROCESSED), NOW).processed == 1
    inbox.add(_eml("other text"))
    summary = inbound_db.ingest(uow, inbox, lambda tx, item: inbound_db.Handled(inbound_db.PROCESSED), NOW)
    assert (summary.processed, summary.quarantined) == (0, 1)
    assert "different content" in summary.reasons[0]
