"""The signed links and their pages, on the in-memory fakes: the authorization matrix (each page ×
each kind of link → its status, nothing written when refused), the plan-version binding, single use,
the mails' links, the form tokens."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.testing import InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.clock import FixedClock
from flows.links import SEGMENTS, Links, Purpose, plan_digest
from flows.settings import Settings
from flows.web.app import create_app
from tests.builders import T0, diagnosis_data, drive_to, intake_data, plan_data
from tests.links_support import form_token, mail_links, post_form


@dataclasses.dataclass
class World:
    app: bootstrap.App
    client: TestClient
    clock: FixedClock
    approving: int  # a diagnosed request whose plan waits for the sponsor
    following: int  # a delivered request whose first checkpoints' mails went out
    links: dict[str, str]  # kind -> path

    def history(self, request_id: int) -> int:
        return len(self.app.service.history(request_id))

    def uses(self) -> int:
        return len(self.app.uow.links.snapshot())  # type: ignore[attr-defined]


@pytest.fixture
def world(tmp_path: Path) -> World:
    uow = InMemoryUnitOfWork()
    clock = FixedClock(T0)
    app = bootstrap.compose(Settings(home=tmp_path, base_url="https://ld.example.org"), store=uow.store, uow=uow,
                            clock=clock, sender=InMemorySender(), sources=lambda: [])
    service = app.service
    following = drive_to(service, "delivered").id
    first = min(c.due_at for c in service.show(following).checkpoints)
    clock.set(first)
    assert service.send_due_checkpoints("pipeline", timedelta(days=14))["sent"] >= 1
    approving = service.submit(intake_data(), "ops").id
    service.diagnose(approving, diagnosis_data(), "ops")
    service.draft_plan(approving, plan_data(), "ops")
    [approve] = mail_links(app, "plan_approval_request", approving)
    survey = mail_links(app, "survey", following)[0]
    result = mail_links(app, "checkpoint_reminder", following)[0]
    status = mail_links(app, "intake_acknowledgement", approving)[0]
    links = {"sponsor": approve, "respondent": survey, "owner": result, "requester": status}
    return World(app, TestClient(create_app(app)), clock, approving, following, links)


def _swap_request(path: str, request_id: int) -> str:
    parts = path.split("/")
    parts[3] = str(request_id)
    return "/".join(parts)


def _expired(world: World, path: str) -> str:
    """The same link, issued long enough ago to have expired."""
    _, _, segment, rid, token = path.split("/")
    purpose = next(p for p, s in SEGMENTS.items() if s == segment)
    links = Links(world.app.settings)
    link = links.read(token, purpose, int(rid), world.app.now())
    old = links.issue(purpose, int(rid), link.person, world.app.now() - timedelta(days=4000), version=link.version,
                      plan=link.plan, checkpoint=link.checkpoint)
    return f"/l/{segment}/{rid}/{old}"


def _forged(path: str) -> str:
    head, token = path.rsplit("/", 1)
    payload, signature = token.rsplit(".", 1)
    return f"{head}/{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


PAGES = [("sponsor", "approve"), ("respondent", "survey"), ("owner", "result"), ("requester", "status")]


@pytest.mark.parametrize(("holder", "segment"), PAGES)
def test_each_link_opens_its_own_page(world: World, holder: str, segment: str) -> None:
    path = world.links[holder]
    assert path.startswith(f"/l/{segment}/")
    page = world.client.get(path)
    assert page.status_code == 200, page.text
    assert "Objection handling course" in page.text


@pytest.mark.parametrize(("holder", "segment"), PAGES)
@pytest.mark.parametrize(("kind", "status"), [("expired", 410), ("forged", 403), ("other request", 403),
                                              ("other page", 403)])
def test_the_matrix_a_link_that_cannot_be_used_shows_why_and_writes_nothing(
        world: World, holder: str, segment: str, kind: str, status: int) -> None:
    path = world.links[holder]
    rid = int(path.split("/")[3])
    other = world.following if rid == world.approving else world.approving
    bad = {"expired": lambda: _expired(world, path), "forged": lambda: _forged(path),
           "other request": lambda: _swap_request(path, other),
           "other page": lambda: path.replace(f"/l/{segment}/", "/l/status/" if segment != "status"
                                              else "/l/approve/")}[kind]()
    before = (world.history(world.approving), world.history(world.following), world.uses())
    page = world.client.get(bad)
    assert page.status_code == status
    assert "Nothing was changed." in page.text
    posted = world.client.post(bad, data={"form_token": "x", "decision": "approve", "value": "70", "source": "CRM",
                                          "measured_on": "2026-05-01"})
    assert posted.status_code in (status, 405)
    assert (world.history(world.approving), world.history(world.following), world.uses()) == before


def test_the_sponsor_approves_once_by_link_recorded_as_them_via_link(world: World) -> None:
    path = world.links["sponsor"]
    done = post_form(world.client, path, {"decision": "approve", "comment": "Looks right."})
    assert done.status_code == 200 and "approved" in done.text
    request = world.app.service.show(world.approving)
    assert request.plan_approved_by == "sam.sponsor@example.org"
    last = world.app.service.history(world.approving)[-1]
    assert (last.type, last.actor, last.payload["via"]) == ("plan_approved", "sam.sponsor@example.org", "link")
    assert last.payload["comment"] == "Looks right."
    used = world.client.get(path)
    assert used.status_code == 410 and "used" in used.text
    before = world.history(world.approving)
    assert world.client.post(path, data={"decision": "approve", "form_token": "x"}).status_code == 410
    assert world.history(world.approving) == before


def test_asking_for_changes_needs_a_comment_then_tells_the_owners(world: World) -> None:
    path = world.links["sponsor"]
    before = world.history(world.approving)
    empty = post_form(world.client, path, {"decision": "changes", "comment": "  "})
    assert empty.status_code == 400 and "say what should change" in empty.text
    assert world.history(world.approving) == before and world.uses() == 0
    asked = post_form(world.client, path, {"decision": "changes", "comment": "Add the churn rate."})
    assert asked.status_code == 200
    last = world.app.service.history(world.approving)[-1]
    assert (last.type, last.actor, last.payload["comment"], last.payload["via"]) == (
        "plan_changes_requested", "sam.sponsor@example.org", "Add the churn rate.", "link")
    told = [r for r in world.app.uow.outbox.rows() if r.template == "plan_changes_requested"]
    assert [r.email for r in told[0].notification.to] == ["olga.owner@example.org"]
    assert world.client.get(path).status_code == 410  # the link worked once


def test_a_link_for_plan_version_1_cannot_approve_version_2(world: World) -> None:
    path = world.links["sponsor"]
    world.app.service.approve_plan(world.approving, {"approver": "sam.sponsor@example.org"},
                                   "sam.sponsor@example.org")
    world.app.service.draft_plan(world.approving, plan_data(items=plan_data()["items"][:1]), "ops")  # version 2
    before = world.history(world.approving)
    stale = world.client.get(path)
    assert stale.status_code == 410 and "out of date" in stale.text
    assert world.client.post(path, data={"decision": "approve", "form_token": "x"}).status_code == 410
    assert world.history(world.approving) == before
    newest = mail_links(world.app, "plan_approval_request", world.approving)[0]  # the v2 mail's link works
    assert newest != path and post_form(world.client, newest, {"decision": "approve"}).status_code == 200
    assert world.app.service.show(world.approving).plan_version == 2


def test_a_redrafted_first_plan_makes_the_old_link_stale(world: World) -> None:
    path = world.links["sponsor"]
    world.app.service.draft_plan(world.approving, plan_data(costs=False), "ops")  # still version 1, other content
    assert world.client.get(path).status_code == 410


def test_a_respondent_answers_and_changes_the_answer_until_the_window_closes(world: World) -> None:
    path = world.links["respondent"]
    key = path.split("/")[3]
    answered = post_form(world.client, path, {"value": "4", "note": "better"})
    assert answered.status_code == 200, answered.text
    request = world.app.service.show(world.following)
    closed = [c for c in request.checkpoints if c.value == 4.0]
    assert len(closed) == 1 and key
    again = world.client.get(path)
    assert again.status_code == 200 and "Change my answer" in again.text and 'value="4"' in again.text
    changed = post_form(world.client, path, {"value": "4.5"})
    assert changed.status_code == 200
    history = world.app.service.history(world.following)
    # the one respondent's answer closed the survey; the second replaces it (in the history) and the result follows
    assert [h.type for h in history[-4:]] == ["survey_answered", "survey_closed", "survey_answered", "survey_closed"]
    assert history[-2].payload["via"] == "link" and history[-2].payload["replaces"] == 4.0
    assert world.app.service.show(world.following).checkpoint(closed[0].key).value == 4.5
    world.clock.advance(timedelta(days=world.app.settings.link_survey_days + 1))
    assert world.client.get(path).status_code == 410


def test_a_survey_answer_that_is_no_number_is_named_and_nothing_is_written(world: World) -> None:
    path = world.links["respondent"]
    before = world.history(world.following)
    bad = post_form(world.client, path, {"value": "quite good"})
    assert bad.status_code == 400 and 'id="value-error"' in bad.text
    assert world.history(world.following) == before and world.uses() == 0


def test_an_owner_records_a_result_with_source_and_date_once(world: World) -> None:
    path = world.links["owner"]
    missing = post_form(world.client, path, {"decision": "record", "value": "70"})
    assert missing.status_code == 400
    assert 'id="source-error"' in missing.text and 'id="measured_on-error"' in missing.text
    done = post_form(world.client, path, {"decision": "record", "value": "70", "source": "CRM weekly report",
                                           "measured_on": "2026-04-20"})
    assert done.status_code == 200, done.text
    last = world.app.service.history(world.following)[-1]
    assert last.type == "result_recorded" and (last.actor, last.payload["via"]) == ("olga.owner@example.org", "link")
    assert "CRM weekly report" in last.payload["note"] and "2026-04-20" in last.payload["note"]
    assert world.client.get(path).status_code == 410


def test_an_owner_closes_a_checkpoint_as_missed_with_a_reason(world: World) -> None:
    path = world.links["owner"]
    assert post_form(world.client, path, {"decision": "missed", "missed_reason": ""}).status_code == 400
    done = post_form(world.client, path, {"decision": "missed", "missed_reason": "the CRM export broke"})
    assert done.status_code == 200
    assert world.app.service.history(world.following)[-1].type == "checkpoint_missed"


def test_the_status_page_says_where_the_request_is_without_internal_details(world: World) -> None:
    page = world.client.get(world.links["requester"])
    assert page.status_code == 200
    assert "We have looked into what is behind the request." in page.text
    assert "What happens next" in page.text
    for internal in ("sam.sponsor@example.org", "ops", "version", "plan_", "olga"):
        assert internal not in page.text.replace("/static/", ""), internal


def test_a_post_without_the_pages_form_token_is_refused_and_writes_nothing(world: World) -> None:
    """A cross-site page cannot read the form token, so its POST fails even with the link."""
    before = world.history(world.approving)
    for token in ("", "forged"):
        posted = world.client.post(world.links["sponsor"], data={"decision": "approve", "form_token": token})
        assert posted.status_code == 403
    survey_token = form_token(world.client.get(world.links["respondent"]).text)  # another page's token
    assert world.client.post(world.links["sponsor"], data={"decision": "approve",
                                                            "form_token": survey_token}).status_code == 403
    assert world.history(world.approving) == before and world.uses() == 0


def test_the_mails_carry_the_same_link_when_rendered_again(world: World) -> None:
    first = mail_links(world.app, "plan_approval_request", world.approving)
    assert first == mail_links(world.app, "plan_approval_request", world.approving)
    row = next(r for r in world.app.uow.outbox.rows() if r.template == "plan_approval_request")
    link = Links(world.app.settings).read(first[0].rsplit("/", 1)[1], Purpose.PLAN_APPROVAL, world.approving,
                                          world.app.now())
    assert link.version == 1 and link.plan == plan_digest(row.notification.context["plan"])
    assert link.issued_at == row.created_at.replace(microsecond=0)
    assert link.expires_at - link.issued_at == timedelta(days=14)


def test_a_link_is_signed_with_the_installations_key(world: World, tmp_path: Path) -> None:
    other = Links(Settings(home=tmp_path / "elsewhere"))
    token = other.issue(Purpose.STATUS, world.approving, "rita.requester@example.org", world.app.now())
    assert world.client.get(f"/l/status/{world.approving}/{token}").status_code == 403
    assert (tmp_path / "keys" / "links.key").stat().st_mode & 0o777 == 0o600


def test_rendered_mails_show_the_link(world: World) -> None:
    from connectors.email.render import render_bodies

    links = Links(world.app.settings)
    for template, words in (("plan_approval_request", "approve it, or ask for changes"),
                            ("survey", "answer on this page"),
                            ("checkpoint_reminder", "close the checkpoint as missed"),
                            ("intake_acknowledgement", "Follow this request")):
        row = next(r for r in world.app.uow.outbox.rows(limit=1000) if r.template == template)
        text, html = render_bodies(links.for_row(row))
        assert "https://ld.example.org/l/" in text and "https://ld.example.org/l/" in html, template
        assert words in text, template




def test_the_access_log_never_holds_a_link_secret(world: World) -> None:
    import logging

    from flows.web.links import RedactLinks

    path = world.links["sponsor"]
    token = path.rsplit("/", 1)[1]
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", path + "?x=1", "1.1", 200), None)
    assert RedactLinks().filter(record)
    line = record.getMessage()
    assert token not in line and f"/l/approve/{world.approving}/…?x=1" in line
    assert any(isinstance(f, RedactLinks) for f in logging.getLogger("uvicorn.access").filters)


def test_a_result_link_for_a_checkpoint_closed_meanwhile_is_out_of_date(world: World) -> None:
    survey, result = world.links["respondent"], world.links["owner"]  # the same checkpoint (m2:P1D)
    assert post_form(world.client, survey, {"value": "4"}).status_code == 200
    closed = world.client.get(result)
    assert closed.status_code == 410 and "closed already" in closed.text
    assert world.client.get(survey).status_code == 200  # the respondent may still change the answer


def test_a_survey_closes_when_the_request_is_measured(world: World) -> None:
    service = world.app.service
    for c in service.show(world.following).checkpoints:
        if not c.closed:
            service.record(world.following, c.key, {"value": 4.0, "early_reason": "closing the test early"}, "ops")
    service.measure(world.following, "ops")
    page = world.client.get(world.links["respondent"])
    assert page.status_code == 410 and "closed" in page.text


# The authorization matrix of the link pages: page × the link presented → the GET's status. The pages
# need no sign-in (a staff session neither helps nor hurts: they read no cookie); "used" is the page's
# own link after its action (a survey link works again: the answer can be changed); "none" is the page
# without a token. A POST with any link that is not 200 here is refused with the same status and writes
# nothing (test_the_matrix_a_link_that_cannot_be_used_shows_why_and_writes_nothing).
MATRIX = {
    #           sponsor respondent owner requester expired used forged other-request none
    "approve": (200, 403, 403, 403, 410, 410, 403, 403, 404),
    "survey": (403, 200, 403, 403, 410, 200, 403, 403, 404),
    "result": (403, 403, 200, 403, 410, 410, 403, 403, 404),
    "status": (403, 403, 403, 200, 410, 200, 403, 403, 404),
}
KINDS = ("sponsor", "respondent", "owner", "requester", "expired", "used", "forged", "other request", "none")
ACTIONS = {"approve": {"decision": "approve"}, "survey": {"value": "4"},
           "result": {"decision": "record", "value": "70", "source": "CRM", "measured_on": "2026-04-20"}}


@pytest.mark.parametrize("segment", MATRIX)
def test_the_authorization_matrix_of_the_link_pages(world: World, segment: str) -> None:
    own = next(holder for holder, s in PAGES if s == segment)
    path = world.links[own]
    rid = int(path.split("/")[3])
    other = world.following if rid == world.approving else world.approving
    seen = {}
    for kind in KINDS:
        if kind in dict(PAGES):
            target = world.links[kind].split("/")
            probe = f"/l/{segment}/{rid}/{target[4]}"
        elif kind == "expired":
            probe = _expired(world, path)
        elif kind == "forged":
            probe = _forged(path)
        elif kind == "other request":
            probe = _swap_request(path, other)
        elif kind == "none":
            probe = f"/l/{segment}/{rid}"
        else:
            continue
        seen[kind] = world.client.get(probe).status_code
    if segment in ACTIONS:
        assert post_form(world.client, path, ACTIONS[segment]).status_code == 200
    seen["used"] = world.client.get(path).status_code
    assert tuple(seen[k] for k in KINDS) == MATRIX[segment], dict(zip(KINDS, MATRIX[segment], strict=True))


def test_script_in_a_title_shows_as_text_on_every_link_page(world: World) -> None:
    service = world.app.service
    for rid in (world.approving, world.following):
        service.amend(rid, {"reason": "test", "title": "<script>alert(1)</script> course"}, "ops")
    for holder, _ in PAGES:
        page = world.client.get(world.links[holder])
        assert "<script>alert(1)</script>" not in page.text, holder
        assert "&lt;script&gt;alert(1)&lt;/script&gt; course" in page.text, holder
