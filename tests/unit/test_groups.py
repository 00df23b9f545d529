"""Respondent groups through the application on the in-memory fakes (issue 8 items 1 and 2): a
40-learner roster gets 40 survey mails (one per learner, every question due that day in it),
reminders go only to those who have not answered, answers by reply and by link aggregate to the
right n, response rate, mean, median and share, a second answer replaces the first, an answer
from someone not asked is quarantined (never counted, never answered), and the survey closes at
the end of its response window with what it has, or as missed below its minimum."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.testing import InMemoryInbox, InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.link_actions import LinkResponses
from flows.settings import Settings
from flows.steps import fire_followups, send_outbox, take_in
from states.checkpoints import CheckpointStatus
from states.errors import InvalidInput, TransitionRefused
from tests.builders import (
    ACTOR,
    SPONSOR,
    T0,
    delivery_data,
    diagnosis_data,
    drive_to,
    intake_data,
    plan_data,
    plan_item,
    roster_data,
)
from tests.unit.test_reply_trust import PASS, reply

DOMAIN = "learners.example.org"


@pytest.fixture
def sender() -> InMemorySender:
    return InMemorySender()


@pytest.fixture
def inbox() -> InMemoryInbox:
    return InMemoryInbox()


@pytest.fixture
def app(tmp_path: Path, inbox: InMemoryInbox, sender: InMemorySender) -> Iterator[App]:
    uow = InMemoryUnitOfWork()
    settings = Settings(home=tmp_path, mail_from="ld@example.org", mail_authserv_ids="mx.example.org")
    yield bootstrap.compose(settings, store=uow.store, uow=uow, clock=FixedClock(T0), sender=sender,
                            sources=lambda: [inbox])


def _plan() -> dict[str, object]:
    rating = plan_item("rating", level=1, baseline=False, metric="Labs rated useful", unit="1-5",
                       target={"value": 70, "date": "2026-06-30"}, instrument="survey", respondent="learners",
                       checkpoints=["P1D"], survey={"scale_min": 1, "scale_max": 5, "threshold": 4})
    confidence = plan_item("confidence", level=2, baseline=False, metric="Confidence handling objections",
                           unit="1-5", target={"value": 4, "date": "2026-06-30"}, instrument="survey",
                           respondent="learners", checkpoints=["P1D"], survey={"min_responses": 20})
    report = plan_item("crm", respondent="owner", checkpoints=["P30D"])
    return plan_data(items=[rating, confidence, report])


def _delivered(app: App, learners: int = 40) -> int:
    r = app.service.submit(intake_data(), ACTOR)
    assert r.id is not None
    app.service.diagnose(r.id, diagnosis_data(), ACTOR)
    app.service.draft_plan(r.id, _plan(), ACTOR)
    app.service.approve_plan(r.id, {"approver": SPONSOR}, SPONSOR)
    drive_to(app.service, "designed", request_id=r.id)
    app.service.deliver(r.id, delivery_data(roster=roster_data(learners, managers=4, domain=DOMAIN)), ACTOR)
    return r.id


def _surveys(sender: InMemorySender, subject: str = "Quick check-in") -> list[EmailMessage]:
    return [m for m in sender.messages if subject in str(m["Subject"])]


def _to(mail: EmailMessage) -> str:
    return str(mail["To"].addresses[0].addr_spec)


def _text(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _learner(i: int) -> str:
    return f"learner{i}@{DOMAIN}"


def test_a_40_learner_roster_gets_40_mails_each_with_both_questions_and_a_link_each(
        app: App, sender: InMemorySender) -> None:
    rid = _delivered(app)
    app.clock.set(T0.replace(month=4, day=21, hour=10))  # type: ignore[attr-defined]  # both P1D are due
    fire_followups(app)
    assert send_outbox(app).counts["failed"] == 0
    surveys = _surveys(sender)
    assert len(surveys) == 40 and sorted(map(_to, surveys)) == sorted(_learner(i) for i in range(1, 41))
    text = _text(surveys[0])
    assert "1. Labs rated useful" in text and "2. Confidence handling objections" in text
    assert len(re.findall(r"/l/survey/\d+/\S+", text)) == 2  # one link per question, this learner's own
    assert "one number a line" in text
    request = app.service.show(rid)
    assert [len(c.asked) for c in request.checkpoints if c.item_id != "crm"] == [40, 40]


def _answer_by_reply(inbox: InMemoryInbox, mail: EmailMessage, body: str, n: int) -> None:
    inbox.add(reply(body, f"Learner <{_to(mail)}>", f"<a-{_to(mail)}-{n}@example.org>",
                    in_reply_to=str(mail["Message-ID"]), auth=(PASS,)))


def test_answers_by_reply_and_link_aggregate_reminders_go_to_non_responders_and_the_window_closes(
        app: App, inbox: InMemoryInbox, sender: InMemorySender) -> None:
    rid = _delivered(app)
    app.clock.set(T0.replace(month=4, day=21, hour=10))  # type: ignore[attr-defined]
    fire_followups(app)
    send_outbox(app)
    mails = {_to(m): m for m in _surveys(sender)}
    for i in range(1, 11):  # ten learners answer both questions by reply
        _answer_by_reply(inbox, mails[_learner(i)], f"{i % 5 + 1}\n3 - getting there", 1)
    _answer_by_reply(inbox, mails[_learner(1)], "5\n3", 2)  # learner 1 changes their mind: replaces
    inbox.add(reply("5\n5", "Mallory <mallory@example.org>", "<m-1@example.org>",  # a forwarded mail
                    in_reply_to=str(mails[_learner(2)]["Message-ID"]), auth=(PASS,)))
    outbox_before = len(app.uow.outbox.rows(limit=10_000))
    summary = take_in(app)
    assert summary.counts["processed"] == 11 and summary.counts["quarantined"] == 1
    assert "issued to learner2@learners.example.org" in summary.errors[0]
    links = LinkResponses(app)
    for i in range(11, 16):  # five answer the first question on its page
        url = re.findall(r"/l/survey/\d+/(\S+)", _text(mails[_learner(i)]))[0]
        links.answer(url, rid, {"value": 5})
    request = app.service.show(rid)
    rating, confidence = request.checkpoint("rating:P1D"), request.checkpoint("confidence:P1D")
    assert len(rating.answers) == 15 and len(confidence.answers) == 10
    assert next(a for a in rating.answers if a.email == _learner(1)).value == 5
    replaced = [h for h in app.service.history(rid) if h.type == "survey_answered" and h.payload.get("replaces")]
    assert [(h.payload["respondent"], h.payload["replaces"], h.payload["value"]) for h in replaced] == [
        (_learner(1), 2.0, 5.0), (_learner(1), 3.0, 3.0)]
    assert all("mallory" not in a.email for a in rating.answers)
    assert len(app.uow.outbox.rows(limit=10_000)) == outbox_before  # nothing sent back, Mallory included
    assert not sender.deliveries("mallory@example.org")

    # reminders: only the non-responders, one mail each with the questions they still owe
    sent = len(sender.messages)
    app.clock.advance(timedelta(days=3, hours=1))  # type: ignore[attr-defined]
    fire_followups(app)
    send_outbox(app)
    reminders = [m for m in sender.messages[sent:] if "Reminder" in str(m["Subject"])]
    to = sorted(map(_to, reminders))
    assert to == sorted(_learner(i) for i in range(11, 41))  # 25 owe both, 5 owe the second
    assert len(to) == len(set(to)) == 30
    only_second = _text(next(m for m in reminders if _to(m) == _learner(11)))
    assert "Confidence handling objections" in only_second and "Labs rated useful" not in only_second

    # the window's end (14 days after due): the first closes with what it has, the second is below its minimum
    app.clock.set(rating.due_at + timedelta(days=7))  # type: ignore[attr-defined]
    fire_followups(app)  # the second (last) reminder
    app.clock.set(rating.due_at + timedelta(days=14))  # type: ignore[attr-defined]
    fire_followups(app)
    request = app.service.show(rid)
    rating, confidence = request.checkpoint("rating:P1D"), request.checkpoint("confidence:P1D")
    assert rating.status == CheckpointStatus.CLOSED and rating.tally is not None
    values = [5, 3, 4, 5, 1, 2, 3, 4, 5, 1] + [5] * 5
    t = rating.tally
    assert (t.n, t.asked, t.response_rate) == (15, 40, 37.5)
    assert t.mean == round(sum(values) / 15, 3) and t.median == 5
    assert t.share_at_or_above == 66.7 and rating.value == 66.7  # the result: the share at 4 or above
    assert confidence.status == CheckpointStatus.MISSED
    assert confidence.missed_reason == ("10 of 40 answered (25%), below the minimum of 20 answers by the end "
                                        "of its response window")


def test_an_answer_from_someone_not_asked_or_off_the_scale_is_refused_and_nothing_is_written(app: App) -> None:
    rid = _delivered(app, learners=3)
    app.clock.set(T0.replace(month=4, day=21, hour=10))  # type: ignore[attr-defined]
    fire_followups(app)
    before = app.service.history(rid)
    with pytest.raises(TransitionRefused, match="stranger@example.org is not among the 3 respondents"):
        app.service.answer(rid, "rating:P1D", "stranger@example.org", {"value": 4}, ACTOR)
    with pytest.raises(InvalidInput, match="outside the scale 1–5"):
        app.service.answer(rid, "rating:P1D", _learner(1), {"value": 7}, ACTOR)
    assert app.service.history(rid) == before


def test_everyone_answered_closes_the_survey_at_once(app: App) -> None:
    rid = _delivered(app, learners=2)
    app.clock.set(T0.replace(month=4, day=21, hour=10))  # type: ignore[attr-defined]
    fire_followups(app)
    app.service.answer(rid, "rating:P1D", _learner(1), {"value": 4}, _learner(1), via="reply")
    assert app.service.show(rid).checkpoint("rating:P1D").status == CheckpointStatus.SENT
    app.service.answer(rid, "rating:P1D", _learner(2), {"value": 2}, _learner(2), via="link")
    c = app.service.show(rid).checkpoint("rating:P1D")
    assert c.status == CheckpointStatus.CLOSED and c.tally is not None
    assert (c.tally.n, c.tally.response_rate, c.tally.mean, c.value) == (2, 100.0, 3.0, 50.0)


def test_managers_are_the_rosters_managers_and_an_owner_who_answers_gets_no_to_do(
        app: App, sender: InMemorySender) -> None:
    owner = {"name": "Olga Owner", "email": "olga.owner@example.org"}
    item = plan_item("coaching", level=3, metric="Coaching conversations a week", unit="conversations",
                     instrument="survey", respondent="managers", checkpoints=["P1D"])
    own = plan_item("own", level=3, metric="Team huddles held", unit="huddles", instrument="survey",
                    respondent="stakeholders", stakeholders=[owner], checkpoints=["P1D"], owner=owner)
    r = app.service.submit(intake_data(), ACTOR)
    assert r.id is not None
    app.service.diagnose(r.id, diagnosis_data(), ACTOR)
    app.service.draft_plan(r.id, plan_data(items=[item, own]), ACTOR)
    app.service.approve_plan(r.id, {"approver": SPONSOR}, SPONSOR)
    drive_to(app.service, "designed", request_id=r.id)
    app.service.deliver(r.id, delivery_data(roster=roster_data(6, managers=2, domain=DOMAIN)), ACTOR)
    app.clock.set(T0.replace(month=4, day=21, hour=10))  # type: ignore[attr-defined]
    fire_followups(app)
    send_outbox(app)
    assert sorted(map(_to, _surveys(sender))) == [f"manager1@{DOMAIN}", f"manager2@{DOMAIN}",
                                                  "olga.owner@example.org"]
    olga = sender.deliveries("olga.owner@example.org")
    assert [m for m in olga if "Collect" in str(m["Subject"]) and "huddles" in str(m["Subject"])] == []
    assert [m for m in olga if "Collect" in str(m["Subject"]) and "Coaching" in str(m["Subject"])]


def test_bad_rosters_and_thresholds_are_refused_naming_the_field_and_nothing_is_written(app: App) -> None:
    r = drive_to(app.service, "designed")
    roster = roster_data(3, domain=DOMAIN)
    twice = {**roster, "learners": [*roster["learners"], roster["learners"][0]]}
    with pytest.raises(InvalidInput) as info:
        app.service.set_roster(r.id, twice, ACTOR)
    assert "learners" in str(info.value) and "listed twice" in str(info.value)
    bad = {**roster, "learners": [{"name": "X", "email": "not-an-address"}]}
    with pytest.raises(InvalidInput) as info:
        app.service.set_roster(r.id, bad, ACTOR)
    assert "learners[0].email" in str(info.value)
    item = plan_item("r", level=1, baseline=False, instrument="survey", respondent="learners",
                     checkpoints=["P1D"], survey={"scale_min": 1, "scale_max": 5, "threshold": 6})
    with pytest.raises(InvalidInput) as info:
        app.service.draft_plan(r.id, plan_data(items=[item]), ACTOR)
    assert "items[0].survey" in str(info.value) and "threshold: 6 is outside the scale 1–5" in str(info.value)
    assert app.service.show(r.id).roster is None and app.service.show(r.id).version == r.version


def test_a_roster_update_records_what_changed(app: App) -> None:
    r = drive_to(app.service, "designed")
    app.service.set_roster(r.id, roster_data(3, domain=DOMAIN), ACTOR)
    changed = roster_data(4, domain=DOMAIN)
    changed["learners"] = changed["learners"][1:]  # learner 1 left, learner 4 joined
    changed["learners"][0] = {**changed["learners"][0], "name": "Learner Two-Renamed"}
    app.service.set_roster(r.id, changed, ACTOR)
    [_, event] = [h for h in app.service.history(r.id) if h.type == "roster_set"]
    assert event.payload["added"] == [_learner(4)] and event.payload["removed"] == [_learner(1)]
    assert event.payload["changed"] == [_learner(2)] and event.payload["learners"] == 3


def test_the_report_shows_n_and_the_response_rate_beside_a_survey_result(app: App) -> None:
    from flows.report import build

    rid = _delivered(app, learners=4)
    app.clock.set(T0.replace(month=4, day=21, hour=10))  # type: ignore[attr-defined]
    fire_followups(app)
    for i, value in ((1, 5), (2, 4), (3, 2)):
        app.service.answer(rid, "rating:P1D", _learner(i), {"value": value}, _learner(i), via="reply")
    app.service.record(rid, "confidence:P1D", {"missed_reason": "dropped from the plan"}, ACTOR)
    request = app.service.show(rid)
    app.clock.set(request.checkpoint("crm:P30D").due_at)  # type: ignore[attr-defined]
    app.service.record(rid, "crm:P30D", {"value": 70}, ACTOR)
    for days in (4, 8, 15):  # two reminders to learner 4, then the window's end: closed with 3 of 4
        app.clock.set(request.checkpoint("rating:P1D").due_at + timedelta(days=days))  # type: ignore[attr-defined]
        fire_followups(app)
    measured = app.service.measure(rid, ACTOR)
    [rating] = [r for r in measured.results if r.item_id == "rating"]
    assert (rating.result, rating.responses, rating.asked, rating.response_rate) == (66.7, 3, 4, 75.0)
    text = build(measured).text
    assert "3 of 4 answered (75% response rate)" in text


def test_exports_have_a_row_per_answer_and_per_checkpoint_and_xapi_a_statement_per_answer(app: App) -> None:
    import csv
    import io

    from flows import exports, xapi

    rid = _delivered(app, learners=2)
    app.clock.set(T0.replace(month=4, day=21, hour=10))  # type: ignore[attr-defined]
    fire_followups(app)
    app.service.answer(rid, "rating:P1D", _learner(1), {"value": 3, "note": "=cmd"}, _learner(1), via="reply")
    app.service.answer(rid, "rating:P1D", _learner(1), {"value": 4}, _learner(1), via="link")
    app.service.answer(rid, "rating:P1D", _learner(2), {"value": 5}, _learner(2), via="reply")
    request = app.service.show(rid)
    out = io.StringIO()
    assert exports.export_rows(out, exports.answer_rows([request]), exports.ANSWER_COLUMNS, True) == 2
    answers = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(a["respondent"], a["value"], a["via"]) for a in answers] == [(_learner(1), "4.0", "link"),
                                                                        (_learner(2), "5.0", "reply")]
    out = io.StringIO()
    exports.export_rows(out, exports.checkpoint_rows([request]), exports.CHECKPOINT_COLUMNS, False)
    import json

    rows = {r["checkpoint"]: r for r in json.loads(out.getvalue())}
    rating = rows[f"{rid}:rating:P1D"]
    assert (rating["status"], rating["responses"], rating["asked"], rating["response_rate"], rating["mean"],
            rating["share_at_or_above"], rating["value"]) == ("closed", 2, 2, 100.0, 4.5, 100.0, 100.0)
    assert rows[f"{rid}:confidence:P1D"]["responses"] == 0 and rows[f"{rid}:crm:P30D"]["asked"] is None
    answered = [s for s in xapi.statements(app.service, rid) if s["verb"] == xapi.VERB_ANSWERED]
    assert [(s["actor"]["mbox"], s["result"]["response"]) for s in answered] == [
        (f"mailto:{_learner(1)}", "3"), (f"mailto:{_learner(1)}", "4"), (f"mailto:{_learner(2)}", "5")]
    assert answered[1]["result"]["extensions"] == {"http://localhost/ldflow/extensions/replaces": 3}
    assert answered[0]["result"]["score"] == {"raw": 3, "min": 1, "max": 5}
    assert answered[0]["object"]["id"].endswith(f"/requests/{rid}/checkpoints/rating/P1D")


def test_a_document_stored_before_groups_loads_and_its_sent_survey_keeps_its_one_answer(app: App) -> None:
    import json

    from states.request import TrainingRequest

    r = drive_to(app.service, "delivered")  # plan_data: m2 asks "learner" (the audience contact or requester)
    app.clock.set(r.checkpoint("m2:P1D").due_at)  # type: ignore[attr-defined]
    fire_followups(app)
    doc = json.loads(app.service.show(r.id).model_dump_json())
    doc.pop("roster")  # as current main stored it: none of the fields groups added
    for c in doc["checkpoints"]:
        for key in ("asked", "answers", "tally"):
            c.pop(key)
    for item in doc["plan"]["items"]:
        item.pop("stakeholders"), item.pop("survey")
    old = TrainingRequest.from_stored(json.dumps(doc))
    assert old.checkpoint("m2:P1D").status == CheckpointStatus.SENT and old.plan is not None
    assert [i.respondent.value for i in old.plan.items] == ["manager", "learner"]

    def as_before(request: TrainingRequest) -> None:  # the survey went out before groups: nobody listed
        request.checkpoint("m2:P1D").asked = []
        request.add_note("stored before groups", request.updated_at)

    app.store.update(r.id, ACTOR, as_before, None)
    app.service.answer(r.id, "m2:P1D", "rita.requester@example.org", {"value": 4.5}, "rita.requester@example.org")
    c = app.service.show(r.id).checkpoint("m2:P1D")
    assert (c.status, c.value, c.answers) == (CheckpointStatus.CLOSED, 4.5, [])
    assert app.service.history(r.id)[-1].type == "result_recorded"
