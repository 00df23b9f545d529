"""The analytics dashboard and a sponsor's page in a real headless Chromium, served by a real uvicorn over
SQLite holding the hand-built history (tests/analytics_history.py). Screenshots under the test's tmp dir
(``screens/``) and, with LDFLOW_SCREENSHOTS=DIR, copied there (docs/screenshots/ for the README)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.settings import Settings
from tests import analytics_history
from tests.analytics_history import SAM
from tests.builders import T0
from tests.e2e.test_web_browser import _page
from tests.e2e.web_support import chromium, free_port, serve
from tests.web_support import CHEAP, PASSWORD

VIEWER = "vic.viewer@example.org"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, App, Path]]:
    from flows.web.app import create_app

    home = tmp_path_factory.mktemp("analytics-home")
    clock = FixedClock(T0)
    app = bootstrap.build(Settings(home=home), clock=clock)
    analytics_history.build(app.service, clock)
    app.accounts.hasher = CHEAP
    app.accounts.add(VIEWER, "Vic Viewer", "viewer", PASSWORD)
    shots = tmp_path_factory.mktemp("screens")
    with serve(create_app(app), free_port()) as base:
        yield base, app, shots
    app.close()
    keep = os.environ.get("LDFLOW_SCREENSHOTS")
    if keep:
        shutil.copytree(shots, keep, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_the_dashboard_and_a_sponsors_page_in_the_browser(served: tuple[str, App, Path], browser: Any) -> None:
    base, _app, shots = served
    page = _page(browser)
    page.goto(f"{base}/analytics")
    page.fill("#email", VIEWER)
    page.fill("#password", PASSWORD)
    page.click("form[action='/sign-in'] button")
    page.wait_for_url(f"{base}/analytics")
    assert page.locator("h1").inner_text() == "Pipeline analytics"
    charts = page.locator("svg.chart")
    assert charts.count() >= 4
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 20  # drawn, not collapsed
    assert "Redirect rate: 33.3%" in page.locator("#redirects h2").inner_text()
    page.screenshot(path=str(shots / "analytics-1280.png"), full_page=True)
    page.select_option("#a-type", "design")
    with page.expect_navigation():
        page.click(".filters button[type=submit]")
    assert "type=design" in page.url and "2 requests" in page.locator(".board-head").inner_text()
    page.goto(f"{base}/sponsors/{SAM}")
    assert "Requests sponsored by" in page.locator("h1").inner_text()
    link = page.locator(".share-link").input_value()
    page.screenshot(path=str(shots / "sponsor-1280.png"), full_page=True)
    shared = _page(browser)
    assert "/l/sponsor/0/" in link
    shared.goto(f"{base}/l/{link.split('/l/', 1)[1]}")  # the link names LDFLOW_BASE_URL; this server's port
    assert "read-only" in shared.locator(".board-head").inner_text()
    assert shared.locator("form").count() == 0
    shared.screenshot(path=str(shots / "sponsor-link-1280.png"), full_page=True)
