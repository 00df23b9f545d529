"""The board and the request page: filters, cards, actions as forms, refusals, stale forms, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows import board as boards
from tests.builders import ACTOR, SPONSOR, diagnosis_data, drive_to, intake_data, plan_data
from tests.web_support import ADMIN, PARTNER, WebRig, post_form, rig


@pytest.fixture
def web(tmp_path: Path) -> WebRig:
    return rig(tmp_path)


def _cards(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<article class="card[^"]*" data-id="(\d+)"', html)]


def test_the_board_shows_columns_in_the_lifecycle_order_and_a_card_per_request(web: WebRig) -> None:
    received = web.app.service.submit(intake_data(title="Coaching for new managers"), ACTOR).id
    delivered = drive_to(web.app.service, "delivered").id
    html = web.client("viewer").get("/").text
    columns = re.findall(r'<section class="column state-(\w+)[" ]', html)
    assert columns == ["received", "diagnosed", "redirected", "designed", "delivered", "measured"]
    assert set(_cards(html)) == {received, delivered}
    card = html[html.index(f'data-id="{received}"'):]
    card = card[:card.index("</article>")]
    assert "Coaching for new managers" in card and SPONSOR in card and "rita.requester@example.org" in card
    assert "<strong>Next:</strong> diagnose" in card and "at least one observable action" in card
    assert "In state" in card and "just now" in card
    # the missing items collapsed to a count, each one inside the <details>
    missing = web.app.service.show(received)
    action, items = boards.next_step(missing)
    assert f"<summary>{len(items)} still missing</summary>" in card and card.count("<li>") == len(items)


def test_the_terminal_states_are_one_column_of_counts_linking_to_their_cards(web: WebRig) -> None:
    done = drive_to(web.app.service, "acknowledged").id
    declined = drive_to(web.app.service, "declined").id
    open_one = web.app.service.submit(intake_data(), ACTOR).id
    client = web.client("viewer")
    html = client.get("/").text
    assert _cards(html) == [open_one] and "3 requests" in html
    closed = html[html.index('aria-label="closed"'):]
    closed = closed[:closed.index("</section>")]
    for state, n in (("acknowledged", 1), ("declined", 1), ("cancelled", 0)):
        assert re.search(rf'href="/\?state={state}">{state.title()}</a> <span class="count">{n}</span>', closed)
    assert _cards(client.get("/?state=acknowledged").text) == [done]
    both = client.get("/?state=acknowledged,declined").text
    assert set(_cards(both)) == {done, declined} and 'aria-label="closed"' not in both


def test_board_filters_state_sponsor_owner_requester_text_and_attention(web: WebRig) -> None:
    s = web.app.service
    a = s.submit(intake_data(title="Objection handling", sponsor_email="ann@example.org"), ACTOR).id
    b = s.submit(intake_data(title="Expense policy", requester_email="rob@example.org"), ACTOR).id
    c = drive_to(s, "delivered").id
    client = web.client("viewer")
    assert _cards(client.get("/?state=delivered").text) == [c]
    sponsor_view = client.get("/?sponsor=ann@example.org").text
    assert _cards(sponsor_view) == [a] and "Requests sponsored by ann@example.org" in sponsor_view
    assert _cards(client.get("/?requester=rob@example.org").text) == [b]
    assert _cards(client.get("/?q=expense").text) == [b]
    owner = web.app.service.show(c).plan.items[0].owner.email  # type: ignore[union-attr]
    assert _cards(client.get(f"/?owner={owner}").text) == [c]
    assert _cards(client.get("/?attention=1").text) == []
    bad = client.get("/?state=lost&page=0")
    assert bad.status_code == 400 and "unknown state lost" in bad.text and "page: a whole number" in bad.text


def test_attention_lists_checkpoints_waiting_on_a_person(web: WebRig) -> None:
    from datetime import timedelta

    rid = drive_to(web.app.service, "delivered").id
    web.clock.advance(timedelta(days=400))  # every checkpoint far too late: flagged needs_review
    web.app.service.send_due_checkpoints(ACTOR, timedelta(days=7))
    html = web.client("viewer").get("/?attention=1").text
    assert _cards(html) == [rid] and "needs review" in html


def test_the_board_pages(web: WebRig) -> None:
    ids = [web.app.service.submit(intake_data(title=f"Request {n:02}"), ACTOR).id for n in range(7)]
    client = web.client("viewer")
    first = client.get("/?per_page=3").text
    assert len(_cards(first)) == 3 and "page 1 of 3" in first and 'rel="next"' in first
    last = client.get("/?per_page=3&page=3").text
    assert len(_cards(last)) == 1 and 'rel="prev"' in last
    seen = set(_cards(first)) | set(_cards(client.get("/?per_page=3&page=2").text)) | set(_cards(last))
    assert seen == set(ids)


def test_the_request_page_shows_every_part_and_the_history_in_words(web: WebRig) -> None:
    rid = drive_to(web.app.service, "acknowledged").id
    html = web.client("viewer").get(f"/requests/{rid}").text
    for part in ("Intake", "Diagnosis", "Recommendations", "Measurement plan", "Approved by", "Design brief",
                 "Delivery", "Checkpoints", "Results against the targets", "Report", "History"):
        assert f">{part}" in html, part
    assert "approved by sam.sponsor@example.org" in html  # the timeline's summary of plan_approved
    assert "(received → diagnosed)" in html


def test_actions_shown_are_the_ones_the_lifecycle_allows(web: WebRig) -> None:
    rid = drive_to(web.app.service, "received").id
    html = web.client("partner").get(f"/requests/{rid}").text
    shown = re.findall(rf'<form method="post" action="/requests/{rid}/(\w+)"', html)
    # the table allows approve_plan too, but with no plan drafted there is nothing to approve
    assert shown == ["diagnose", "decline", "cancel", "draft_plan", "add_note", "amend"]
    web.app.service.draft_plan(rid, plan_data(), ACTOR)
    html = web.client("partner").get(f"/requests/{rid}").text
    shown = re.findall(rf'<form method="post" action="/requests/{rid}/(\w+)"', html)
    assert shown == ["diagnose", "decline", "cancel", "draft_plan", "approve_plan", "add_note", "amend"]


def test_a_refused_action_lists_every_missing_item_and_changes_nothing(web: WebRig) -> None:
    rid = drive_to(web.app.service, "received").id
    before = web.app.service.show(rid).version
    client = web.client("partner")
    response = post_form(client, f"/requests/{rid}/diagnose", {"version": str(before), "yaml": "summary: soon"})
    assert response.status_code == 409
    assert "cannot diagnose a received request" in response.text and "Nothing was changed" in response.text
    for item in ("at least one observable action", "cause check &#39;expectations_clear&#39; unanswered"):
        assert item in response.text
    assert web.app.service.show(rid).version == before


def test_a_refusal_s_missing_items_are_said_once_on_the_screen(web: WebRig) -> None:
    rid = drive_to(web.app.service, "received").id
    client = web.client("partner")
    _, missing = boards.next_step(web.app.service.show(rid))
    page = client.get(f"/requests/{rid}").text
    standing = page[page.index("Where it stands"):page.index("</section>", page.index("Where it stands"))]
    assert "Still missing for that:" in standing and standing.count('<li>') == len(missing)
    version = str(web.app.service.show(rid).version)
    response = post_form(client, f"/requests/{rid}/diagnose", {"version": version, "yaml": "summary: soon"})
    assert response.status_code == 409
    html = response.text
    failure = html[html.index('role="alert"'):html.index("</div>", html.index('role="alert"'))]
    standing = html[html.index("Where it stands"):html.index("</section>", html.index("Where it stands"))]
    refused = re.findall(r"<li>(.*?)</li>", failure)
    assert refused and any(m.startswith("at least one observable action") for m in refused)
    # "Where it stands" no longer repeats what the refusal lists beside the form; it points there
    assert not set(re.findall(r"<li>(.*?)</li>", standing)) & set(refused)
    assert 'href="#action-diagnose">listed with the refused action</a>' in standing
    for item in refused:
        assert html.count(f"<li>{item}</li>") == 1, item


def test_a_stale_form_shows_a_conflict_and_the_current_version(web: WebRig) -> None:
    rid = drive_to(web.app.service, "received").id
    stale = web.app.service.show(rid).version
    web.app.service.add_note(rid, "someone else was here", ACTOR)
    client = web.client("partner")
    response = post_form(client, f"/requests/{rid}/add_note", {"version": str(stale), "text": "mine"})
    assert response.status_code == 409 and "Conflict:" in response.text
    current = web.app.service.show(rid).version
    assert current == stale + 1 and f"version {current}" in response.text
    assert re.search(rf'name="version" value="{current}"', response.text)  # sending again now works
    assert [r.type for r in web.app.service.history(rid)].count("note_added") == 1


def test_bad_input_names_the_field_next_to_it_and_writes_nothing(web: WebRig) -> None:
    rid = drive_to(web.app.service, "designed").id
    before = web.app.service.show(rid).version
    client = web.client("partner")
    response = post_form(client, f"/requests/{rid}/deliver", {
        "version": str(before), "start_date": "2026-13-01", "end_date": "2026-02-10", "audience_reached": "lots"})
    assert response.status_code == 400
    assert re.search(r'data-field="start_date">[^<]*date', response.text)
    assert re.search(r'data-field="audience_reached">[^<]*', response.text)
    assert 'value="lots"' in response.text  # what was typed stays in the form
    bad_yaml = post_form(client, f"/requests/{rid}/schedule_session", {"version": str(before), "yaml": "a: [1"})
    assert bad_yaml.status_code == 400 and 'data-field="yaml">' in bad_yaml.text and "malformed YAML" in bad_yaml.text
    assert web.app.service.show(rid).version == before


def test_a_web_write_is_the_signed_in_users_via_web(web: WebRig) -> None:
    rid = drive_to(web.app.service, "received").id
    client = web.client("partner")
    response = post_form(client, f"/requests/{rid}/add_note", {"version": str(web.app.service.show(rid).version),
                                                               "text": "Called the sponsor."})
    assert response.status_code == 303 and response.headers["location"] == f"/requests/{rid}?done=add_note"
    last = web.app.service.history(rid)[-1]
    assert (last.actor, last.payload["via"], last.payload["text"]) == (PARTNER, "web", "Called the sponsor.")
    assert f"by {PARTNER} (via web)" in client.get(f"/requests/{rid}").text


def _ready_to_approve(web: WebRig) -> int:
    rid = web.app.service.submit(intake_data(), ACTOR).id
    web.app.service.diagnose(rid, diagnosis_data(), ACTOR)
    web.app.service.draft_plan(rid, plan_data(), ACTOR)
    return rid


def test_approving_for_the_sponsor_needs_an_admin_with_a_reason(web: WebRig) -> None:
    rid = _ready_to_approve(web)
    version = str(web.app.service.show(rid).version)
    partner = post_form(web.client("partner"), f"/requests/{rid}/approve_plan",
                        {"version": version, "approver": SPONSOR, "reason": "they said yes on the phone"})
    assert partner.status_code == 409 and f"the approver&#39;s own approval: {PARTNER} is not {SPONSOR}" in partner.text
    admin = web.client("admin")
    no_reason = post_form(admin, f"/requests/{rid}/approve_plan", {"version": version, "approver": SPONSOR})
    assert no_reason.status_code == 409 and "a reason for recording" in no_reason.text
    assert web.app.service.show(rid).plan_approved_by is None
    done = post_form(admin, f"/requests/{rid}/approve_plan", {"version": version, "approver": SPONSOR,
                                                              "reason": "Approved in the steering meeting."})
    assert done.status_code == 303
    r = web.app.service.show(rid)
    assert (r.plan_approved_by, r.plan_approval_recorded_by) == (SPONSOR, ADMIN)
    last = web.app.service.history(rid)[-1]
    assert last.payload == {"approver": SPONSOR, "comment": "", "recorded_by": ADMIN,
                            "reason": "Approved in the steering meeting.", "via": "web"}
    page = admin.get(f"/requests/{rid}").text
    assert f"recorded on their behalf by the admin {ADMIN}" in page


def test_next_step_reads_the_guards() -> None:
    from datetime import UTC, datetime

    from states.models import Intake
    from states.request import TrainingRequest
    from tests.builders import T0

    request = TrainingRequest.submit(Intake.model_validate(intake_data()), T0)
    action, missing = boards.next_step(request)
    assert action == "diagnose" and any("observable action" in m for m in missing)
    assert boards.attention(request, datetime.now(UTC)) == []


def test_a_solution_mix_through_the_forms_and_on_the_page(web: WebRig) -> None:
    rid = drive_to(web.app.service, "diagnosed").id
    client = web.client("partner")
    html = client.get(f"/requests/{rid}").text
    shown = re.findall(rf'<form method="post" action="/requests/{rid}/(\w+)"', html)
    assert "add_companion" in shown and not {"complete_companion", "drop_companion"} & set(shown)  # no piece yet
    version = web.app.service.show(rid).version
    piece = {"version": str(version), "kind": "job_aid", "what": "a decision card", "owner.name": "Ana Lopez",
             "owner.email": "ana.lopez@example.org", "due": "2027-12-31"}
    bad = post_form(client, f"/requests/{rid}/add_companion", {**piece, "kind": "webinar"})
    assert bad.status_code == 400 and "kind" in bad.text and web.app.service.show(rid).version == version
    assert post_form(client, f"/requests/{rid}/add_companion", piece).status_code in (200, 303)
    version += 1
    shown = re.findall(rf'<form method="post" action="/requests/{rid}/(\w+)"', client.get(f"/requests/{rid}").text)
    assert {"add_companion", "complete_companion", "drop_companion"} <= set(shown)
    assert post_form(client, f"/requests/{rid}/drop_companion",
                     {"version": str(version), "piece": "c1", "reason": ""}).status_code == 409
    assert post_form(client, f"/requests/{rid}/complete_companion",
                     {"version": str(version), "piece": "c1", "note": "printed"}).status_code in (200, 303)
    page = client.get(f"/requests/{rid}").text
    assert ">Companion pieces (the solution mix)" in page and "a decision card" in page and "printed" in page
    assert [c.status.value for c in web.app.service.show(rid).companions] == ["done"]


def test_a_long_history_shows_its_newest_entries_and_links_to_the_whole(web: WebRig) -> None:
    rid = drive_to(web.app.service, "received").id
    for n in range(60):
        web.app.service.add_note(rid, f"note number {n}", ACTOR)
    client = web.client("viewer")
    html = client.get(f"/requests/{rid}").text
    assert "61 entries" in html and "The newest 50 are shown; 11 earlier entries are not." in html
    assert "note number 59" in html and "note number 9<" not in html and "note number 10" in html
    assert html.count('<li><span class="when">') == 50
    whole = client.get(f"/requests/{rid}?history=all").text
    assert whole.count('<li><span class="when">') == 61 and "earlier entr" not in whole


def test_an_sla_breach_shows_a_badge_on_the_card_and_puts_it_under_attention(web: WebRig) -> None:
    from datetime import timedelta

    late = web.app.service.submit(intake_data(title="Waiting too long"), ACTOR).id
    web.clock.advance(timedelta(days=6))  # 4-5 business days of 5 (a weekend between): near its breach
    client = web.client("viewer")
    html = client.get("/").text
    card = html[html.index(f'data-id="{late}"'):]
    card = card[:card.index("</article>")]
    assert '<span class="sla sla-near"' in card and "SLA diagnose near breach: 4." in card
    fresh = web.app.service.submit(intake_data(title="Just in"), ACTOR).id
    web.clock.advance(timedelta(days=2))  # 6 business days for the first: breached; the second: 2 of 5
    html = client.get("/?attention=1").text
    assert _cards(html) == [late] and fresh not in _cards(html)
    assert '<span class="sla sla-breached"' in html and "SLA breached" in html
    page = client.get(f"/requests/{late}").text
    assert re.search(r"SLA diagnose breached: 6\.\d of 5 business days", page)


def test_the_attention_filter_follows_every_write_at_once_and_the_clock_by_the_minute(web: WebRig) -> None:
    """The filter's SLA set is kept per audit head, policy and minute (flows.board._sla_attention): a write
    shows on the next page, and a clock that crosses into near or breached with time alone from the next
    minute on."""
    from datetime import timedelta

    s = web.app.service
    client = web.client("viewer")
    late = s.submit(intake_data(title="Waiting too long"), ACTOR).id
    web.clock.advance(timedelta(days=8))  # 6 business days of 5: breached
    other = s.submit(intake_data(title="Just in"), ACTOR).id
    assert _cards(client.get("/?attention=1").text) == [late]
    assert _cards(client.get("/?attention=1&per_page=5").text) == [late]  # the same set, kept
    s.diagnose(late, diagnosis_data(), ACTOR)  # its diagnose clock stops: no running clock is late
    assert _cards(client.get("/?attention=1").text) == []
    web.clock.advance(timedelta(days=6))  # the second request's clock: 4 business days of 5, near
    assert _cards(client.get("/?attention=1").text) == [other]


def test_the_request_page_shows_the_plan_review_while_the_plan_awaits_approval(web: WebRig) -> None:
    rid = web.app.service.submit(intake_data(), ACTOR).id
    web.app.service.draft_plan(rid, plan_data(), ACTOR)
    page = web.client("viewer").get(f"/requests/{rid}").text
    assert "<strong>Plan review</strong>" in page and "no item measures a business result" in page
    web.app.service.approve_plan(rid, {"approver": SPONSOR}, SPONSOR)
    assert "<strong>Plan review</strong>" not in web.client("viewer").get(f"/requests/{rid}").text


def test_a_bad_sla_policy_is_named_on_the_board_and_the_pages_still_work(web: WebRig, tmp_path: Path) -> None:
    policy = tmp_path / "sla.yaml"
    policy.write_text("slas:\n  diagnose: {start: [recieved], stop: [diagnosed], within: 5}\n", encoding="utf-8")
    web.app.settings.sla_policy = policy
    rid = web.app.service.submit(intake_data(), ACTOR).id
    client = web.client("viewer")
    board = client.get("/")
    assert board.status_code == 200 and _cards(board.text) == [rid]
    assert "SLA clocks not shown" in board.text and "slas.diagnose.start" in board.text
    page = client.get(f"/requests/{rid}")
    assert page.status_code == 200 and "slas.diagnose.start" in page.text
