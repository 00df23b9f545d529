"""Helpers for the web app's tests: an app on the in-memory fakes with one account per role, and
signing a TestClient in through the real sign-in form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from connectors.testing import InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.settings import Settings
from flows.web.app import create_app
from tests.builders import T0

PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
ADMIN, PARTNER, VIEWER = "ada.admin@example.org", "pat.partner@example.org", "vic.viewer@example.org"
ROLE_EMAIL = {"admin": ADMIN, "partner": PARTNER, "viewer": VIEWER}


@dataclass
class WebRig:
    app: App
    clock: FixedClock
    web: Any

    def client(self, role: str | None = None, *, https: bool = False) -> TestClient:
        """A browser-like client, signed in as the account of ``role`` (None: anonymous)."""
        client = TestClient(self.web, base_url="https://testserver" if https else "http://testserver",
                            follow_redirects=False)
        if role is not None:
            sign_in(client, ROLE_EMAIL[role])
        return client


def rig(tmp_path: Path) -> WebRig:
    uow = InMemoryUnitOfWork()
    clock = FixedClock(T0)
    app = bootstrap.compose(Settings(home=tmp_path), store=uow.store, uow=uow, clock=clock,
                            sender=InMemorySender(), sources=lambda: [])
    app.accounts.hasher = CHEAP  # argon2id still; the library's defaults cost seconds on a loaded CI machine
    for role, email in ROLE_EMAIL.items():
        app.accounts.add(email, f"{role.title()} Person", role, PASSWORD)
    return WebRig(app, clock, create_app(app))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/sign-in").text)
    response = client.post("/sign-in", data={"csrf": token, "email": email, "password": password, "next": "/"})
    assert response.status_code == 303, response.text
    return response


def post_form(client: TestClient, path: str, data: dict[str, str], *, page: str | None = None) -> Any:
    """POST ``data`` with the CSRF token of ``page`` (default: the request page the path is under)."""
    source = page or "/".join(path.split("/")[:3])
    token = csrf_of(client.get(source).text)
    return client.post(path, data={"csrf": token, **data})
