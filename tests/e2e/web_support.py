"""Browser-test support: the web app served by a real uvicorn on a free loopback port (in a thread),
Debian's Chromium through Playwright, and the links in the .eml files of the outbox folder."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def require_browser() -> None:
    """Skip (with the reason) when Debian's Chromium is missing, unless LDFLOW_TEST_BROWSER=1 demands it."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("LDFLOW_TEST_BROWSER") == "1":
        pytest.fail(message + " and LDFLOW_TEST_BROWSER=1")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(web_app: Any, port: int) -> Iterator[str]:
    """``web_app`` served by uvicorn on 127.0.0.1:``port`` until the block ends; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(web_app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def mails(outbox_dir: Path, template: str) -> list[EmailMessage]:
    """The .eml files the file sender wrote for ``template``, oldest first."""
    found = []
    for path in sorted(outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        if message["X-Ldflow-Template"] == template:
            found.append(message)
    return found


def link_in(message: EmailMessage, base_url: str) -> str:
    """The first link to the web app in the mail's plain-text body."""
    body = message.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    for word in text.split():
        if word.startswith(base_url + "/l/"):
            return word
    raise AssertionError(f"no link to {base_url} in:\n{text}")
