"""Signed links on SQLite and PostgreSQL: the use and the action commit together (a refused action
leaves no use), a single-use link used once when two posts race, the migration to 0004_links keeps
the data it finds, and the page flow over a real database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from connectors.db import schema
from connectors.db.engine import make_engine, write_transaction
from connectors.db.tables import audit_events, link_uses, requests
from connectors.testing import InMemorySender
from flows import bootstrap
from flows.clock import FixedClock
from flows.link_actions import LinkResponses
from flows.links import LinkUsed
from flows.settings import Settings
from flows.web.app import create_app
from states.errors import TransitionRefused
from tests.builders import T0, diagnosis_data, intake_data, plan_data
from tests.links_support import mail_links, post_form


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[bootstrap.App]:
    settings = Settings(home=tmp_path, database_url=db_url, base_url="https://ld.example.org")
    built = bootstrap.build(settings, clock=FixedClock(T0), sender=InMemorySender(), sources=lambda: [])
    yield built
    built.close()


def _count(app: bootstrap.App, table: Any, **where: Any) -> int:
    assert app.engine is not None
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with app.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _approving(app: bootstrap.App) -> tuple[int, str]:
    rid = app.service.submit(intake_data(), "ops").id
    assert rid is not None
    app.service.diagnose(rid, diagnosis_data(), "ops")
    app.service.draft_plan(rid, plan_data(), "ops")
    [path] = mail_links(app, "plan_approval_request", rid)
    return rid, path


def test_the_approval_and_its_use_commit_together(app: bootstrap.App) -> None:
    rid, path = _approving(app)
    token = path.rsplit("/", 1)[1]
    actions = LinkResponses(app)
    app.service.amend(rid, {"reason": "the sponsor moved", "sponsor": {"name": "Nina", "email": "nina@example.org"}},
                      "ops")  # the link's sponsor is no longer the sponsor: the domain refuses
    events = _count(app, audit_events, request_id=rid)
    with pytest.raises(TransitionRefused):
        actions.approve(token, rid)
    assert _count(app, link_uses) == 0 and _count(app, audit_events, request_id=rid) == events
    rid2, path2 = _approving(app)
    actions.approve(path2.rsplit("/", 1)[1], rid2, "fine")
    assert _count(app, link_uses, request_id=rid2, action="approved") == 1
    assert _count(app, audit_events, request_id=rid2, type="plan_approved", actor="sam.sponsor@example.org") == 1
    assert app.service.history(rid2)[-1].payload["via"] == "link"  # the person is the actor, the link the channel


def test_two_concurrent_posts_of_one_approval_link_approve_once(app: bootstrap.App) -> None:
    rid, path = _approving(app)
    token = path.rsplit("/", 1)[1]
    actions = LinkResponses(app)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def post() -> None:
        barrier.wait()
        try:
            actions.approve(token, rid)
            outcomes.append("approved")
        except (LinkUsed, TransitionRefused) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["LinkUsed", "approved"]
    assert _count(app, link_uses) == 1
    assert _count(app, audit_events, request_id=rid, type="plan_approved") == 1


def test_a_single_use_link_id_is_unique_in_the_table(app: bootstrap.App) -> None:
    assert app.engine is not None
    row = {"link_id": "l" * 32, "purpose": "plan_approval", "request_id": 1, "person": "a@example.org",
           "action": "approved", "used_at": T0, "once_key": "l" * 32}
    with write_transaction(app.engine) as conn:
        conn.execute(insert(link_uses).values(**row))
    with pytest.raises(IntegrityError), write_transaction(app.engine) as conn:
        conn.execute(insert(link_uses).values(**row))
    with write_transaction(app.engine) as conn:  # uses of a survey link (no once_key) are many
        conn.execute(insert(link_uses).values(**{**row, "once_key": None}))
        conn.execute(insert(link_uses).values(**{**row, "once_key": None}))
    assert _count(app, link_uses) == 3


def test_the_pages_on_a_real_database(app: bootstrap.App) -> None:
    client = TestClient(create_app(app))
    rid, path = _approving(app)
    assert post_form(client, path, {"decision": "approve"}).status_code == 200
    assert client.get(path).status_code == 410
    [status] = mail_links(app, "intake_acknowledgement", rid)
    assert client.get(status).status_code == 200
    assert client.get(status.replace(f"/{rid}/", f"/{rid + 1}/")).status_code == 403
    app.clock.set(T0 + timedelta(days=400))  # type: ignore[attr-defined]
    assert client.get(status).status_code == 410


def test_upgrading_a_database_at_0001_keeps_its_requests(tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        schema.upgrade(engine, "0001")
        with engine.begin() as conn:  # a 0001-era row, written as that schema had it
            conn.execute(text("INSERT INTO requests (id, title, state, version, requester_email, sponsor_email, "
                              "created_at, updated_at, head_seq, document) VALUES (7, 'Objection handling course', "
                              "'received', 1, 'a@example.org', 'b@example.org', '2026-01-01 00:00:00', "
                              "'2026-01-01 00:00:00', 0, '{}')"))
        schema.upgrade(engine)
        assert schema.current_revision(engine) == schema.HEAD
        with engine.connect() as conn:
            assert conn.execute(select(requests.c.title).where(requests.c.id == 7)).scalar_one() == \
                "Objection handling course"
            assert conn.execute(select(func.count()).select_from(link_uses)).scalar_one() == 0
    finally:
        engine.dispose()


class _DropsAfterData(InMemorySender):
    """Records the message, then loses the connection: the outcome is unknown (the mail may be out)."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = True
        self.handed_over: list[Any] = []

    def send(self, message: Any, recipients: Any = None) -> Any:
        self.handed_over.append(message)
        if self.drop and message["X-Ldflow-Template"] == "plan_approval_request":
            self.drop = False
            from connectors.ports import UnknownOutcomeError

            raise UnknownOutcomeError("connection lost after DATA")
        return super().send(message, recipients)


def test_a_retried_send_carries_the_same_valid_link(db_url: str, tmp_path: Path) -> None:
    from flows.steps import send_outbox

    sender = _DropsAfterData()
    clock = FixedClock(T0)
    app = bootstrap.build(Settings(home=tmp_path, database_url=db_url, base_url="https://ld.example.org"),
                          clock=clock, sender=sender, sources=lambda: [])
    try:
        rid, _ = _approving(app)
        send_outbox(app)
        key = next(r.key for r in app.uow.outbox.rows() if r.template == "plan_approval_request")
        assert app.mail.retry([key]) == 1
        clock.set(T0 + timedelta(days=2))
        send_outbox(app)
        first, again = [m for m in sender.handed_over if m["X-Ldflow-Template"] == "plan_approval_request"]

        def link(message: Any) -> str:
            text = str(message.get_body(("plain",)).get_content())
            return next(w for w in text.split() if w.startswith("https://ld.example.org/l/approve/"))
        assert link(first) == link(again) and first["Message-ID"] == again["Message-ID"]
        client = TestClient(create_app(app))
        assert client.get(link(again).removeprefix("https://ld.example.org")).status_code == 200
    finally:
        app.close()
