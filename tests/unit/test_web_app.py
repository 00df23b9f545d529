"""The web app's frame: security headers on every response, static files, the ``ldflow web`` settings."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from connectors.testing import InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.clock import FixedClock
from flows.settings import Settings
from flows.web.app import SECURITY_HEADERS, create_app
from tests.builders import T0


def _client(tmp_path: Path) -> TestClient:
    uow = InMemoryUnitOfWork()
    app = bootstrap.compose(Settings(home=tmp_path), store=uow.store, uow=uow, clock=FixedClock(T0),
                            sender=InMemorySender(), sources=lambda: [])
    return TestClient(create_app(app))


def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    client = _client(tmp_path)
    for path in ("/healthz", "/static/ldflow.css", "/static/htmx.min.js", "/no-such-page"):
        response = client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (path, name)
    assert "'unsafe-inline'" not in SECURITY_HEADERS["content-security-policy"]
    assert "frame-ancestors 'none'" in SECURITY_HEADERS["content-security-policy"]


def test_static_files_are_served_and_htmx_is_vendored(tmp_path: Path) -> None:
    client = _client(tmp_path)
    assert client.get("/healthz").text == "ok"
    js = client.get("/static/htmx.min.js")
    assert js.status_code == 200 and js.text.startswith("var htmx=")
    assert client.get("/static/../settings.py").status_code == 404


def test_links_point_at_the_base_url_else_the_listening_address(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).web_url == "http://127.0.0.1:8000"
    assert Settings(home=tmp_path, web_port=9000).web_url == "http://127.0.0.1:9000"
    assert Settings(home=tmp_path, base_url="https://ld.example.org/").web_url == "https://ld.example.org"
