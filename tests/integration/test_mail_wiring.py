"""The pipeline's mail wiring against real servers: CalDAV publishing in ``dispatch`` (Radicale on
loopback), the IMAP ``last_uid`` in ``intake`` (the Dovecot test instance; skips without it unless
LDFLOW_TEST_IMAP=1), and plain-language requests mailed in through the drop folder.

The step functions (``take_in``, ``fire_followups``, ``send_outbox`` of ``flows.steps``) run on a SQLite
app: no Prefect run is needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.calendar.caldav_client import CaldavPublisher
from connectors.db.store import ListFilter
from connectors.db.tables import inbound
from flows import bootstrap
from flows.clock import FixedClock
from flows.settings import Settings
from tests.builders import T0, drive_to
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import IMAP_HOST, IMAP_PASSWORD, IMAP_PORT, IMAP_USER, ImapBox, Radicale

# fixtures shared with the other mail/calendar test modules
radicale = cm.radicale
radicale_server = cm.radicale_server
imap_box = cm.imap_box


def make_app(tmp_path: Path, **settings: Any) -> Any:
    s = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ldflow.db'}", mail_from="ld@example.org",
                 **settings)
    return bootstrap.build(s, clock=FixedClock(T0))


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Any]:
    app = make_app(tmp_path)
    yield app
    app.close()


def mail(subject: str, body: str, *, sender: str = "Nora Lead <nora.lead@example.org>",
         message_id: str = "<new-1@example.org>") -> bytes:
    message = EmailMessage()
    if sender:
        message["From"] = sender
    message["To"] = "ld@example.org"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = "Mon, 02 Mar 2026 09:00:00 +0000"
    message.set_content(body)
    return message.as_bytes()


def drop(rt: Any, name: str, raw: bytes) -> Path:
    folder = rt.settings.drop_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(raw)
    return path


def requests_of(rt: Any) -> list[Any]:
    rows, _ = rt.service.list(ListFilter())
    return [rt.service.show(r.id) for r in rows]


# --- CalDAV ------------------------------------------------------------------------------------------


def test_dispatch_publishes_the_checkpoint_todo_to_caldav_and_mails_it(tmp_path: Path, radicale: Radicale) -> None:
    from flows.steps import fire_followups, send_outbox

    rt = make_app(tmp_path, caldav_url=radicale.url, caldav_username=radicale.username,
                      caldav_password=radicale.password)
    try:
        request = drive_to(rt.service, "delivered")
        first = min(request.checkpoints, key=lambda c: c.due_at)
        rt.clock.set(first.due_at + timedelta(hours=1))
        assert fire_followups(rt).counts["sent"] == 1
        summary = send_outbox(rt)
        assert summary.counts["published"] == 1 and summary.errors == []
        calendar = CaldavPublisher(radicale.url, radicale.username, radicale.password, timeout=10, auth_type="basic")
        uid = f"ldflow-{request.id}-{first.item_id}-{first.offset}-todo@ldflow"
        assert calendar.uids() == [uid]
        stored = calendar.get(uid)
        assert stored is not None
        [todo] = stored[0].walk("VTODO")
        assert "olga.owner@example.org" in str(todo["ATTENDEE"]).lower()
        # ... and mailed as well (the embedded file outbox)
        mailed = [p.read_text() for p in rt.settings.outbox_dir.glob("*.eml")]
        assert any("checkpoint_reminder" in text and "BEGIN:VTODO" in text for text in mailed)
        # a second pass publishes nothing again
        assert send_outbox(rt).counts["published"] == 0 and calendar.uids() == [uid]
    finally:
        rt.close()


def test_an_unreachable_calendar_retries_the_row_instead_of_mailing_it(tmp_path: Path) -> None:
    from connectors.db.tables import outbox
    from flows.steps import fire_followups, send_outbox

    rt = make_app(tmp_path, caldav_url=f"http://127.0.0.1:{cm.free_port()}/ld/training/")
    try:
        request = drive_to(rt.service, "delivered")
        rt.clock.set(min(c.due_at for c in request.checkpoints) + timedelta(hours=1))
        fire_followups(rt)
        summary = send_outbox(rt)
        assert summary.counts["retried"] == 1
        assert any("calendar publishing failed" in e for e in summary.errors)
        with rt.engine.connect() as conn:
            status = dict(conn.execute(select(outbox.c.template, outbox.c.status)).all())
        assert status["checkpoint_reminder"] == "pending" and status["survey"] == "sent"
    finally:
        rt.close()


# --- plain-language requests through the drop folder ------------------------------------------------------


def test_a_plain_email_becomes_a_received_request_once(rt: Any) -> None:
    from flows.steps import take_in

    body = ("Hi L&D team,\n\nwe need a training for the sales meeting on 12 May: our reps lose deals "
            "at the pricing talk.\n\nThanks,\nNora\n\n-- \nNora Lead | Sales\n\n"
            "> an older thread quoted below\n> should not be kept\n")
    raw = mail("Fwd: RE: Training for the sales meeting", body)
    drop(rt, "nora.eml", raw)
    summary = take_in(rt)
    assert summary.counts == {"processed": 1, "quarantined": 0, "skipped": 0}, summary.errors
    [request] = requests_of(rt)
    intake = request.intake
    assert request.state.value == "received"
    assert intake.title == "Training for the sales meeting"
    assert (intake.requester.name, intake.requester.email) == ("Nora Lead", "nora.lead@example.org")
    assert intake.sponsor == intake.requester
    assert intake.requested_solution.startswith("Hi L&D team,")
    assert "pricing talk" in intake.requested_solution
    assert "Nora Lead | Sales" not in intake.requested_solution and "older thread" not in intake.requested_solution
    notes = [r for r in rt.service.history(request.id) if "Message-ID <new-1@example.org>" in str(r)]
    assert notes, "the history records where the request came from"
    # the acknowledgement goes to the requester
    from connectors.db.tables import outbox

    with rt.engine.connect() as conn:
        assert conn.execute(select(outbox.c.template).where(outbox.c.request_id == request.id)).scalars().all() \
            == ["intake_acknowledgement"]

    # the same mail dropped again (a second copy, another file name): recognised, not a second request
    drop(rt, "nora-again.eml", raw)
    again = take_in(rt)
    assert (again.counts["processed"], again.counts["quarantined"]) == (0, 0)
    assert len(requests_of(rt)) == 1
    assert (rt.settings.drop_dir / "processed" / "nora-again.eml").exists()  # moved out of the way


def test_the_acknowledgement_of_a_mailed_in_request_is_threaded_under_it(rt: Any) -> None:
    from email import message_from_bytes
    from email.policy import default

    from flows.steps import send_outbox, take_in

    raw = mail("Training for the sales meeting", "We need a training for the sales meeting, please.",
               message_id="<nora-7@mail.example.org>")
    raw = raw.replace(b"Message-ID:", b"References: <older@mail.example.org>\nMessage-ID:", 1)
    drop(rt, "nora.eml", raw)
    assert take_in(rt).counts["processed"] == 1
    assert send_outbox(rt).counts["sent"] == 1
    [eml] = list(rt.settings.outbox_dir.glob("*.eml"))
    sent = message_from_bytes(eml.read_bytes(), policy=default)
    assert sent["In-Reply-To"] == "<nora-7@mail.example.org>"
    assert sent["References"] == "<older@mail.example.org> <nora-7@mail.example.org>"
    assert sent["To"] == "Nora Lead <nora.lead@example.org>"
    assert str(sent["Subject"]).startswith("[ldflow #") and "Training for the sales meeting" in sent["Subject"]


def test_short_subject_long_body_and_colon_lines(rt: Any) -> None:
    from flows.intake import MAX_MAILED_SOLUTION
    from flows.steps import take_in

    long_body = "audience: about 40 reps\nWe need help with pricing.\n" + "x" * 9000
    drop(rt, "a.eml", mail("Hi", long_body, sender="nora.lead@example.org"))
    assert take_in(rt).counts["processed"] == 1
    [request] = requests_of(rt)
    assert request.intake.title == "Request from nora.lead"
    assert request.intake.requested_solution.startswith("audience: about 40 reps")
    assert len(request.intake.requested_solution) <= MAX_MAILED_SOLUTION + 10


def test_empty_body_or_no_sender_stays_quarantined_with_the_reason(rt: Any) -> None:
    from flows.steps import take_in

    drop(rt, "a-empty.eml", mail("Training please", "> only a quote\n", message_id="<empty@example.org>"))
    drop(rt, "b-nofrom.eml", mail("Training please", "We need a course.", sender="",
                                  message_id="<nofrom@example.org>"))
    summary = take_in(rt)
    assert summary.counts == {"processed": 0, "quarantined": 2, "skipped": 0}
    assert requests_of(rt) == []
    reasons = " | ".join(summary.errors)
    assert "body is empty" in reasons and "From" in reasons
    quarantine = rt.settings.drop_dir / "quarantine"
    assert "body is empty" in (quarantine / "a-empty.eml.reason.txt").read_text()


def test_a_yaml_intake_by_mail_still_works(rt: Any) -> None:
    from flows.steps import take_in

    drop(rt, "y.eml", mail("Presentation skills", "sponsor: {name: Sam Sponsor, email: sam@example.org}\n"
                                                  "requested_solution: a one-day workshop\n"))
    assert take_in(rt).counts["processed"] == 1
    [request] = requests_of(rt)
    assert (request.intake.sponsor.email, request.intake.requested_solution) == ("sam@example.org",
                                                                                 "a one-day workshop")


# --- IMAP last_uid -----------------------------------------------------------------------------------------


def _uidvalidity(box: ImapBox) -> int:
    client = box.admin.client
    status, data = client.status(box.mailbox, "(UIDVALIDITY)")
    assert status == "OK", data
    raw = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
    return int(raw.split("UIDVALIDITY")[1].strip(" )"))


@pytest.mark.imap
def test_imap_takes_mail_above_the_last_recorded_uid_even_if_read(tmp_path: Path, imap_box: ImapBox) -> None:
    from flows.steps import take_in

    rt = make_app(tmp_path, imap_host=IMAP_HOST, imap_port=IMAP_PORT, imap_security="none",
                      imap_username=IMAP_USER, imap_password=IMAP_PASSWORD, imap_mailbox=imap_box.mailbox)
    try:
        imap_box.admin.append(imap_box.mailbox, mail("Excel for planners", "We need Excel training.",
                                                     message_id="<a@example.org>"))
        assert take_in(rt).counts["processed"] == 1
        # someone opens the next mail in their mail client before the pipeline runs: UNSEEN misses
        # it, the last recorded UID does not
        imap_box.admin.append(imap_box.mailbox, mail("Negotiation skills", "Our buyers need it.",
                                                     message_id="<b@example.org>"), flags="(\\Seen)")
        summary = take_in(rt)
        assert summary.counts == {"processed": 1, "quarantined": 0, "skipped": 0}, summary.errors
        assert take_in(rt).counts == {"processed": 0, "quarantined": 0, "skipped": 0}
        assert sorted(r.intake.title for r in requests_of(rt)) == ["Excel for planners", "Negotiation skills"]

        # the mailbox is recreated (restore): UIDVALIDITY changes, the old mail comes back unseen
        old = _uidvalidity(imap_box)
        for _ in range(5):
            imap_box.admin.delete(imap_box.mailbox)
            imap_box.admin.create(imap_box.mailbox)
            if _uidvalidity(imap_box) != old:
                break
            time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
        assert _uidvalidity(imap_box) != old
        imap_box.admin.append(imap_box.mailbox, mail("Excel for planners", "We need Excel training.",
                                                     message_id="<a@example.org>"))
        imap_box.admin.append(imap_box.mailbox, mail("Coaching for new managers", "Five new team leads.",
                                                     message_id="<c@example.org>"))
        summary = take_in(rt)
        assert summary.counts["processed"] == 1 and summary.counts["quarantined"] == 0, summary.errors
        assert len(requests_of(rt)) == 3  # the restored old mail is recognised by its Message-ID
        assert all("\\Seen" in flags for flags in imap_box.admin.flags(imap_box.mailbox).values())
        with rt.engine.connect() as conn:
            generations = set(conn.execute(select(inbound.c.uidvalidity).where(
                inbound.c.source == f"imap:{imap_box.mailbox}")).scalars())
        assert generations == {old, _uidvalidity(imap_box)}
    finally:
        rt.close()
