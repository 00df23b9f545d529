"""Rendering notifications: every template, multipart structure, stable Message-ID, overrides."""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from connectors.email.render import (
    PACKAGED_TEMPLATES,
    TEMPLATE_NAMES,
    TemplateContextError,
    message_id_for,
    render,
)
from states import companions, followups, responses, stalls
from states.models import (
    Acknowledgement,
    CheckpointResult,
    Delivery,
    DesignBrief,
    Diagnosis,
    Intake,
    MeasurementPlan,
    PlanApproval,
    Reason,
    Redirect,
    SessionPlan,
)
from states.notifications import CalendarItem, Notification, Recipient
from states.request import TrainingRequest
from states.validation import parse
from tests.builders import (
    T0,
    ack_data,
    approval_data,
    brief_data,
    companion_data,
    delivery_data,
    diagnosis_data,
    emailed_steps,
    intake_data,
    plan_data,
    reason_data,
    redirect_data,
    result_data,
)

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
# A plain context for the rendering mechanics below (headers, escaping, overrides); what the domain
# really puts into each template's context comes from domain_notifications().
BASE = {"request": {"id": 3, "title": "Negotiation skills for account managers", "state": "received"},
        "requester": {"name": "Dana Smith", "email": "dana@example.org"},
        "sponsor": {"name": "Sam Lee", "email": "sam@example.org"}}
RESULTS = {"m1": 71.0, "m2": 4.5}  # per plan item of tests.builders.plan_data: partly met, met
SESSION = {"id": "lab-1", "title": "Objection handling lab", "start": "2026-04-07T09:00:00+02:00",
           "end": "2026-04-07T12:00:00+02:00", "location": "Room 4",
           "agenda": ["LAER warm-up", "role play on two lost calls"], "preparation": "Bring one call you lost."}


def _commit(request: TrainingRequest) -> list[Notification]:
    """What the store does on commit: collect the notifications (final keys), clear, bump the version."""
    taken = request.pending_notifications()
    request.clear_pending()
    request.version += 1
    return taken


@functools.cache
def domain_notifications() -> tuple[Notification, ...]:
    """Every notification the domain asks for: request 3 from intake to acknowledged (a session
    rescheduled, every checkpoint's survey, one reminder), request 4 cancelled with a session booked."""
    out: list[Notification] = []
    at = T0
    commands: list[tuple[str, type[Any], dict[str, Any]]] = [
        ("diagnose", Diagnosis, diagnosis_data()), ("draft_plan", MeasurementPlan, plan_data()),
        ("approve_plan", PlanApproval, approval_data()), ("design", DesignBrief, brief_data()),
        ("schedule_session", SessionPlan, SESSION),
        ("schedule_session", SessionPlan, {**SESSION, "start": "2026-04-08T09:00:00+02:00",
                                           "end": "2026-04-08T12:00:00+02:00"})]
    for request_id, last in ((3, "deliver"), (4, "cancel")):
        request = TrainingRequest.submit(parse(Intake, intake_data()), at)
        request.id = request_id  # assigned by the store on insert, before it collects the notifications
        out += _commit(request)
        for command, model, data in commands[:-1] if last == "cancel" else commands:
            getattr(request, command)(parse(model, data), at)
            out += _commit(request)
        if last == "cancel":
            request.cancel(parse(Reason, reason_data("the team was reorganised")), at)
            out += _commit(request)
            continue
        request.deliver(parse(Delivery, delivery_data()), at)
        out += _commit(request)
        for checkpoint in request.checkpoints:
            assert request.send_checkpoint(checkpoint.key, checkpoint.due_at, timedelta(days=14))
            out += _commit(request)
        first = request.checkpoints[0]
        assert request.remind_checkpoint(first.key, first.due_at + timedelta(days=3), timedelta(days=3), 2)
        out += _commit(request)
        # closed at the end of its response window (14 days after due; 7 after the last reminder at the earliest)
        assert stalls.flag_unanswered(request, first.key, first.due_at + timedelta(days=14), timedelta(days=7), 1)
        out += _commit(request)
        at = max(c.due_at for c in request.checkpoints) + timedelta(days=1)
        for checkpoint in request.checkpoints:
            value = RESULTS[checkpoint.item_id]
            if checkpoint.closed:
                continue
            request.record_result(checkpoint.key, parse(CheckpointResult, result_data(value)), at)
        request.measure(at)
        request.acknowledge(parse(Acknowledgement, ack_data()), at)
        out += _commit(request)
    return tuple(out) + _declined_and_redirected()


