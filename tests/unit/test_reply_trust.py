"""Which reply counts (flows.replies), through the application on the in-memory fakes: a reply acts
only with the reply code of the mail it answers, from the address the code was issued to, and
without an SPF/DKIM/DMARC fail from our own receiving server; everything else is quarantined with
the reason and writes nothing, and an approval that did not count asks the sponsor again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from connectors.db.store import ListFilter
from connectors.email.render import message_id_for
from connectors.testing import InMemoryInbox, InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.settings import Settings
from flows.steps import fire_followups, send_outbox, take_in
from tests.builders import ACTOR, REQUESTER, SPONSOR, T0, diagnosis_data, drive_to, intake_data, plan_data, plan_item

MX = "mx.example.org"
FAIL = f"{MX}; spf=fail smtp.mailfrom=example.org; dkim=fail header.d=example.org; dmarc=fail header.from=example.org"
PASS = f"{MX}; dkim=pass header.d=example.org; dmarc=pass header.from=example.org"


@pytest.fixture
def inbox() -> InMemoryInbox:
    return InMemoryInbox()


@pytest.fixture
def sender() -> InMemorySender:
    return InMemorySender()


@pytest.fixture
def app(tmp_path: Path, inbox: InMemoryInbox, sender: InMemorySender) -> Iterator[App]:
    uow = InMemoryUnitOfWork()
    settings = Settings(home=tmp_path, mail_from="ld@example.org", mail_authserv_ids=MX)
    yield bootstrap.compose(settings, store=uow.store, uow=uow, clock=FixedClock(T0), sender=sender,
                            sources=lambda: [inbox])


def reply(body: str, sender: str, message_id: str, *, subject: str = "Re: plan", in_reply_to: str | None = None,
          to: str = "ld@example.org", auth: tuple[str, ...] = ()) -> bytes:
    message = EmailMessage()
    for header in auth:
        message["Authentication-Results"] = header
    message["From"], message["To"], message["Subject"], message["Message-ID"] = sender, to, subject, message_id
    if in_reply_to:
        message["In-Reply-To"] = message["References"] = in_reply_to
    message.set_content(body)
    return message.as_bytes()


def asked(app: App, sender: InMemorySender) -> tuple[int, EmailMessage]:
    """A request whose plan waits for the sponsor, and the approval request mailed to them."""
    request = app.service.submit(intake_data(), ACTOR)
    assert request.id is not None
    app.service.diagnose(request.id, diagnosis_data(), ACTOR)
    app.service.draft_plan(request.id, plan_data(), ACTOR)
    assert send_outbox(app).counts["failed"] == 0
    [mail] = [m for m in sender.deliveries(SPONSOR) if "Please approve" in str(m["Subject"])]
    return request.id, mail


def code_of(mail: EmailMessage) -> str:
    return str(mail["Message-ID"]).strip("<>").split("@")[0]


def approval_requests(app: App, rid: int) -> list[Any]:
    return app.uow.outbox.for_request(rid, ("plan_approval_request",))


def test_the_issues_attack_is_quarantined_and_the_sponsor_is_asked_again(app: App, inbox: InMemoryInbox,
                                                                          sender: InMemorySender) -> None:
    rid, _ = asked(app, sender)
    events = len(app.service.history(rid))
    inbox.add(reply("approve", f"Sam Sponsor <{SPONSOR}>", "<forged-1@evil.test>",
                    subject=f"Re: [ldflow #{rid}] Please approve", auth=(FAIL,)))
    summary = take_in(app)
    assert summary.counts == {"processed": 0, "quarantined": 1, "skipped": 0}
    assert "Authentication-Results report spf=fail" in summary.errors[0] and "dmarc=fail" in summary.errors[0]
    assert app.service.show(rid).plan_approved_by is None
    [quarantined] = app.mail.quarantined()
    assert quarantined.message_id == "<forged-1@evil.test>" and "sent to the sponsor again" in str(quarantined.reason)
    history = app.service.history(rid)
    assert [h.type for h in history[events:]] == ["note_added"]  # why the sponsor is asked again, nothing else
    assert "did not count" in history[-1].payload["text"] and history[-1].actor == "ldflow-pipeline"
    [first, again] = approval_requests(app, rid)
    assert again.notification.to[0].email == SPONSOR and again.notification.context["asked_again"] is True
    send_outbox(app)
    assert len([m for m in sender.deliveries(SPONSOR) if "Please approve" in str(m["Subject"])]) == 2

    # more forgeries: quarantined, and the sponsor is not mailed again and again
    inbox.add(reply("approve", f"Sam Sponsor <{SPONSOR}>", "<forged-2@evil.test>",
                    subject=f"Re: [ldflow #{rid}] Please approve"))
    summary = take_in(app)
    assert summary.counts["quarantined"] == 1 and "carries no reply code" in summary.errors[0]
    assert "sent to the sponsor again already" in summary.errors[0]
    assert len(approval_requests(app, rid)) == 2 and app.service.show(rid).plan_approved_by is None


@pytest.mark.parametrize("where", ["in-reply-to", "quoted", "plus-address"])
def test_the_sponsors_reply_with_the_code_approves(app: App, inbox: InMemoryInbox, sender: InMemorySender,
                                                    where: str) -> None:
    rid, mail = asked(app, sender)
    code = code_of(mail)
    body = "Approved, thanks"
    kwargs: dict[str, Any] = {"auth": (PASS, "attacker.test; dmarc=fail header.from=example.org")}
    if where == "in-reply-to":
        kwargs["in_reply_to"] = str(mail["Message-ID"])
    elif where == "quoted":
        body += f"\n\nOn Monday L&D wrote:\n> Reply code: {code} (it shows the reply is yours)\n"
    else:
        kwargs["to"] = str(mail["Reply-To"])
    inbox.add(reply(body, f"Sam Sponsor <{SPONSOR.upper()}>", "<ok-1@example.org>", **kwargs))
    summary = take_in(app)
    assert summary.counts == {"processed": 1, "quarantined": 0, "skipped": 0}, summary.errors
    request = app.service.show(rid)
    assert request.plan_approved_by == SPONSOR and app.service.history(rid)[-1].actor == SPONSOR


def test_the_code_quoted_from_another_address_is_quarantined(app: App, inbox: InMemoryInbox,
                                                             sender: InMemorySender) -> None:
    rid, mail = asked(app, sender)
    inbox.add(reply(f"approve\n\n> Reply code: {code_of(mail)}", "Mallory <mallory@example.org>", "<m-1@x.test>",
                    in_reply_to=str(mail["Message-ID"])))
    summary = take_in(app)
    assert summary.counts["quarantined"] == 1
    assert f"the reply code was issued to {SPONSOR}, and the reply comes from mallory@example.org" in summary.errors[0]
    assert app.service.show(rid).plan_approved_by is None and len(approval_requests(app, rid)) == 2
    # a code that was never issued, and a well-formed one for another recipient, do not count either
    forged = code_of(mail)[:-4] + "aaaa"
    inbox.add(reply(f"approve\n> Reply code: {forged}", f"Sam <{SPONSOR}>", "<m-2@x.test>"))
    assert "is not one ldflow issued" in take_in(app).errors[0]
    assert app.service.show(rid).plan_approved_by is None


def test_an_approval_answering_an_older_plan_does_not_approve_the_new_one(app: App, inbox: InMemoryInbox,
                                                                          sender: InMemorySender) -> None:
    rid, mail = asked(app, sender)
    app.service.draft_plan(rid, plan_data(costs=False), ACTOR)  # redrafted before the sponsor answered
    inbox.add(reply("approve", f"Sam <{SPONSOR}>", "<old-1@example.org>", in_reply_to=str(mail["Message-ID"])))
    summary = take_in(app)
    assert "a plan that is no longer the one waiting" in summary.errors[0]
    assert app.service.show(rid).plan_approved_by is None


def test_a_reply_to_a_mail_sent_before_reply_codes_is_quarantined_saying_so(app: App, inbox: InMemoryInbox) -> None:
    request = app.service.submit(intake_data(), ACTOR)
    rid = request.id
    assert rid is not None
    app.service.diagnose(rid, diagnosis_data(), ACTOR)
    app.service.draft_plan(rid, plan_data(), ACTOR)
    # an approval request an earlier ldflow sent: Message-ID sha256(key), no code
    rows = app.uow.outbox.claim("old", T0, timedelta(minutes=5))
    [row] = [r for r in rows if r.template == "plan_approval_request"]
    old_id = message_id_for(row.key, "example.org")
    assert app.uow.outbox.mark_sent(row.id, "old", message_id=old_id, now=T0, recipients_done=[SPONSOR])
    inbox.add(reply("Approved.", f"Sam <{SPONSOR}>", "<legacy-1@example.org>", in_reply_to=old_id))
    summary = take_in(app)
    assert "sent before reply codes" in summary.errors[0] and "sent to the sponsor again" in summary.errors[0]
    assert app.service.show(rid).plan_approved_by is None
    assert approval_requests(app, rid)[-1].status.value == "pending"  # the new one, with a code, on its way


def surveyed(app: App, sender: InMemorySender) -> tuple[int, list[EmailMessage]]:
    """A delivered request whose 1-day survey went to its three stakeholders, one mail each."""
    plan = plan_data(items=[plan_item("m2", level=1, baseline=False, metric="relevance rating", unit="1-5",
                                      target={"value": 4.2, "date": "2026-06-30"}, instrument="survey",
                                      respondent="stakeholder", checkpoints=["P1D"])])
    r = app.service.submit(intake_data(), ACTOR)
    assert r.id is not None
    app.service.diagnose(r.id, diagnosis_data(), ACTOR)
    app.service.draft_plan(r.id, plan, ACTOR)
    app.service.approve_plan(r.id, {"approver": SPONSOR}, SPONSOR)
    drive_to(app.service, "delivered", request_id=r.id)
    app.clock.set(T0.replace(month=4, day=21, hour=10))  # type: ignore[attr-defined]
    fire_followups(app)
    assert send_outbox(app).counts["failed"] == 0
    surveys = [m for m in sender.messages if "Quick check-in" in str(m["Subject"])]
    return r.id, surveys


def test_a_survey_goes_to_each_respondent_with_their_own_code(app: App, sender: InMemorySender) -> None:
    _, surveys = surveyed(app, sender)
    assert sorted(m["To"].addresses[0].addr_spec for m in surveys) == sorted(
        [SPONSOR, REQUESTER, "hana.hr@example.org"])
    assert all(len(m["To"].addresses) == 1 for m in surveys)
    assert len({str(m["Message-ID"]) for m in surveys}) == 3 and len({str(m["Reply-To"]) for m in surveys}) == 3


def test_a_strangers_survey_answer_is_quarantined_and_the_respondents_counts(app: App, inbox: InMemoryInbox,
                                                                             sender: InMemorySender) -> None:
    rid, surveys = surveyed(app, sender)
    [hana] = [m for m in surveys if "hana" in str(m["To"])]
    tag = f"Re: [ldflow #{rid}] Quick check-in"
    inbox.add(reply("1", "Mallory <mallory@example.org>", "<s-1@x.test>", subject=tag))
    inbox.add(reply("1", "Mallory <mallory@example.org>", "<s-2@x.test>", subject=tag,
                    in_reply_to=str(hana["Message-ID"])))
    summary = take_in(app)
    assert summary.counts["quarantined"] == 2 and "carries no reply code" in summary.errors[0]
    assert "issued to hana.hr@example.org" in summary.errors[1]
    assert app.service.show(rid).checkpoint("m2:P1D").value is None
    inbox.add(reply("4.5 - useful", "Hana HR <hana.hr@example.org>", "<s-3@example.org>", subject=tag,
                    in_reply_to=str(hana["Message-ID"]), auth=(PASS,)))
    assert take_in(app).counts["processed"] == 1
    c = app.service.show(rid).checkpoint("m2:P1D")  # one answer of three: counted, the survey still open
    assert [(a.email, a.value, a.note) for a in c.answers] == [("hana.hr@example.org", 4.5, "useful")]
    assert c.value is None and app.service.history(rid)[-1].actor == "hana.hr@example.org"


def test_the_owner_records_a_result_in_reply_to_the_to_do_but_not_an_approval(app: App, inbox: InMemoryInbox,
                                                                              sender: InMemorySender) -> None:
    r = drive_to(app.service, "delivered")
    app.clock.set(T0.replace(month=5, day=20, hour=10))  # type: ignore[attr-defined]  # m1:P30D is due
    fire_followups(app)
    send_outbox(app)
    [todo] = [m for m in sender.deliveries("olga.owner@example.org") if "Collect" in str(m["Subject"])
              and "30-day" in str(m["Subject"])]
    inbox.add(reply("approve", "Olga Owner <olga.owner@example.org>", "<t-1@example.org>",
                    in_reply_to=str(todo["Message-ID"])))
    assert "an approval in reply to a checkpoint_reminder mail" in take_in(app).errors[0]
    inbox.add(reply("71%", "Olga Owner <olga.owner@example.org>", "<t-2@example.org>",
                    in_reply_to=str(todo["Message-ID"])))
    assert take_in(app).counts["processed"] == 1
    assert app.service.show(r.id).checkpoint("m1:P30D").value == 71.0


def test_a_note_without_a_code_counts_only_from_the_requests_people(app: App, inbox: InMemoryInbox) -> None:
    rid = app.service.submit(intake_data(), ACTOR).id
    tag = f"Re: [ldflow #{rid}] We've got your request"
    inbox.add(reply("Please call me on Monday.", f"Rita <{REQUESTER}>", "<n-1@example.org>", subject=tag))
    inbox.add(reply("Click http://evil.test", "Mallory <mallory@example.org>", "<n-2@x.test>", subject=tag))
    inbox.add(reply("Call me", f"Rita <{REQUESTER}>", "<n-3@x.test>", subject=tag, auth=(FAIL,)))
    summary = take_in(app)
    assert (summary.counts["processed"], summary.counts["quarantined"]) == (1, 2)
    notes = [h for h in app.service.history(rid) if h.type == "note_added"]
    assert [n.payload["text"] for n in notes] == ["Please call me on Monday."]
    assert notes[0].payload["source"] == f"e-mail from {REQUESTER} (no reply code)"


# --- the acknowledgement of a mailed-in request -----------------------------------------------------


def acknowledged(app: App, sender: InMemorySender, raw: bytes, inbox: InMemoryInbox) -> tuple[bool, Any]:
    inbox.add(raw)
    assert take_in(app).counts["processed"] == 1
    send_outbox(app)
    [row] = app.service.list(ListFilter())[0][-1:]
    return bool([m for m in sender.messages if "We've got your request" in str(m["Subject"])]), row


@pytest.mark.parametrize("who, auth, expected", [
    ("Nora <nora@example.org>", (), True),  # the team's own domain (the default trusted domain)
    ("Nora <nora@partner.test>", (), False),  # unknown, unauthenticated
    ("Nora <nora@partner.test>", (f"{MX}; dmarc=pass header.from=partner.test",), True),  # authenticated
    ("Nora <nora@partner.test>", ("attacker.test; dmarc=pass header.from=partner.test",), False),  # forged header
    ("Nora <nora@example.org>", (FAIL,), False),  # our own domain, forged
])
def test_the_acknowledgement_goes_only_to_an_authenticated_or_trusted_sender(
        app: App, inbox: InMemoryInbox, sender: InMemorySender, who: str, auth: tuple[str, ...],
        expected: bool) -> None:
    raw = reply("We need a training on pricing, see http://evil.test", who, "<in-1@partner.test>",
                subject="Training please", auth=auth)
    sent, row = acknowledged(app, sender, raw, inbox)
    assert sent is expected
    assert row.state == "received"  # taken in either way
    notes = " ".join(str(h.payload) for h in app.service.history(row.id))
    assert ("No acknowledgement was sent" in notes) is (not expected)


def test_a_refusal_part_way_retries_the_survey_for_that_respondent_only(app: App, sender: InMemorySender) -> None:
    from connectors.ports import Refusal

    sender.refuse["hana.hr@example.org"] = Refusal(451, "mailbox busy")
    rid, surveys = surveyed(app, sender)
    assert sorted(m["To"].addresses[0].addr_spec for m in surveys) == sorted([SPONSOR, REQUESTER])
    [row] = app.uow.outbox.for_request(rid, ("survey",))
    assert row.status.value == "pending" and row.recipients_done == {SPONSOR, REQUESTER}
    del sender.refuse["hana.hr@example.org"]
    app.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    assert send_outbox(app).counts["sent"] >= 1
    again = [m for m in sender.messages if "Quick check-in" in str(m["Subject"])]
    assert [m["To"].addresses[0].addr_spec for m in again[len(surveys):]] == ["hana.hr@example.org"]
