"""The staff pages in a real headless Chromium (Debian's, driven by Playwright), served by a real uvicorn
on a loopback port over a SQLite database: sign in, the board's filters, a request taken from received
to acknowledged through the forms, a refusal with its missing items, a stale form. Screenshots are
saved under the test's tmp dir (``screens/``) and, with LDFLOW_SCREENSHOTS=DIR, copied there."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.loader import load_file
from flows import bootstrap
from flows.bootstrap import App
from flows.settings import Settings
from tests.builders import ACTOR, drive_to, intake_data
from tests.e2e.web_support import chromium, free_port, serve
from tests.web_support import CHEAP, PASSWORD

CHROMIUM = "/usr/bin/chromium"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PARTNER, ADMIN = "pat.partner@northwind.example", "ada.admin@northwind.example"
SPONSOR = "dana.reyes@northwind.example"

if not Path(CHROMIUM).exists():
    if os.environ.get("LDFLOW_TEST_BROWSER") == "1":
        raise RuntimeError(f"LDFLOW_TEST_BROWSER=1 but {CHROMIUM} is missing (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} is missing: the browser tests need Debian's chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, App, Path]]:
    from flows.web.app import create_app

    home = tmp_path_factory.mktemp("web-home")
    app = bootstrap.build(Settings(home=home))
    app.accounts.hasher = CHEAP
    app.accounts.add(PARTNER, "Pat Partner", "partner", PASSWORD)
    app.accounts.add(ADMIN, "Ada Admin", "admin", PASSWORD)
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


def _page(browser: Any, width: int = 1280) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/")
    assert "/sign-in" in page.url
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form[action='/sign-in'] button")
    page.wait_for_url(f"{base}/")


def _sign_out(page: Any) -> None:
    page.click("form[action='/sign-out'] button")
    page.wait_for_url("**/sign-in")


def _act(page: Any, command: str, fields: dict[str, str] | None = None, *,
         select: dict[str, str] | None = None) -> None:
    """Open an action's form, fill it and send it."""
    box = page.locator(f"#action-{command}")
    if box.get_attribute("open") is None:
        box.locator("summary").click()
    for name, value in (fields or {}).items():
        box.locator(f"[name='{name}']").fill(value)
    for name, value in (select or {}).items():
        box.locator(f"select[name='{name}']").select_option(value)
    with page.expect_navigation():
        box.locator("button[type=submit]").click()


def _text(path: str) -> str:
    return (EXAMPLES / path).read_text()


def _state(page: Any) -> str:
    return str(page.locator(".request-head .state").inner_text())


def test_a_request_from_received_to_acknowledged_in_the_browser(served: tuple[str, App, Path], browser: Any) -> None:
    base, app, shots = served
    data, _ = load_file(str(EXAMPLES / "intake.yaml"))
    rid = app.service.submit(data, ACTOR).id
    page = _page(browser)
    page.goto(f"{base}/")
    page.screenshot(path=str(shots / "01-sign-in.png"))
    _sign_in(page, base, PARTNER)
    page.click(f"article[data-id='{rid}'] h3 a")
    page.wait_for_url(f"{base}/requests/{rid}")
    assert _state(page) == "received"

    # a refusal: diagnose with the empty skeleton lists every missing item, nothing changes
    _act(page, "diagnose")
    failure = page.locator("#action-diagnose .failure")
    assert "cannot diagnose a received request" in failure.inner_text()
    assert failure.locator("li").count() >= 5
    page.screenshot(path=str(shots / "02-refusal.png"), full_page=True)
    assert _state(page) == "received"

    _act(page, "diagnose", {"yaml": _text("diagnosis.yaml")})
    assert _state(page) == "diagnosed" and "Done: diagnose" in page.inner_text("main")
    _act(page, "draft_plan", {"yaml": _text("plan.yaml")})
    # the partner is not the sponsor: refused, with the words of the CLI
    _act(page, "approve_plan")
    assert f"the approver's own approval: {PARTNER} is not {SPONSOR}" in page.inner_text("#action-approve_plan")
    _sign_out(page)

    # an admin records the sponsor's approval on their behalf, with a reason
    _sign_in(page, base, ADMIN)
    page.goto(f"{base}/requests/{rid}")
    _act(page, "approve_plan", {"comment": "Agreed in the steering group.",
                                "reason": "Dana approved in the steering group; her mail is down."})
    assert f"recorded on their behalf by the admin {ADMIN}" in page.inner_text("main")
    _sign_out(page)
    _sign_in(page, base, PARTNER)
    page.goto(f"{base}/requests/{rid}")

    _act(page, "design", {"yaml": _text("design.yaml")})
    assert _state(page) == "designed"
    _act(page, "deliver", {"start_date": "2026-11-10", "end_date": "2026-11-11", "audience_reached": "42",
                           "format": "In-person practice labs"})
    assert _state(page) == "delivered"
    for checkpoint, value in (("reaction:P1D", "88"), ("discovery:P30D", "52"), ("discovery:P90D", "74"),
                              ("win-rate:P90D", "22.5")):
        _act(page, "record_result", {"value": value, "note": "from the browser",
                                     "early_reason": "the walk records ahead of the due date"},
             select={"checkpoint": f"{rid}:{checkpoint}"})
        assert "Done: record result" in page.inner_text("main")
    _act(page, "measure")
    assert _state(page) == "measured"
    _act(page, "acknowledge", {"yaml": _text("acknowledgement.yaml")})
    assert _state(page) == "acknowledged"
    page.screenshot(path=str(shots / "03-request-1280.png"), full_page=True)
    history = page.inner_text("ol.timeline")
    assert f"by {PARTNER} (via web)" in history and "acknowledged (measured → acknowledged)" in history
    r = app.service.show(rid)
    assert r.state.value == "acknowledged" and r.plan_approval_recorded_by == ADMIN
    narrow = _page(browser, 390)
    _sign_in(narrow, base, PARTNER)
    narrow.goto(f"{base}/requests/{rid}")
    narrow.screenshot(path=str(shots / "04-request-390.png"), full_page=True)
    width = narrow.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the request page is {width} px wide on a 390 px phone"


