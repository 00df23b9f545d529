"""``ldflow demo --web``: the web app over the demo's data directory, with a demo admin whose password
is printed once (uvicorn itself is replaced here by a TestClient over the app it would serve)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import demo
from tests.web_support import csrf_of


def test_serve_web_makes_a_demo_admin_and_serves_the_demo_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    assert demo.serve_web(tmp_path) == 0
    printed = capsys.readouterr().out
    password = re.search(r"with the password (\S+)", printed)
    assert password and demo.DEMO_ADMIN in printed
    assert (tmp_path / "ldflow.db").exists() and served["host"] == "127.0.0.1"
    client = TestClient(served["app"], follow_redirects=False)
    token = csrf_of(client.get("/sign-in").text)
    signed = client.post("/sign-in", data={"csrf": token, "email": demo.DEMO_ADMIN, "password": password.group(1)})
    assert signed.status_code == 303 and client.get("/").status_code == 200
    # run again: a new password, the old one no longer works
    assert demo.serve_web(tmp_path) == 0
    again = TestClient(served["app"], follow_redirects=False)
    token = csrf_of(again.get("/sign-in").text)
    assert again.post("/sign-in", data={"csrf": token, "email": demo.DEMO_ADMIN,
                                        "password": password.group(1)}).status_code == 401
