"""Amending the sponsor of a mailed-in request, through the application with the in-memory fakes:
the new sponsor is mailed the approval request, approves by replying to it, and the old sponsor's
reply is refused (quarantined with the reason)."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.testing import InMemoryInbox, InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.settings import Settings
from flows.steps import send_outbox, take_in
from tests.builders import ACTOR, T0, business_goal, diagnosis_data, plan_data

DOMAIN = "example.org"
NORA = "nora.lead@example.org"
LEE = "lee.park@example.org"


@pytest.fixture
def inbox() -> InMemoryInbox:
    return InMemoryInbox()


@pytest.fixture
def sender() -> InMemorySender:
    return InMemorySender()


@pytest.fixture
def app(tmp_path: Path, inbox: InMemoryInbox, sender: InMemorySender) -> Iterator[App]:
    uow = InMemoryUnitOfWork()
    yield bootstrap.compose(Settings(home=tmp_path, mail_from=f"ld@{DOMAIN}"), store=uow.store, uow=uow,
                            clock=FixedClock(T0), sender=sender, sources=lambda: [inbox])


def _mail(subject: str, body: str, sender: str, message_id: str, reply_to: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"], message["Message-ID"] = (
        sender, f"ld@{DOMAIN}", subject, message_id)
    if reply_to:
        message["In-Reply-To"] = message["References"] = reply_to
    message.set_content(body)
    return message.as_bytes()


def test_the_new_sponsor_of_a_mailed_in_request_approves_by_reply_and_the_old_one_is_refused(
        app: App, inbox: InMemoryInbox, sender: InMemorySender) -> None:
    inbox.add(_mail("Training for the sales meeting", "Our reps lose deals at the pricing talk.",
                    f"Nora Lead <{NORA}>", "<new-1@example.org>"))
    assert take_in(app).counts["processed"] == 1
    assert app.service.show(1).intake.sponsor.email == NORA  # the sender, until corrected
    app.service.amend(1, {"reason": "the goal, from the intake call", "business_goal": business_goal()}, ACTOR)
    app.service.diagnose(1, diagnosis_data(), ACTOR)
    app.service.draft_plan(1, plan_data(), ACTOR)  # the approval request goes to the sponsor of the moment
    request = app.service.amend(1, {"reason": "Lee owns the sales number",
                                    "sponsor": {"name": "Lee Park", "email": LEE}}, ACTOR)
    assert send_outbox(app).counts["failed"] == 0
    key = f"1:plan_approval_request:v{request.version}"
    [first] = [m for m, _ in sender.sent if "Please approve" in m["Subject"] and NORA in m["To"]]
    [asked] = [m for m, _ in sender.sent if "Please approve" in m["Subject"] and LEE in m["To"]]
    assert asked["To"].addresses[0].addr_spec == LEE and "Please approve" in asked["Subject"]
    assert first["Message-ID"] != asked["Message-ID"]
    assert app.uow.outbox.by_keys([key])[key].message_id == asked["Message-ID"]
    assert str(asked["Message-ID"]).startswith("<ldr-1-")  # the sponsor's reply code
    assert "Lee" in asked.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    asked_id = str(asked["Message-ID"])
    inbox.add(_mail("Re: plan", "Approved.\n", f"Nora Lead <{NORA}>", "<a-1@example.org>", asked_id))
    inbox.add(_mail("Re: plan", "Approved.\n\nLee", f"Lee Park <{LEE}>", "<a-2@example.org>", asked_id))
    summary = take_in(app)
    assert (summary.counts["processed"], summary.counts["quarantined"]) == (1, 1)
    assert f"the reply code was issued to {LEE}, and the reply comes from {NORA}" in summary.errors[0]
    assert "the approval request was sent to the sponsor again" in summary.errors[0]
    approved = app.service.show(1)
    assert approved.plan_approved_by == LEE and app.service.history(1)[-1].actor == LEE