APPROVED: list[tuple[str, type[Any], dict[str, Any]]] = [
    ("diagnose", Diagnosis, diagnosis_data()), ("draft_plan", MeasurementPlan, plan_data()),
    ("approve_plan", PlanApproval, approval_data())]


def _declined_and_redirected() -> tuple[Notification, ...]:
    """Request 5 declined after its diagnosis; request 6 redirected to an owner."""
    out: list[Notification] = []
    for request_id, steps in ((5, APPROVED[:1]), (6, [*APPROVED, ("redirect", Redirect, redirect_data())])):
        request = TrainingRequest.submit(parse(Intake, intake_data()), T0)
        request.id = request_id
        _commit(request)
        for command, model, data in steps:
            getattr(request, command)(parse(model, data), T0)
            out += _commit(request)
        if request_id == 5:
            request.decline(parse(Reason, reason_data("the team is being merged into Support next quarter")), T0)
            out += _commit(request)
    request = TrainingRequest.submit(parse(Intake, intake_data()), T0)  # 7: the sponsor asks for changes
    request.id = 7
    _commit(request)
    for command, model, data in APPROVED[:2]:
        getattr(request, command)(parse(model, data), T0)
        _commit(request)
    responses.request_plan_changes(request, 1, request.intake.sponsor.email, "Add the churn rate.", T0)
    out += _commit(request)
    return tuple(out) + _mixed()


def _mixed() -> tuple[Notification, ...]:
    """Request 8: redirected with two companion pieces, measured, acknowledged with an emailed action
    step, then a follow-up pass after every date: each owner told, then reminded once."""
    out: list[Notification] = []
    request = TrainingRequest.submit(parse(Intake, intake_data()), T0)
    request.id = 8
    _commit(request)
    for command, model, data in [*APPROVED, ("redirect", Redirect, redirect_data())]:
        getattr(request, command)(parse(model, data), T0)
        _commit(request)
    for data in (companion_data(), companion_data(kind="design", what="a 30-minute practice",
                                                  owner={"name": "Bea Brown", "email": "bea.brown@example.org"})):
        companions.add(request, parse(companions.CompanionPiece, data), T0)
        out += _commit(request)
    request.deliver(parse(Delivery, delivery_data()), T0)
    _commit(request)
    at = max(c.due_at for c in request.checkpoints) + timedelta(days=1)
    for checkpoint in request.checkpoints:
        request.record_result(checkpoint.key, parse(CheckpointResult, result_data(RESULTS[checkpoint.item_id])), at)
    request.measure(at)
    request.acknowledge(parse(Acknowledgement, emailed_steps()), at)
    out += [n for n in _commit(request) if n.template != "results_report"]
    assert followups.remind(request, datetime(2028, 1, 2, 9, tzinfo=UTC), timedelta(days=3)) == 3
    out += _commit(request)
    assert followups.remind(request, datetime(2028, 1, 3, 9, tzinfo=UTC), timedelta(days=3)) == 0
    return tuple(out) + _too_few_answers()


def _too_few_answers() -> tuple[Notification, ...]:
    """Request 9: a survey of the requester and the sponsor that wants two answers gets one by the end of
    its window: missed."""
    from tests.builders import plan_item

    item = plan_item("m1", level=1, baseline=False, instrument="survey", respondent="stakeholder",
                     checkpoints=["P1D"], survey={"min_responses": 2})
    request = TrainingRequest.submit(parse(Intake, intake_data()), T0)
    request.id = 9
    _commit(request)
    for command, model, data in [APPROVED[0], ("draft_plan", MeasurementPlan, plan_data(items=[item])),
                                 APPROVED[2], ("design", DesignBrief, brief_data()),
                                 ("deliver", Delivery, delivery_data())]:
        getattr(request, command)(parse(model, data), T0)
        _commit(request)
    [c] = request.checkpoints
    assert request.send_checkpoint(c.key, c.due_at, timedelta(days=14))
    _commit(request)
    request.answer(c.key, request.intake.sponsor.email, 4.0, "", c.due_at + timedelta(days=1))
    _commit(request)
    assert stalls.flag_unanswered(request, c.key, c.due_at + timedelta(days=14), timedelta(days=7), 0)
    assert request.checkpoint(c.key).status.value == "missed"
    return tuple(_commit(request))


