"""Rendering notifications: every template, multipart structure, stable Message-ID, overrides."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

import states.notifications as notifications_module
from connectors.email.render import (
    PACKAGED_TEMPLATES,
    TEMPLATE_NAMES,
    TemplateContextError,
    message_id_for,
    render,
)
from states.notifications import CalendarItem, Notification, Recipient

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BASE = {"request": {"id": 3, "title": "Negotiation skills for account managers", "state": "received"},
        "requester": {"name": "Dana Smith", "email": "dana@example.org"},
        "sponsor": {"name": "Sam Lee", "email": "sam@example.org"}}
ITEM = {"id": "m1", "framework": "kirkpatrick", "level": 3, "metric": "Discovery questions per call",
        "unit": "questions", "baseline": {"value": 1.0, "date": "2026-10-01", "source": "call review"},
        "target": {"value": 3.0, "date": "2027-03-01"}, "instrument": "observation", "respondent": "manager",
        "checkpoints": ["P30D", "P90D"], "owner": {"name": "Olu", "email": "olu@example.org", "role": ""},
        "value_per_unit": None}
CHECKPOINT = {"key": "3:m1:P30D", "offset": "P30D", "due_at": "2027-01-01T09:00:00+00:00"}
# The contexts the domain (states/request.py) fills in today.
DOMAIN_CONTEXTS: dict[str, dict[str, Any]] = {
    "intake_acknowledgement": {"requested_solution": "A two-day negotiation course"},
    "diagnosis_summary": {
        "recommendations": [{"path": "job_aid", "reasons": ["the steps are rarely used"]},
                            {"path": "design", "reasons": ["they never could do it"]}],
        "observable_actions": ["ask three discovery questions before quoting"],
        "business_goal": {"metric": "win rate", "unit": "%", "current_value": 20.0, "target_value": 30.0,
                          "target_date": "2027-06-30", "data_source": "CRM"},
        "summary": "Mostly a practice gap."},
    "plan_approval_request": {"plan": {"items": [ITEM], "costs": {"program_cost": 12000.0, "currency": "EUR"}}},
    "survey": {"checkpoint": CHECKPOINT, "item": ITEM},
    "survey_reminder": {"checkpoint": CHECKPOINT, "item": ITEM, "reminder_number": 1},
    "checkpoint_reminder": {"checkpoint": CHECKPOINT, "item": ITEM},
    "results_report": {
        "acknowledgement": {"recap": ["Practice beats slides"],
                            "action_plan": [{"step": "Monthly call reviews", "owner": "Sam", "due": "2027-07-01"}],
                            "contributions": [{"stakeholder": "Olu", "contribution": "ran the observations"}],
                            "message": ""},
        "results": [{"item_id": "m1", "metric": "Discovery questions per call", "unit": "questions",
                     "baseline": 1.0, "target": 3.0, "result": 2.5, "outcome": "partly_met"}],
        "roi": {"benefits": 30000.0, "costs": 12000.0, "currency": "EUR", "benefit_cost_ratio": 2.5,
                "roi_percent": 150.0}},
    "delivery_invite": {"location": "Room 4", "delivery": {"format": "workshop"}},
    "request_cancelled": {"reason": "the team was reorganised"},
}
# The least each template needs.
MINIMAL: dict[str, dict[str, Any]] = {
    "intake_acknowledgement": {},
    "diagnosis_summary": {"recommendations": []},
    "plan_approval_request": {"plan": {"items": []}},
    "survey": {},
    "survey_reminder": {},
    "checkpoint_reminder": {},
    "results_report": {"acknowledgement": {}},
    "delivery_invite": {},
    "request_cancelled": {},
}
ORG = Recipient("L&D team", "ld-team@example.org")
EVENT = CalendarItem(uid="ldflow-3-delivery@ldflow", kind="event", summary="Negotiation workshop",
                     start="2026-12-01T09:00:00+00:00", end="2026-12-01T12:00:00+00:00", organizer=ORG,
                     attendees=(Recipient("Dana Smith", "dana@example.org"),))


def notification(template: str, context: dict[str, Any], *, key: str | None = None,
                 calendar: CalendarItem | None = None, subject: str = "About your request") -> Notification:
    return Notification(key=key or f"3:{template}", request_id=3, template=template,
                        to=(Recipient("Dana Smith", "dana@example.org"), Recipient("Sam Lee", "sam@example.org")),
                        subject=subject, context=context, calendar=calendar)


def do_render(n: Notification, **kwargs: Any) -> EmailMessage:
    return render(n, "ld-team@example.org", "ldflow.example.org", now=NOW, **kwargs)


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_every_template_named_by_the_domain_exists() -> None:
    doc = notifications_module.Notification.__doc__ or ""
    named = set(re.findall(r"``([a-z_]+)``", doc.split("``context``")[0])) - {"key", "template"}
    assert named <= set(TEMPLATE_NAMES)
    for name in TEMPLATE_NAMES:
        assert (PACKAGED_TEMPLATES / f"{name}.txt.j2").is_file()
        assert (PACKAGED_TEMPLATES / f"{name}.html.j2").is_file()


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_renders_with_the_domain_context(template: str) -> None:
    calendar = EVENT if template in ("delivery_invite", "request_cancelled") else None
    if template == "request_cancelled":
        calendar = CalendarItem(**{**EVENT.__dict__, "method": "CANCEL"})
    message = do_render(notification(template, {**BASE, **DOMAIN_CONTEXTS[template]}, calendar=calendar))
    text, html = bodies(message)
    assert "Negotiation skills for account managers" in text and "Negotiation skills for account managers" in html
    assert "Hello Dana," in text and "[ldflow #3]" in text
    assert not re.search(r"\bNone\b(?! of this)", text) and "Undefined" not in text
    assert html.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_tolerates_missing_optional_keys(template: str) -> None:
    message = do_render(notification(template, {"request": {"title": "Coaching"}, **MINIMAL[template]}))
    text, _ = bodies(message)
    assert "Coaching" in text


def test_missing_required_key_is_a_clear_error() -> None:
    with pytest.raises(TemplateContextError, match="plan"):
        do_render(notification("plan_approval_request", {"request": {"title": "Coaching"}}))
    with pytest.raises(TemplateContextError, match="request_title"):
        do_render(notification("request_cancelled", {}))
    with pytest.raises(TemplateContextError, match="no template"):
        do_render(notification("unknown_template", BASE))
    with pytest.raises(TemplateContextError, match="invalid template name"):
        do_render(notification("../../etc/passwd", BASE))


def test_intake_acknowledgement_asks_the_five_partner_questions() -> None:
    text, html = bodies(do_render(notification("intake_acknowledgement", BASE)))
    for phrase in ("Thank you for reaching out", "What business result should improve",
                   "What should people do differently", "Who are the people involved",
                   "What has been tried so far", "How will success show"):
        assert phrase in text and phrase in html
    text, _ = bodies(do_render(notification("intake_acknowledgement",
                                            {**BASE, "questions_answered": ["tried", "audience"]})))
    assert "What has been tried" not in text and "3. How will success show" in text


def test_results_report_has_the_three_touchpoints() -> None:
    text, html = bodies(do_render(notification("results_report", {**BASE, **DOMAIN_CONTEXTS["results_report"]})))
    assert "1. What we take away" in text and "Practice beats slides" in text
    assert "2. Our action plan" in text and "Monthly call reviews - owner: Sam" in text
    assert "3. Thank you" in text and "Olu: ran the observations" in text
    assert "Benefit-cost ratio 2.5" in text and "partly there" in html


def test_plan_approval_tells_how_to_approve() -> None:
    text, _ = bodies(do_render(notification("plan_approval_request",
                                            {**BASE, **DOMAIN_CONTEXTS["plan_approval_request"]})))
    assert 'reply with the word "approve" on the first line' in text
    assert "Kirkpatrick level 3" in text and "30 days, 90 days after delivery" in text


def test_html_is_escaped_text_is_not() -> None:
    ctx = {**BASE, "request": {"title": "<script>alert(1)</script> & co"}}
    text, html = bodies(do_render(notification("request_cancelled", ctx)))
    assert "<script>alert(1)</script> & co" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_structure_headers_and_stable_message_id() -> None:
    n = notification("request_cancelled", BASE, key="3:request_cancelled")
    first, second = do_render(n), render(n, "ld-team@example.org", "ldflow.example.org")
    assert first["Message-ID"] == second["Message-ID"] == message_id_for("3:request_cancelled",
                                                                          "ldflow.example.org")
    assert re.fullmatch(r"<[0-9a-f]{32}@ldflow\.example\.org>", str(first["Message-ID"]))
    assert message_id_for("3:a", "x.org") != message_id_for("3:b", "x.org")
    assert first.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in first.iter_parts()] == ["text/plain", "text/html"]
    assert first["Subject"] == "[ldflow #3] About your request"
    assert first["X-Ldflow-Request"] == "3" and first["X-Ldflow-Key"] == "3:request_cancelled"
    assert first["From"] == "Learning & Development <ld-team@example.org>"
    tagged = do_render(notification("request_cancelled", BASE, subject="Re: [ldflow #3] About"))
    assert tagged["Subject"] == "Re: [ldflow #3] About"


def test_duplicate_recipients_appear_once() -> None:
    n = Notification(key="k", request_id=3, template="request_cancelled",
                     to=(Recipient("Dana", "dana@example.org"), Recipient("Dana S", "DANA@example.org")),
                     subject="s", context=BASE)
    assert len(do_render(n)["To"].addresses) == 1


def test_thread_header_when_asked() -> None:
    msg = do_render(notification("request_cancelled", {**BASE, "in_reply_to_key": "3:intake_acknowledgement"}))
    parent = message_id_for("3:intake_acknowledgement", "ldflow.example.org")
    assert msg["In-Reply-To"] == parent and msg["References"] == parent


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_calendar_invite_parts(method: str) -> None:
    cal = CalendarItem(**{**EVENT.__dict__, "method": method})
    msg = do_render(notification("delivery_invite", BASE, calendar=cal))
    parsed = message_from_bytes(msg.as_bytes(), policy=default_policy)
    assert parsed.get_content_type() == "multipart/mixed"
    alternative = next(parsed.iter_parts())
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html", "text/calendar"]
    calendar_part = list(alternative.iter_parts())[2]
    assert calendar_part.get_param("method") == method
    ics = calendar_part.get_content()
    assert f"METHOD:{method}" in ics and "UID:ldflow-3-delivery@ldflow" in ics
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == ("invite.ics" if method == "REQUEST" else "cancel.ics")
    assert b"UID:ldflow-3-delivery@ldflow" in attachment.get_content()


def test_non_ascii_content_is_7bit_safe_on_the_wire() -> None:
    ctx = {**BASE, "request": {"title": "Zoë’s “café” coaching ✓"}, "reason": "réorganisation"}
    n = Notification(key="k", request_id=3, template="request_cancelled", to=(Recipient("Zoë Ñandú", "z@example.org"),),
                     subject="Résumé ✓", context=ctx)
    raw = do_render(n).as_bytes()
    assert raw.isascii()
    parsed = message_from_bytes(raw, policy=default_policy)
    assert parsed["Subject"] == "[ldflow #3] Résumé ✓"
    assert "Zoë’s “café” coaching ✓" in str(parsed.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def test_templates_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "request_cancelled.txt.j2").write_text("Custom: {{ request_title }} is off.\n")
    monkeypatch.setenv("LDFLOW_TEMPLATES_DIR", str(tmp_path))
    text, html = bodies(do_render(notification("request_cancelled", BASE)))
    assert text.strip() == "Custom: Negotiation skills for account managers is off."
    assert "has been cancelled" in html  # not overridden: the packaged default
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    (explicit / "request_cancelled.html.j2").write_text("<p>{{ request_title }}</p>")
    _, html = bodies(do_render(notification("request_cancelled", BASE), templates_dir=explicit))
    assert html.strip() == "<p>Negotiation skills for account managers</p>"
