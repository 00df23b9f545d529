"""The JSON API through a real uvicorn on a loopback port, on SQLite and on PostgreSQL: the whole
design path and the other commands as a program drives them, tokens from the database (stored as
hashes), a revoked token refused at once, and two writers racing on one version (one wins)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from connectors.db.tables import api_tokens, audit_events
from flows import bootstrap
from flows.bootstrap import App
from flows.settings import Settings
from flows.web.app import create_app
from tests.api_walk import API, bearer, design_path, ok, other_commands
from tests.builders import SPONSOR, diagnosis_data, intake_data


@dataclass
class Served:
    app: App
    url: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:
    # SQLite: the fixture's file, tmp_path/ldflow.db
    app = bootstrap.build(Settings(home=tmp_path, database_url=None if db_url.startswith("sqlite") else db_url))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.close()


def test_the_whole_path_through_uvicorn_with_tokens_from_the_database(served: Served) -> None:
    made = served.app.tokens.create("ci", "partner", "Ann Partner", "ops")
    viewer = served.app.tokens.create("board", "viewer", "Vic Viewer", "ops").secret
    assert served.app.engine is not None
    with served.app.engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.secret_hash, api_tokens.c.prefix)
                              .where(api_tokens.c.name == "ci")).one()
    assert stored.secret_hash == hashlib.sha256(made.secret.encode()).hexdigest() and made.secret not in stored
    with httpx.Client(base_url=served.url, timeout=30) as client:
        assert client.get(f"{API}/openapi.json").json()["info"]["title"] == "ldflow API"
        sponsor = bearer(served.app.tokens.create("sponsor", "partner", SPONSOR, "ops").secret)
        rid = design_path(client, bearer(made.secret), sponsor)
        other_commands(client, bearer(served.app.tokens.create("admin", "admin", "Ada Admin", "ops").secret))
        assert ok(client.get(f"{API}/requests/{rid}", headers=bearer(viewer)))["state"] == "acknowledged"
        refused = client.post(f"{API}/requests", json=intake_data(), headers=bearer(viewer))
        assert refused.status_code == 403
        served.app.tokens.revoke("ci")
        assert client.get(f"{API}/requests", headers=bearer(made.secret)).status_code == 401
    with served.app.engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.actor, audit_events.c.payload)
                            .where(audit_events.c.request_id == rid)).all()
    # every write of the path by the token's owner through the API; the approval by the sponsor's own token
    assert {actor for actor, _ in rows} == {"Ann Partner", SPONSOR}
    assert {json.loads(payload).get("via") for _, payload in rows} == {"api"}
    assert served.app.tokens.list()[0].last_used_at is not None


def test_two_writers_on_one_version_one_wins_the_other_gets_409(served: Served) -> None:
    secret = served.app.tokens.create("ci", "partner", "Ann Partner", "ops").secret
    with httpx.Client(base_url=served.url, timeout=30) as client:
        rid = ok(client.post(f"{API}/requests", json=intake_data(), headers=bearer(secret)), 201)["id"]

        def diagnose(_: int) -> int:
            with httpx.Client(base_url=served.url, timeout=30) as own:
                return own.post(f"{API}/requests/{rid}/diagnose", params={"if_version": 1}, json=diagnosis_data(),
                                headers=bearer(secret)).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = sorted(pool.map(diagnose, range(4)))
        assert statuses == [200, 409, 409, 409]
        history = ok(client.get(f"{API}/requests/{rid}/history", headers=bearer(secret)))
        assert [e["type"] for e in history].count("diagnosed") == 1
