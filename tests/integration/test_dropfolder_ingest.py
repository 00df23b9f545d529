"""The drop folder (the embedded default inbox) and the ingestion loop on SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from connectors.db import inbound as inbound_db
from connectors.db.engine import make_engine
from connectors.db.tables import inbound, metadata
from connectors.db.unit_of_work import SqlTransaction, SqlUnitOfWork
from connectors.email.dropfolder import DropFolderSource
from connectors.email.inbound import InboundItem
from connectors.testing import InMemoryInbox

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
EML = b"From: Dana <dana@example.org>\r\nSubject: Sales coaching\r\nMessage-ID: <d1@example.org>\r\n\r\nPlease help\r\n"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    metadata.create_all(engine)
    return engine


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a-request.eml").write_bytes(EML)
    (folder / "b-request.json").write_text(json.dumps({"title": "Onboarding", "requester": {"name": "Sam"}}))
    (folder / "c-request.yaml").write_text("title: Safety refresher\nrequester:\n  name: Olu\n")
    (folder / "d-broken.json").write_text("{not json")
    (folder / "e-list.yaml").write_text("- just\n- a list\n")
    (folder / "f-bomb.yaml").write_text("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n")
    (folder / ".g-being-written.json").write_text("{}")
    (folder / "h.json.part").write_text("{}")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_reads_eml_json_yaml_and_flags_bad_files(drop: Path) -> None:
    items = {Path(i.path or "").name: i for i in DropFolderSource(drop).fetch_new()}
    assert sorted(items) == ["a-request.eml", "b-request.json", "c-request.yaml", "d-broken.json", "e-list.yaml",
                             "f-bomb.yaml"]
    assert items["a-request.eml"].message is not None
    assert items["a-request.eml"].message.subject == "Sales coaching"
    assert items["b-request.json"].intake == {"title": "Onboarding", "requester": {"name": "Sam"}}
    assert items["c-request.yaml"].intake == {"title": "Safety refresher", "requester": {"name": "Olu"}}
    assert "unreadable json" in (items["d-broken.json"].quarantine_reason or "")
    assert "expected a mapping" in (items["e-list.yaml"].quarantine_reason or "")
    assert "aliases" in (items["f-bomb.yaml"].quarantine_reason or "")


def test_nothing_moves_until_confirmed(drop: Path) -> None:
    source = DropFolderSource(drop)
    items = list(source.fetch_new())
    assert len(list(source.fetch_new())) == len(items)
    good = next(i for i in items if i.kind == "json" and i.intake)
    bad = next(i for i in items if i.error)
    source.confirm(good, "processed")
    source.confirm(bad, "quarantined", "unreadable json: Expecting property name")
    assert (drop / "processed" / "b-request.json").exists()
    assert (drop / "quarantine" / "d-broken.json").exists()
    assert "Expecting property name" in (drop / "quarantine" / "d-broken.json.reason.txt").read_text()


def _handler(created: list[str]):  # type: ignore[no-untyped-def]
    def handle(tx: SqlTransaction, item: InboundItem) -> inbound_db.Handled:
        if item.kind == "eml":
            assert item.message is not None
            created.append(item.message.subject)
        else:
            assert item.intake is not None
            if "title" not in item.intake:
                raise inbound_db.Quarantine("intake without a title")
            created.append(str(item.intake["title"]))
        return inbound_db.Handled("processed", request_id=len(created))
    return handle


def test_ingest_drop_folder_once_and_quarantine_with_reasons(drop: Path, engine: Engine) -> None:
    created: list[str] = []
    (drop / "i-untitled.json").write_text("{}")
    summary = inbound_db.ingest(SqlUnitOfWork(engine), DropFolderSource(drop), _handler(created), NOW)
    assert sorted(created) == ["Onboarding", "Safety refresher", "Sales coaching"]
    assert (summary.processed, summary.quarantined) == (3, 4)
    assert sorted(p.name for p in (drop / "processed").iterdir()) == ["a-request.eml", "b-request.json",
                                                                      "c-request.yaml"]
    quarantined = sorted(p.name for p in (drop / "quarantine").iterdir() if not p.name.endswith(".reason.txt"))
    assert quarantined == ["d-broken.json", "e-list.yaml", "f-bomb.yaml", "i-untitled.json"]
    assert "intake without a title" in (drop / "quarantine" / "i-untitled.json.reason.txt").read_text()
    with engine.connect() as conn:
        rows = conn.execute(select(inbound).where(inbound.c.status == "quarantined")).mappings().all()
        assert all(r["reason"] and r["raw_path"] for r in rows) and len(rows) == 4
    # the same mail dropped again is recognised and just filed
    (drop / "again.eml").write_bytes(EML)
    again = inbound_db.ingest(SqlUnitOfWork(engine), DropFolderSource(drop), _handler(created), NOW)
    assert (again.processed, again.quarantined) == (0, 0) and len(created) == 3
    assert (drop / "processed" / "again.eml").exists()


def test_a_failing_handler_rolls_back_and_quarantines(engine: Engine) -> None:
    inbox = InMemoryInbox()
    inbox.add(EML)

    def explode(tx: SqlTransaction, item: InboundItem) -> inbound_db.Handled:
        tx.connection.execute(inbound.insert().values(source="side-effect", received_at=NOW, status="processed"))
        raise RuntimeError("database said no")

    summary = inbound_db.ingest(SqlUnitOfWork(engine), inbox, explode, NOW)
    assert summary.quarantined == 1 and "RuntimeError: database said no" in summary.reasons[0]
    with engine.connect() as conn:
        rows = conn.execute(select(inbound)).mappings().all()
    assert [(r["source"], r["status"]) for r in rows] == [("imap:INBOX", "quarantined")]  # side effect rolled back
    assert inbox.seen == {1}