def domain(template: str) -> list[Notification]:
    found = [n for n in domain_notifications() if n.template == template]
    assert found, f"the domain never asks for {template}"
    return found


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
    "request_declined": {},
    "redirect_assigned": {},
    "plan_changes_requested": {"plan_version": 1, "comment": "Add churn.", "by": "pat@example.org"},
    "checkpoint_missed": {"item": {}, "checkpoint": {}},
    "companion_assigned": {"piece": {"what": "a decision card", "kind_label": "Job aid", "due": "2027-01-15"}},
    "companion_reminder": {"piece": {"what": "a decision card", "kind_label": "Job aid", "due": "2027-01-15"}},
    "action_step_assigned": {"step": {"step": "add LAER to onboarding"}},
    "action_step_reminder": {"step": {"step": "add LAER to onboarding", "due": "2027-01-15"}},
    "request_delivered": {},
    "checkpoint_needs_review": {"item": {}, "checkpoint": {}},
}


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


def test_every_domain_notification_names_a_packaged_template_with_a_json_context_and_its_own_key() -> None:
    """What ``Notification`` promises, checked on what the domain really sends."""
    notifications = domain_notifications()
    assert {n.template for n in notifications} == set(TEMPLATE_NAMES)  # none unknown, none unused
    for name in TEMPLATE_NAMES:
        assert (PACKAGED_TEMPLATES / f"{name}.txt.j2").is_file()
        assert (PACKAGED_TEMPLATES / f"{name}.html.j2").is_file()
    for n in notifications:
        assert json.loads(json.dumps(n.context)) == n.context, n.key  # the outbox stores it as JSON
        assert n.key.startswith(f"{n.request_id}:"), n.key
    keys = [n.key for n in notifications]
    assert len(keys) == len(set(keys))  # one outbox row and one Message-ID per message


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_renders_every_domain_notification(template: str) -> None:
    for n in domain(template):
        message = do_render(n)
        text, html = bodies(message)
        title = intake_data()["title"]
        assert title in text and title in html, n.key
        greeting = "team" if len({r.email.lower() for r in n.to}) > 1 else n.to[0].name.split()[0]
        assert f"Hello {greeting}," in text and f"[ldflow #{n.request_id}]" in text, n.key
        assert not re.search(r"\bNone\b(?! of this)", text) and "Undefined" not in text, n.key
        assert html.lstrip().startswith("<!DOCTYPE html>")
        has_calendar = any(part.get_content_type() == "text/calendar" for part in message.walk())
        assert has_calendar == (n.calendar is not None), n.key


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
    [report] = domain("results_report")
    text, html = bodies(do_render(report))
    ack = ack_data()
    assert "1. What we take away" in text and all(f"  - {line}" in text for line in ack["recap"])
    step = ack["action_plan"][0]
    assert "2. Our action plan" in text and f"{step['step']} - owner: {step['owner']}" in text
    thanks = ack["contributions"][0]
    assert "3. Thank you" in text and f"{thanks['stakeholder']}: {thanks['contribution']}" in text
    assert "first-call resolution: from 62% to 71% (target 75%: partly there)" in text
    assert "relevance rating: 4.5 on a 1–5 scale (target 4.2: target met)" in text
    roi = report.context["roi"]
    assert f"Benefit-cost ratio {roi['benefit_cost_ratio']}, return on investment {roi['roi_percent']}%" in text
    assert "partly there" in html


def test_plan_approval_tells_how_to_approve() -> None:
    text, _ = bodies(do_render(domain("plan_approval_request")[0]))
    assert 'reply with the word "approve" on the first line' in text
    assert "Kirkpatrick level 3" in text and "30 days and 90 days after delivery" in text


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


@pytest.mark.parametrize(("key", "method", "sequence"), [("3:delivery_invite:lab-1:0", "REQUEST", 0),
                                                         ("3:delivery_invite:lab-1:1", "REQUEST", 1),
                                                         ("4:session_cancelled:lab-1:1", "CANCEL", 1)])
def test_calendar_invite_parts(key: str, method: str, sequence: int) -> None:
    [n] = [n for n in domain_notifications() if n.key == key]
    uid = f"UID:ldflow-{n.request_id}-session-lab-1@ldflow"
    msg = do_render(n)
    parsed = message_from_bytes(msg.as_bytes(), policy=default_policy)
    assert parsed.get_content_type() == "multipart/mixed"
    alternative = next(parsed.iter_parts())
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html", "text/calendar"]
    calendar_part = list(alternative.iter_parts())[2]
    assert calendar_part.get_param("method") == method
    ics = calendar_part.get_content()
    assert f"METHOD:{method}" in ics and uid in ics and f"SEQUENCE:{sequence}" in ics
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == ("invite.ics" if method == "REQUEST" else "cancel.ics")
    assert uid.encode() in attachment.get_content()


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
