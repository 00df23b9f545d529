"""A solution mix (companion pieces next to the main path) and the owners it tells: through the service on
the in-memory store, and the mails rendered and parsed back."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from rich.console import Console

from connectors.email.render import render
from connectors.notification_codec import decode_notification
from flows import board, exports, report, timeline, views
from flows.clock import FixedClock
from flows.service import Service
from states.errors import InvalidInput, NotFound, TransitionRefused
from tests.builders import (
    ACTOR,
    companion_data,
    delivery_data,
    drive_to,
    emailed_steps,
    reason_data,
)

BEFORE = timedelta(days=3)


def _outbox(service: Service) -> dict[str, Any]:
    return dict(service.store.outbox)  # type: ignore[attr-defined]


def _unchanged(service: Service, rid: int, attempt: Any) -> Exception:
    """Run ``attempt``; it must raise, and the request, its history and the outbox stay as they were."""
    before, history, outbox = service.show(rid), service.history(rid), _outbox(service)
    with pytest.raises((InvalidInput, TransitionRefused, NotFound)) as info:
        attempt()
    assert service.show(rid).model_dump() == before.model_dump()
    assert service.history(rid) == history and _outbox(service) == outbox
    return info.value


def _mail(service: Service, key: str) -> Any:
    row = service.store.outbox[key]  # type: ignore[attr-defined]
    notification = decode_notification(json.dumps(row.notification, default=str))
    message = render(notification, "ld-team@example.org", "ldflow.example.org",
                     now=datetime(2026, 11, 2, 9, tzinfo=UTC))
    return message_from_bytes(message.as_bytes(), policy=default_policy)


def _text(msg: Any) -> tuple[str, str]:
    return str(msg.get_body(("plain",)).get_content()), str(msg.get_body(("html",)).get_content())


def test_a_mix_design_plus_companions_each_owner_told_the_main_path_delivers_and_the_report_lists_open_pieces(
        memory_service: Service, clock: FixedClock) -> None:
    rid = drive_to(memory_service, "designed").id
    memory_service.add_companion(rid, companion_data(), ACTOR)
    memory_service.add_companion(rid, companion_data(
        kind="incentive_change", what="fix the bonus scheme", due="2027-06-30",
        owner={"name": "Sales Managers", "email": "sales-managers@example.org"}), ACTOR)
    request = memory_service.add_companion(rid, companion_data(kind="design", what="a 30-minute practice",
                                                               id="practice", due="2027-03-31"), ACTOR)
    assert [(c.id, c.kind.value, c.status.value) for c in request.companions] == [
        ("c1", "job_aid", "open"), ("c2", "incentive_change", "open"), ("practice", "design", "open")]

    # each owner is told what they own and by when: the owner alone, no Cc/Bcc
    msg = _mail(memory_service, f"{rid}:companion_assigned:c1")
    assert [a.addr_spec for a in msg["To"].addresses] == ["ana.lopez@example.org"]
    assert msg["Cc"] is None and msg["Bcc"] is None and msg["Reply-To"] is None
    assert msg["Subject"] == f"[ldflow #{rid}] Over to you: a decision card for discounts for {request.intake.title}"
    text, html = _text(msg)
    assert text.startswith("Hello Ana,\n") and "<p>Hello Ana,</p>" in html
    for body in (text, html):
        assert "a decision card for discounts (a job aid)" in body and "Fri 31 Dec 2027" in body
        assert "design a learning solution as the main path" in body  # the main path in words
    later = _text(_mail(memory_service, f"{rid}:companion_assigned:practice"))[0]
    assert "The other pieces:" in later and "fix the bonus scheme (Sales Managers, by Wed 30 Jun 2027)" in later
    group = _mail(memory_service, f"{rid}:companion_assigned:c2")
    assert _text(group)[0].startswith("Hello team,\n")  # a list is greeted as a team

    memory_service.complete_companion(rid, "c1", "printed and handed out", ACTOR)
    memory_service.drop_companion(rid, "practice", reason_data("the managers coach it instead"), ACTOR)
    request = memory_service.deliver(rid, delivery_data(), ACTOR)
    assert request.state.value == "delivered"  # the main path delivered; c2 is still open

    for c in request.checkpoints:
        clock.set(max(clock.now(), c.due_at))
        memory_service.record(rid, c.key, {"value": 71.0}, ACTOR)
    request = memory_service.measure(rid, ACTOR)
    shown = report.build(request)
    assert "The other pieces of the solution:" in shown.text
    assert ("fix the bonus scheme (a change to the consequences), Sales Managers: still open, due Wed 30 Jun 2027"
            in shown.text)
    assert "a decision card for discounts (a job aid), Ana Lopez: done (printed and handed out)" in shown.text
    assert "a 30-minute practice (a designed piece), Ana Lopez: dropped (the managers coach it instead)" in shown.text
    assert "still open, due Wed 30 Jun 2027" in shown.html
    assert [c["status"] for c in shown.data["companions"]] == ["done", "open", "dropped"]

    # show, history and the export say the same
    console = Console(width=220, record=True)
    console.print(views.request_view(request))
    out = console.export_text()
    assert "Companion pieces (the solution mix)" in out and "fix the bonus scheme" in out
    assert "dropped: the managers coach it instead" in out
    lines = [timeline.summarize(r) for r in memory_service.history(rid)]
    assert ("companion piece c1: a decision card for discounts (job aid), owner Ana Lopez <ana.lopez@example.org>, "
            "due 2027-12-31") in lines
    assert "companion piece c1 done: printed and handed out" in lines
    assert "companion piece practice dropped: the managers coach it instead" in lines
    [row] = csv.DictReader(io.StringIO("".join(exports.csv_chunks([request]))))
    assert row["companions"].split("; ") == [
        "c1 job_aid: a decision card for discounts (ana.lopez@example.org, due 2027-12-31, done)",
        "c2 incentive_change: fix the bonus scheme (sales-managers@example.org, due 2027-06-30, open)",
        "practice design: a 30-minute practice (ana.lopez@example.org, due 2027-03-31, dropped)"]


def test_owners_are_reminded_once_within_the_window_and_closed_pieces_never(
        memory_service: Service, clock: FixedClock) -> None:
    rid = drive_to(memory_service, "redirected", path="redirect").id
    memory_service.add_companion(rid, companion_data(due="2026-03-20"), ACTOR)
    memory_service.add_companion(rid, companion_data(what="a second card", due="2026-03-20"), ACTOR)
    memory_service.add_companion(rid, companion_data(what="later", due="2026-05-01"), ACTOR)
    memory_service.drop_companion(rid, "c2", reason_data("merged into c1"), ACTOR)
    clock.set(datetime(2026, 3, 16, 9, tzinfo=UTC))  # 4 days before: not yet
    assert memory_service.remind_owners(ACTOR, BEFORE) == {"reminded": 0, "conflicts": 0}
    version = memory_service.show(rid).version
    clock.set(datetime(2026, 3, 17, 9, tzinfo=UTC))  # 3 days before
    assert memory_service.remind_owners(ACTOR, BEFORE)["reminded"] == 1
    assert memory_service.remind_owners(ACTOR, BEFORE)["reminded"] == 0  # once
    assert memory_service.show(rid).version == version + 1  # the quiet pass wrote nothing
    msg = _mail(memory_service, f"{rid}:companion_reminder:c1")
    assert [a.addr_spec for a in msg["To"].addresses] == ["ana.lopez@example.org"] and msg["Cc"] is None
    assert msg["Subject"] == f"[ldflow #{rid}] Reminder: a decision card for discounts, due 20 Mar 2026"
    assert "is due on Fri 20 Mar 2026" in _text(msg)[0]
    assert not any(k.endswith("companion_reminder:c2") for k in _outbox(memory_service))
    clock.set(datetime(2026, 5, 3, 9, tzinfo=UTC))  # c3 overdue when first looked at
    assert memory_service.remind_owners(ACTOR, BEFORE)["reminded"] == 1
    overdue = _mail(memory_service, f"{rid}:companion_reminder:c3")
    assert overdue["Subject"].endswith("Overdue: later, due 1 May 2026") and "was due on" in _text(overdue)[0]
    assert memory_service.store.requests_owing_reminders() == []  # nothing owed: no request is loaded


def test_action_step_owners_with_an_address_are_told_their_step_and_reminded_at_its_date(
        memory_service: Service, clock: FixedClock) -> None:
    rid = drive_to(memory_service, "measured").id
    memory_service.acknowledge(rid, emailed_steps(), ACTOR)
    told = _mail(memory_service, f"{rid}:action_step_assigned:1")
    assert [a.addr_spec for a in told["To"].addresses] == ["olga.owner@example.org"] and told["Cc"] is None
    assert told["Subject"] == f"[ldflow #{rid}] Your next step: add LAER to the onboarding path"
    text, html = _text(told)
    assert text.startswith("Hello Olga,\n") and "Fri 31 Dec 2027" in text and "Fri 31 Dec 2027" in html
    assert "review the call-recording library (the sales managers)" in text  # the rest of the plan
    assert not any("action_step_assigned:2" in k for k in _outbox(memory_service))  # no address: not mailed
    assert memory_service.store.requests_owing_reminders() == [rid]
    clock.set(datetime(2027, 12, 28, 9, tzinfo=UTC))
    assert memory_service.remind_owners(ACTOR, BEFORE)["reminded"] == 1
    assert memory_service.remind_owners(ACTOR, BEFORE)["reminded"] == 0
    reminder = _mail(memory_service, f"{rid}:action_step_reminder:1")
    assert reminder["Subject"] == f"[ldflow #{rid}] Reminder: add LAER to the onboarding path, due 31 Dec 2027"
    assert memory_service.store.requests_owing_reminders() == []
    lines = [timeline.summarize(r) for r in memory_service.history(rid)]
    assert "the owner of action step 1 reminded (due 2027-12-31)" in lines


def test_a_piece_is_closed_once_and_a_cancellation_drops_the_open_ones(memory_service: Service) -> None:
    rid = drive_to(memory_service, "diagnosed").id
    memory_service.add_companion(rid, companion_data(), ACTOR)
    memory_service.add_companion(rid, companion_data(what="a second card"), ACTOR)
    memory_service.complete_companion(rid, "c1", "", ACTOR)
    error = _unchanged(memory_service, rid, lambda: memory_service.complete_companion(rid, "c1", "", ACTOR))
    assert "an open piece (c1 is already done)" in str(error)
    request = memory_service.cancel(rid, reason_data("the region merged"), ACTOR)
    assert [(c.status.value, c.reason) for c in request.companions] == [
        ("done", ""), ("dropped", "request cancelled: the region merged")]
    request = memory_service.reopen(rid, reason_data("a new budget"), ACTOR)
    assert request.companions == []  # the earlier pass's mix is in the history


@pytest.mark.parametrize(("data", "field"), [
    (companion_data(kind="webinar"), "kind"),
    (companion_data(owner={"name": "Ana", "email": "not-an-address"}), "owner.email"),
    (companion_data(owner={"name": "Ana", "email": "ana@example.org\r\nBcc: x@example.org"}), "owner.email"),
    (companion_data(due="2026-02-01"), "due"),  # before today
    (companion_data(due="soon"), "due"),
    (companion_data(what=""), "what"),
    ({k: v for k, v in companion_data().items() if k != "owner"}, "owner"),
    (companion_data(status="done"), "status"),  # the status is not given, it is kept
])
def test_bad_companion_input_names_the_field_and_writes_nothing(
        memory_service: Service, data: dict[str, Any], field: str) -> None:
    rid = drive_to(memory_service, "diagnosed").id
    error = _unchanged(memory_service, rid, lambda: memory_service.add_companion(rid, data, ACTOR))
    assert isinstance(error, InvalidInput) and error.exit_code == 2
    assert field in [e.field for e in error.errors]


def test_companion_refusals_list_what_is_missing_and_write_nothing(memory_service: Service) -> None:
    received = drive_to(memory_service, "received").id
    error = _unchanged(memory_service, received,
                       lambda: memory_service.add_companion(received, companion_data(), ACTOR))
    assert error.exit_code == 3 and "cannot add a companion piece to a received request" in str(error)
    rid = drive_to(memory_service, "diagnosed").id
    memory_service.add_companion(rid, companion_data(id="card"), ACTOR)
    error = _unchanged(memory_service, rid, lambda: memory_service.add_companion(rid, companion_data(id="card"), ACTOR))
    assert "a new piece id ('card' is taken: card)" in str(error)
    error = _unchanged(memory_service, rid, lambda: memory_service.drop_companion(rid, "card", reason_data(""), ACTOR))
    assert error.exit_code == 3 and "a reason to drop the piece" in str(error)
    error = _unchanged(memory_service, rid, lambda: memory_service.drop_companion(rid, "nope", reason_data(), ACTOR))
    assert error.exit_code == 4 and "known: card" in str(error)
    memory_service.decline(rid, reason_data(), ACTOR)
    error = _unchanged(memory_service, rid, lambda: memory_service.complete_companion(rid, "card", "", ACTOR))
    assert "cannot mark a companion piece done on a declined request" in str(error)


def test_the_requester_and_the_sponsor_are_told_of_the_delivery_and_what_comes_next(memory_service: Service) -> None:
    rid = drive_to(memory_service, "designed").id
    memory_service.add_companion(rid, companion_data(), ACTOR)
    memory_service.deliver(rid, delivery_data(), ACTOR)
    msg = _mail(memory_service, f"{rid}:request_delivered")
    assert [a.addr_spec for a in msg["To"].addresses] == ["rita.requester@example.org", "sam.sponsor@example.org"]
    assert msg["Cc"] is None and msg["Bcc"] is None
    assert msg["Subject"] == f"[ldflow #{rid}] Delivered: Objection handling course"
    text, html = _text(msg)
    assert text.startswith("Hello team,\n")  # two people: greeted together
    for body in (text, html):
        assert "is delivered" in body and "design a learning solution" in body
        assert "Mon 06 Apr 2026" in body and "38 people" in body
        assert "relevance rating, 1 day after delivery (Tue 21 Apr 2026)" in body  # by date, in words
        assert body.index("1 day after") < body.index("30 days after delivery (Wed 20 May 2026)")
        assert "a decision card for discounts (Ana Lopez, by Fri 31 Dec 2027)" in body


def test_an_overdue_open_piece_needs_attention_on_the_board(memory_service: Service, clock: FixedClock) -> None:
    rid = drive_to(memory_service, "diagnosed").id
    memory_service.add_companion(rid, companion_data(due="2026-03-20"), ACTOR)
    request = memory_service.show(rid)
    assert board.attention(request, datetime(2026, 3, 20, 18, tzinfo=UTC)) == []
    assert board.attention(request, datetime(2026, 3, 21, 9, tzinfo=UTC)) == [
        "companion piece c1 (a decision card for discounts, Ana Lopez) overdue since 2026-03-20"]
    request = memory_service.complete_companion(rid, "c1", "", ACTOR)
    assert board.attention(request, datetime(2026, 3, 21, 9, tzinfo=UTC)) == []
