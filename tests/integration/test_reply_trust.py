"""Who a reply is from, end to end over real servers: ldflow mails the approval request and the
survey through SMTP (aiosmtpd on loopback), the replies arrive in an IMAP mailbox (the Dovecot test
instance; skips without it unless LDFLOW_TEST_IMAP=1) with the Authentication-Results header our
receiving server would write, and ``take_in`` reads them from there (SQLite app, the pipeline's steps).

The issue's attack (From: the sponsor, the guessable subject tag, "approve", SPF/DKIM/DMARC fail)
is quarantined and the sponsor asked again; a stranger's survey answer is quarantined; the
sponsor's genuine reply with the code approves; the code quoted from another address does not."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.db.tables import inbound
from flows import bootstrap
from flows.clock import FixedClock
from flows.settings import Settings
from flows.steps import fire_followups, send_outbox, take_in
from tests.builders import ACTOR, REQUESTER, SPONSOR, T0, diagnosis_data, drive_to, intake_data, plan_data
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import IMAP_HOST, IMAP_PASSWORD, IMAP_PORT, IMAP_USER, ImapBox, SmtpServer

imap_box = cm.imap_box
smtp_server = cm.smtp_server

pytestmark = pytest.mark.imap

MX = "mx.ld.example.org"
FAILED = (f"{MX}; spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=example.org; "
          "dkim=fail (signature did not verify) header.d=example.org; dmarc=fail (p=none) header.from=example.org")
PASSED = f"{MX}; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org; dmarc=pass header.from=example.org"


@pytest.fixture
def rt(tmp_path: Path, imap_box: ImapBox, smtp_server: SmtpServer) -> Iterator[Any]:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ldflow.db'}",
                        mail_from="ld@ld.example.org", smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                        smtp_security="none",
                        imap_host=IMAP_HOST, imap_port=IMAP_PORT, imap_security="none", imap_username=IMAP_USER,
                        imap_password=IMAP_PASSWORD, imap_mailbox=imap_box.mailbox, mail_authserv_ids=MX)
    app = bootstrap.build(settings, clock=FixedClock(T0))
    yield app
    app.close()


def reply(to: EmailMessage | None, sender: str, body: str, message_id: str, *, auth: str | None = None,
          subject: str | None = None) -> bytes:
    message = EmailMessage()
    if auth:  # what our receiving server prepends
        message["Authentication-Results"] = auth
    message["From"] = sender
    message["To"] = str(to["Reply-To"] or to["From"]) if to is not None else "ld@ld.example.org"
    message["Subject"] = subject or "Re: " + str(to["Subject"] if to is not None else "")
    message["Message-ID"] = message_id
    if to is not None:
        message["In-Reply-To"] = message["References"] = str(to["Message-ID"])
    message.set_content(body)
    return message.as_bytes()


def quarantine_reasons(rt: Any) -> dict[str, str]:
    with rt.engine.connect() as conn:
        rows = conn.execute(select(inbound.c.message_id, inbound.c.reason).where(inbound.c.status == "quarantined"))
        return {r.message_id: r.reason for r in rows}


def approval_requests(smtp_server: SmtpServer) -> list[EmailMessage]:
    return [r.message for r in smtp_server.handler.deliveries(SPONSOR) if "Please approve" in str(r.message["Subject"])]


def test_approval_by_reply_counts_only_from_the_sponsor_with_the_code(rt: Any, imap_box: ImapBox,
                                                                      smtp_server: SmtpServer) -> None:
    request = rt.service.submit(intake_data(), ACTOR)
    rt.service.diagnose(request.id, diagnosis_data(), ACTOR)
    rt.service.draft_plan(request.id, plan_data(), ACTOR)
    assert send_outbox(rt).counts["sent"] >= 1
    [asked] = approval_requests(smtp_server)
    code = str(asked["Message-ID"]).strip("<>").split("@")[0]
    assert code.startswith(f"ldr-{request.id}-") and str(asked["Reply-To"]).endswith(f"ld+{code}@ld.example.org>")
    assert f"Reply code: {code}" in asked.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    box = imap_box.mailbox
    # 1. the attack: From the sponsor, the guessed tag, "approve", and our server saw it fail
    imap_box.admin.append(box, reply(None, f"Sam Sponsor <{SPONSOR}>", "approve\n", "<attack-1@evil.test>",
                                     auth=FAILED, subject=f"Re: [ldflow #{request.id}] plan"))
    # 2. the sponsor's code quoted by someone else (a forwarded mail answered by a colleague)
    imap_box.admin.append(box, reply(asked, "Hana HR <hana.hr@example.org>",
                                     f"approved\n\n> Reply code: {code}\n", "<colleague-1@example.org>",
                                     auth=PASSED.replace("sam", "hana")))
    summary = take_in(rt)
    assert summary.counts == {"processed": 0, "quarantined": 2, "skipped": 0}, summary.errors
    reasons = quarantine_reasons(rt)
    assert "spf=fail" in reasons["<attack-1@evil.test>"] and "dmarc=fail" in reasons["<attack-1@evil.test>"]
    assert f"issued to {SPONSOR}, and the reply comes from hana.hr@example.org" in reasons["<colleague-1@example.org>"]
    assert rt.service.show(request.id).plan_approved_by is None
    # the sponsor is sent the approval request again (once), with a code of its own
    send_outbox(rt)
    first, again = approval_requests(smtp_server)
    assert again["Message-ID"] != first["Message-ID"] and str(again["Message-ID"]).startswith(f"<ldr-{request.id}-")

    # 3. the sponsor's genuine reply to the mail, through the plus-addressed Reply-To: approves
    imap_box.admin.append(box, reply(again, f"Sam Sponsor <{SPONSOR}>", "Approved.\n\nSam\n", "<sam-1@example.org>",
                                     auth=PASSED))
    summary = take_in(rt)
    assert summary.counts == {"processed": 1, "quarantined": 0, "skipped": 0}, summary.errors
    approved = rt.service.show(request.id)
    assert approved.plan_approved_by == SPONSOR and rt.service.history(request.id)[-1].actor == SPONSOR


def test_a_strangers_survey_answer_is_quarantined_and_the_respondents_is_recorded(rt: Any, imap_box: ImapBox,
                                                                                 smtp_server: SmtpServer) -> None:
    r = drive_to(rt.service, "delivered")
    rt.clock.set(T0.replace(month=4, day=21, hour=10))  # m2:P1D is due: the learner's survey
    fire_followups(rt)
    send_outbox(rt)
    [survey] = [d.message for d in smtp_server.handler.deliveries(REQUESTER) if "Quick check-in" in
                str(d.message["Subject"])]
    box = imap_box.mailbox
    # a stranger answers with the guessable tag, and with the survey's Message-ID (seen in a forward)
    imap_box.admin.append(box, reply(None, "Mallory <mallory@evil.test>", "1\n", "<m-1@evil.test>",
                                     subject=f"Re: [ldflow #{r.id}] Quick check-in"))
    imap_box.admin.append(box, reply(survey, "Mallory <mallory@evil.test>", "1\n", "<m-2@evil.test>"))
    summary = take_in(rt)
    assert summary.counts == {"processed": 0, "quarantined": 2, "skipped": 0}, summary.errors
    reasons = quarantine_reasons(rt)
    assert "carries no reply code" in reasons["<m-1@evil.test>"]
    assert f"issued to {REQUESTER}" in reasons["<m-2@evil.test>"]
    assert rt.service.show(r.id).checkpoint("m2:P1D").value is None
    imap_box.admin.append(box, reply(survey, f"Rita Requester <{REQUESTER}>", "4.5 - very relevant\n",
                                     "<rita-1@example.org>"))
    assert take_in(rt).counts["processed"] == 1
    assert rt.service.show(r.id).checkpoint("m2:P1D").value == 4.5
