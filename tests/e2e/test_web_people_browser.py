"""The people outside L&D in a real browser (Debian's Chromium through Playwright, the app served by
uvicorn on loopback, SQLite, mails written as .eml files to the outbox folder): a requester fills in
the intake form (a vague verb flagged as they type, a bad address named next to its field) and
follows the status link from the acknowledgement; a sponsor approves the plan by the link in the
real .eml; a respondent answers a survey and an owner records a result by theirs. Screenshots are
saved under the test's tmp dir (``screens/``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.ports import ListFilter
from flows import bootstrap
from flows.clock import FixedClock
from flows.settings import Settings
from flows.steps import send_outbox
from flows.web.app import create_app
from tests.builders import T0, diagnosis_data, drive_to, intake_data, plan_data
from tests.e2e.web_support import chromium, free_port, link_in, mails, require_browser, serve


@dataclass
class Site:
    app: bootstrap.App
    clock: FixedClock
    base: str
    page: Any
    screens: Path

    def shot(self, name: str) -> Path:
        path = self.screens / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def send(self) -> None:
        summary = send_outbox(self.app)
        assert not summary.errors, summary.errors


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    require_browser()
    port = free_port()
    clock = FixedClock(T0)
    settings = Settings(home=tmp_path / "home", base_url=f"http://127.0.0.1:{port}")
    app = bootstrap.build(settings, clock=clock, sources=lambda: [])
    screens = tmp_path / "screens"
    screens.mkdir()
    try:
        with serve(create_app(app), port) as base, chromium() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield Site(app, clock, base, page, screens)
            context.close()
    finally:
        app.close()


def test_a_requester_asks_on_the_form_and_follows_the_status_link(site: Site) -> None:
    from playwright.sync_api import expect

    page = site.page
    page.goto(site.base + "/ask")
    page.fill("#title", "Objection handling for account executives")
    page.fill("#requested_solution", "A half-day workshop on handling price objections.")
    page.fill("#requester-name", "Rita Requester")
    page.fill("#requester-email", "rita@example")  # no domain: named next to the field
    page.fill("#business_goal-metric", "win rate")
    page.fill("#business_goal-unit", "%")
    page.fill("#business_goal-current_value", "18")
    page.fill("#business_goal-target_value", "25")
    page.fill("#business_goal-target_date", "2026-12-31")
    page.locator("#behaviour_change").press_sequentially("understand our pricing model", delay=15)
    expect(page.locator("#behaviour-check")).to_contain_text("vague verb")
    expect(page.locator("#behaviour-check")).to_contain_text("understand")
    site.shot("01-ask-vague-verb-flagged")
    page.fill("#behaviour_change", "ask two discovery questions before quoting a price")
    expect(page.locator("#behaviour-check")).to_contain_text("Each line says what people will do")
    page.fill("#audience-description", "account executives")
    page.fill("#audience-size", "40")
    page.fill("#success_signs", "More deals closed at list price.")
    page.click("text=Send my request")
    expect(page.locator("#requester-email-error")).to_be_visible()
    expect(page.locator("#requester-email-error")).to_contain_text("e-mail address")
    assert page.input_value("#title") == "Objection handling for account executives"  # kept
    site.shot("02-ask-bad-address")
    assert site.app.service.list(ListFilter())[1] == 0
    page.fill("#requester-email", "rita@example.org")
    page.click("text=Send my request")
    expect(page.locator("h1")).to_contain_text("Thank you, Rita Requester")
    site.shot("03-ask-received")
    site.send()
    [ack] = mails(site.app.settings.outbox_dir, "intake_acknowledgement")
    page.goto(link_in(ack, site.base))
    expect(page.locator("body")).to_contain_text("We have received your request.")
    expect(page.locator("body")).to_contain_text("What happens next")
    site.shot("04-status-page")


def test_a_sponsor_approves_the_plan_by_the_link_in_the_eml(site: Site) -> None:
    from playwright.sync_api import expect

    service = site.app.service
    rid = service.submit(intake_data(), "ops").id
    assert rid is not None
    service.diagnose(rid, diagnosis_data(), "ops")
    service.draft_plan(rid, plan_data(), "ops")
    site.send()
    [mail] = mails(site.app.settings.outbox_dir, "plan_approval_request")
    url = link_in(mail, site.base)
    page = site.page
    page.goto(url)
    expect(page.locator("h1")).to_contain_text("Objection handling course")
    expect(page.locator(".plan")).to_contain_text("first-call resolution")
    site.shot("10-approve-page")
    page.fill("#comment", "Looks right; go ahead.")
    page.click("text=Approve the plan")
    expect(page.locator("[role=status]")).to_contain_text("the measurement plan is approved")
    site.shot("11-approved")
    request = service.show(rid)
    assert request.plan_approved_by == "sam.sponsor@example.org"
    last = service.history(rid)[-1]
    assert (last.actor, last.payload["via"]) == ("sam.sponsor@example.org", "link")
    response = page.goto(url)
    assert response is not None and response.status == 410
    expect(page.locator("h1")).to_contain_text("This link has been used")
    site.shot("12-used-link")


def test_a_respondent_answers_and_an_owner_records_a_result_by_their_links(site: Site) -> None:
    from playwright.sync_api import expect

    service = site.app.service
    rid = drive_to(service, "delivered").id
    first = min(c.due_at for c in service.show(rid).checkpoints)
    site.clock.set(first + timedelta(hours=1))
    assert service.send_due_checkpoints("pipeline", timedelta(days=14))["sent"] >= 1
    site.send()
    page = site.page
    survey = link_in(mails(site.app.settings.outbox_dir, "survey")[0], site.base)
    page.goto(survey)
    page.fill("#value", "4")
    page.fill("#note", "The checklist helps.")
    site.shot("20-survey-page")
    page.click("text=Send my answer")
    expect(page.locator("[role=status]")).to_contain_text("your answer is recorded")
    page.goto(survey)
    expect(page.locator("button[type=submit]")).to_have_text("Change my answer")
    site.shot("21-survey-answered")
    later = next(c for c in service.show(rid).checkpoints if c.key.endswith("m1:P30D"))  # the owner's own
    site.clock.set(later.due_at + timedelta(hours=1))
    assert service.send_due_checkpoints("pipeline", timedelta(days=14))["sent"] == 1
    site.send()
    [reminder] = [m for m in mails(site.app.settings.outbox_dir, "checkpoint_reminder")
                  if str(m["X-Ldflow-Key"]).endswith("m1:P30D")]
    page.goto(link_in(reminder, site.base))
    page.fill("#value", "70")
    page.fill("#source", "CRM weekly report")
    page.fill("#measured_on", later.due_at.date().isoformat())
    site.shot("22-result-page")
    page.click("text=Record the result")
    expect(page.locator("[role=status]")).to_contain_text("the result is recorded")
    site.shot("23-result-recorded")
    history = service.history(rid)
    done = [h for h in history if h.payload.get("via") == "link"]
    # the respondent's answer (a group survey: answered, then closed with the one answer) and the owner's result
    assert [h.type for h in done] == ["survey_answered", "survey_closed", "result_recorded"]
