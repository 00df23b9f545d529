"""The public intake form (/ask) on the in-memory fakes: a request received through Service.submit,
its acknowledgement queued with the status link; bad input named next to its field with nothing
written; the spam limits (rate, honeypot, size) and the form token; vague verbs flagged live."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.ports import ListFilter
from connectors.testing import InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.clock import FixedClock
from flows.settings import Settings
from flows.web.app import create_app
from flows.web.intake import RateLimit
from tests.builders import T0
from tests.links_support import form_token, mail_links

ASK = {"title": "Objection handling", "requested_solution": "A workshop on handling price objections.",
       "requester.name": "Rita Requester", "requester.email": "rita@example.org",
       "business_goal.metric": "win rate", "business_goal.unit": "%", "business_goal.current_value": "18",
       "business_goal.target_value": "25", "business_goal.target_date": "2026-12-31",
       "business_goal.data_source": "CRM", "behaviour_change": "ask two discovery questions before quoting\n",
       "audience.description": "account executives", "audience.size": "40",
       "tried_already": "a slide deck", "success_signs": "more deals closed at list price"}


@pytest.fixture
def app(tmp_path: Path) -> bootstrap.App:
    uow = InMemoryUnitOfWork()
    return bootstrap.compose(Settings(home=tmp_path, intake_per_hour=3), store=uow.store, uow=uow,
                             clock=FixedClock(T0), sender=InMemorySender(), sources=lambda: [])


@pytest.fixture
def client(app: bootstrap.App) -> TestClient:
    return TestClient(create_app(app))


def _post(client: TestClient, data: dict[str, str]) -> object:
    token = form_token(client.get("/ask").text)
    return client.post("/ask", data={**data, "form_token": token})


def test_a_request_asked_on_the_form_is_received_and_acknowledged_with_its_status_link(
        app: bootstrap.App, client: TestClient) -> None:
    page = client.get("/ask")
    assert page.status_code == 200 and 'hx-get="/ask/check"' in page.text
    done = _post(client, ASK)
    assert done.status_code == 201, done.text  # type: ignore[attr-defined]
    [summary], total = app.service.list(ListFilter())
    request = app.service.show(summary.id)
    assert request.state.value == "received"
    assert request.intake.sponsor.email == "rita@example.org"  # no sponsor given: the requester
    assert request.intake.behaviour_change == ["ask two discovery questions before quoting"]
    assert request.intake.business_goal.target_value == 25.0 and request.intake.success_signs
    first = app.service.history(request.id)[0]
    assert (first.type, first.actor, first.payload["via"]) == ("submitted", "rita@example.org", "web")
    [status] = mail_links(app, "intake_acknowledgement", request.id)
    assert status in done.text  # type: ignore[attr-defined]
    assert client.get(status).status_code == 200


@pytest.mark.parametrize(("field", "value", "words"), [
    ("requester.email", "not-an-address", "e-mail"),
    ("business_goal.target_value", "a lot", "number"),
    ("business_goal.target_date", "next year", "date"),
    ("behaviour_change", "understand the pricing model", "vague verb"),
    ("title", "", "at least 3"),
])
def test_bad_input_is_named_next_to_its_field_and_nothing_is_written(
        app: bootstrap.App, client: TestClient, field: str, value: str, words: str) -> None:
    page = _post(client, {**ASK, field: value})
    assert page.status_code == 400  # type: ignore[attr-defined]
    html = page.text  # type: ignore[attr-defined]
    error_id = field.replace(".", "-") + "-error"
    assert f'id="{error_id}"' in html, html
    message = html.split(f'id="{error_id}">', 1)[1].split("</p>", 1)[0]
    assert words in message
    assert value in html or not value  # what they typed is kept
    assert html.count('class="error field-error"') == 1  # the defaulted sponsor repeats no error
    assert app.service.list(ListFilter())[1] == 0


def test_vague_verbs_are_flagged_as_they_type(client: TestClient) -> None:
    flagged = client.get("/ask/check", params={"behaviour_change": "understand the product\ncall back within a day"})
    assert flagged.status_code == 200
    assert "understand" in flagged.text and "vague verb" in flagged.text
    assert "call back within a day" not in flagged.text
    clean = client.get("/ask/check", params={"behaviour_change": "call back within a day"})
    assert "vague" not in clean.text and "Each line says what people will do" in clean.text


def test_spam_limits_write_nothing(app: bootstrap.App, client: TestClient) -> None:
    assert _post(client, {**ASK, "website": "http://spam.example"}).status_code == 400  # type: ignore[attr-defined]
    assert client.post("/ask", data={**ASK, "form_token": "forged"}).status_code == 403
    big = client.post("/ask", data={**ASK, "requested_solution": "x" * 40_000,
                                    "form_token": form_token(client.get("/ask").text)})
    assert big.status_code == 413
    assert app.service.list(ListFilter())[1] == 0
    assert _post(client, ASK).status_code == 201  # type: ignore[attr-defined]  # the third post counted
    limited = _post(client, ASK)  # the fourth from this address within the hour (the limit is 3)
    assert limited.status_code == 429  # type: ignore[attr-defined]
    assert app.service.list(ListFilter())[1] == 1


def test_the_rate_limit_is_per_address_and_forgets_after_an_hour() -> None:
    limit = RateLimit(2)
    assert limit.allow("a", 0) and limit.allow("a", 1) and not limit.allow("a", 2)
    assert limit.allow("b", 2)
    assert limit.allow("a", 3601)