def test_the_board_and_its_filters(served: tuple[str, App, Path], browser: Any) -> None:
    base, app, shots = served
    s = app.service
    ids = {name: s.submit(intake_data(title=title, sponsor_email=sponsor), ACTOR).id
           for name, title, sponsor in (("a", "Objection handling for renewals", "ann@northwind.example"),
                                        ("b", "Expense policy refresher", "bo@northwind.example"),
                                        ("c", "<script>alert('board')</script>", "bo@northwind.example"))}
    for state, path in (("diagnosed", "design"), ("redirected", "redirect"), ("designed", "design"),
                        ("delivered", "design"), ("measured", "design"), ("declined", "design")):
        drive_to(s, state, path=path, intake=intake_data(title=f"Coaching request now {state}"))
    page = _page(browser)
    _sign_in(page, base, PARTNER)
    page.screenshot(path=str(shots / "05-board-1280.png"), full_page=True)
    # every column fits at 1280 px: no horizontal scroll of the page or of the columns
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate("(() => { const c = document.querySelector('.columns'); "
                         "return c.scrollWidth <= c.clientWidth; })()")
    assert page.locator("section.column.closed li").count() == 3
    assert page.locator("script:has-text('board')").count() == 0
    assert "<script>alert('board')</script>" in page.inner_text(f"article[data-id='{ids['c']}'] h3")
    page.fill("#f-q", "expense")
    with page.expect_navigation():
        page.click(".filters button")
    cards = page.locator("article.card")
    assert cards.count() == 1 and cards.get_attribute("data-id") == str(ids["b"])
    page.click("text=Clear")
    page.wait_for_url(f"{base}/")
    page.fill("#f-sponsor", "bo@northwind.example")
    with page.expect_navigation():
        page.click(".filters button")
    shown = {page.locator("article.card").nth(i).get_attribute("data-id")
             for i in range(page.locator("article.card").count())}
    assert shown == {str(ids["b"]), str(ids["c"])}
    assert "Requests sponsored by bo@northwind.example" in page.inner_text("h1")
    page.goto(f"{base}/")
    page.select_option("#f-state", "acknowledged")
    with page.expect_navigation():
        page.click(".filters button")
    assert page.locator("section.column").count() == 1
    phone = _page(browser, 390)
    _sign_in(phone, base, PARTNER)
    phone.screenshot(path=str(shots / "06-board-390.png"), full_page=True)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the board is {width} px wide on a 390 px phone"


def test_a_stale_form_shows_the_conflict(served: tuple[str, App, Path], browser: Any) -> None:
    base, app, shots = served
    rid = app.service.submit(intake_data(title="Stale form check"), ACTOR).id
    page = _page(browser)
    _sign_in(page, base, PARTNER)
    page.goto(f"{base}/requests/{rid}")
    version = app.service.show(rid).version
    app.service.add_note(rid, "Someone else added this meanwhile.", ACTOR)  # the page is now stale
    _act(page, "add_note", {"text": "My note, written on the old page."})
    box = page.locator("#action-add_note .failure")
    assert "Conflict:" in box.inner_text() and f"version {version + 1}" in box.inner_text()
    page.screenshot(path=str(shots / "07-stale.png"), full_page=True)
    notes = [r for r in app.service.history(rid) if r.type == "note_added"]
    assert len(notes) == 1
    _act(page, "add_note", {"text": "My note, sent again on the current version."})
    assert "Done: add note" in page.inner_text("main")
