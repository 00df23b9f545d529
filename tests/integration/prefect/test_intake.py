"""The intake step (what the ``intake`` flow's task runs): drop-folder intakes and e-mail replies.

Plain calls of ``flows.steps.take_in`` on a SQLite app: no Prefect run needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from connectors.db.store import ListFilter
from flows import bootstrap
from flows.clock import FixedClock
from flows.settings import Settings
from tests.builders import ACTOR, SPONSOR, T0, diagnosis_data, drive_to, intake_data, plan_data


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Any]:
    app = bootstrap.build(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ldflow.db'}"),
                          clock=FixedClock(T0))
    yield app
    app.close()


def _drop(rt: Any, name: str, data: bytes | str) -> Path:
    folder = rt.settings.drop_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _sent(rt: Any, key: str) -> EmailMessage:
    """Send the outbox, then read back the e-mail written for ``key``."""
    from flows.steps import send_outbox

    send_outbox(rt)
    for path in rt.settings.outbox_dir.glob("*.eml"):
        msg = BytesParser(policy=default_policy).parsebytes(path.read_bytes())
        if msg["X-Ldflow-Key"] == key:
            return msg  # type: ignore[return-value]
    raise AssertionError(f"no e-mail for {key}")


def _reply(to: EmailMessage, sender: str, body: str, message_id: str) -> bytes:
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = str(to["From"])
    reply["Subject"] = "Re: " + str(to["Subject"])
    reply["Message-ID"] = message_id
    reply["In-Reply-To"] = str(to["Message-ID"])
    reply["References"] = str(to["Message-ID"])
    reply.set_content(body)
    return reply.as_bytes()


def test_json_and_yaml_intakes_become_requests_once(rt: Any) -> None:
    from flows.steps import take_in

    _drop(rt, "a.json", json.dumps(intake_data(title="Negotiation skills for buyers")))
    _drop(rt, "b.yaml", "title: Excel for planners\nrequester: {name: Ann, email: ann@example.org}\n"
                        "sponsor: {name: Bo, email: bo@example.org}\nrequested_solution: a course\n")
    summary = take_in(rt)
    assert summary.counts == {"processed": 2, "quarantined": 0, "skipped": 0}
    titles = sorted(r.title for r in rt.service.list(ListFilter())[0])
    assert titles == ["Excel for planners", "Negotiation skills for buyers"]
    assert sorted(p.name for p in (rt.settings.drop_dir / "processed").iterdir()) == ["a.json", "b.yaml"]
    assert take_in(rt).counts == {"processed": 0, "quarantined": 0, "skipped": 0}
    _drop(rt, "a-again.json", json.dumps(intake_data(title="Negotiation skills for buyers")))
    take_in(rt)  # the same content dropped twice is taken in once: recognised and filed away
    assert rt.service.list(ListFilter())[1] == 2
    assert (rt.settings.drop_dir / "processed" / "a-again.json").exists()


def test_an_invalid_intake_is_quarantined_with_every_problem_named(rt: Any) -> None:
    from flows.steps import take_in

    _drop(rt, "bad.json", json.dumps({"title": "Hi", "sponsor": {"name": "X", "email": "not-an-address"}}))
    summary = take_in(rt)
    assert summary.counts["quarantined"] == 1 and summary.counts["processed"] == 0
    reason = (rt.settings.drop_dir / "quarantine" / "bad.json.reason.txt").read_text()
    for field in ("title", "requester", "sponsor.email", "requested_solution"):
        assert field in reason
    assert rt.service.list(ListFilter())[1] == 0


def test_the_sponsor_approves_the_plan_by_replying(rt: Any) -> None:
    from flows.steps import take_in

    r = rt.service.submit(intake_data(), ACTOR)
    rt.service.diagnose(r.id, diagnosis_data(), ACTOR)
    rt.service.draft_plan(r.id, plan_data(), ACTOR)
    request_mail = _sent(rt, f"{r.id}:plan_approval_request:v3")
    _drop(rt, "reply.eml", _reply(request_mail, f"Sam Sponsor <{SPONSOR}>", "Approved.\n\nSam\n",
                                  "<approve-1@example.org>"))
    assert take_in(rt).counts["processed"] == 1
    approved = rt.service.show(r.id)
    assert approved.plan_approved_by == SPONSOR
    assert rt.service.history(r.id)[-1].actor == SPONSOR


def test_an_approval_from_someone_else_is_quarantined_not_applied(rt: Any) -> None:
    from flows.steps import take_in

    r = rt.service.submit(intake_data(), ACTOR)
    rt.service.diagnose(r.id, diagnosis_data(), ACTOR)
    rt.service.draft_plan(r.id, plan_data(), ACTOR)
    request_mail = _sent(rt, f"{r.id}:plan_approval_request:v3")
    _drop(rt, "reply.eml", _reply(request_mail, "Mallory <mallory@example.org>", "approved",
                                  "<approve-2@example.org>"))
    summary = take_in(rt)
    assert summary.counts["quarantined"] == 1
    assert f"the reply code was issued to {SPONSOR}, and the reply comes from mallory@example.org" \
        in summary.errors[0]
    assert rt.service.show(r.id).plan_approved_by is None


def test_a_number_in_reply_to_a_survey_records_that_checkpoint(rt: Any) -> None:
    from flows.steps import fire_followups, take_in

    r = drive_to(rt.service, "delivered")
    rt.clock.set(T0.replace(month=4, day=21, hour=10))  # m2:P1D is due
    fire_followups(rt)
    survey = _sent(rt, f"{r.id}:survey:m2:P1D")
    _drop(rt, "answer.eml", _reply(survey, "Rita Requester <rita.requester@example.org>",
                                   "4.5 - very relevant\n\nOn Tue the L&D team wrote:\n> Quick check-in",
                                   "<answer-1@example.org>"))
    assert take_in(rt).counts["processed"] == 1
    c = rt.service.show(r.id).checkpoint("m2:P1D")
    assert (c.status.value, c.value) == ("closed", 4.5)  # the one respondent answered: closed with it
    assert [(a.email, a.value, a.note, a.via) for a in c.answers] == [
        ("rita.requester@example.org", 4.5, "very relevant", "reply")]
    rt.clock.advance(timedelta(days=10))
    assert fire_followups(rt).counts["reminded"] == 0  # answered: no reminder


def test_an_unmatched_mail_is_quarantined_with_the_reason(rt: Any) -> None:
    from flows.steps import take_in

    mail = EmailMessage()
    mail["From"] = "someone@example.org"
    mail["To"] = "ldflow@localhost"
    mail["Subject"] = "hello"
    mail["Message-ID"] = "<hello-1@example.org>"
    mail.set_content("> Can we talk about training?\n")  # only quoted text: nothing to take in as a request
    _drop(rt, "hello.eml", mail.as_bytes())
    summary = take_in(rt)
    assert summary.counts["quarantined"] == 1
    assert "not a reply to a message ldflow sent" in summary.errors[0]


def test_a_new_request_can_be_mailed_in_as_yaml(rt: Any) -> None:
    from flows.steps import take_in

    mail = EmailMessage()
    mail["From"] = "Nora Lead <nora.lead@example.org>"
    mail["To"] = "ldflow@localhost"
    mail["Subject"] = "Presentation skills for team leads"
    mail["Message-ID"] = "<new-1@example.org>"
    mail.set_content("sponsor: {name: Sam Sponsor, email: sam.sponsor@example.org}\n"
                     "requested_solution: a one-day workshop\n")
    _drop(rt, "new.eml", mail.as_bytes())
    assert take_in(rt).counts["processed"] == 1
    (summary,), _ = rt.service.list(ListFilter())
    assert (summary.title, summary.requester) == ("Presentation skills for team leads", "nora.lead@example.org")


def test_a_yaml_alias_bomb_by_mail_is_quarantined_not_expanded(rt: Any) -> None:
    from flows.steps import take_in

    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nrequested_solution: *c\n"
    mail = EmailMessage()
    mail["From"] = "x@example.org"
    mail["To"] = "ldflow@localhost"
    mail["Subject"] = "lol"
    mail["Message-ID"] = "<bomb-1@example.org>"
    mail.set_content(bomb)
    _drop(rt, "bomb.eml", mail.as_bytes())
    summary = take_in(rt)
    assert summary.counts["quarantined"] == 1 and summary.counts["processed"] == 0
