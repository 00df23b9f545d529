"""The application layer on the in-memory fakes: the composition root's App over ``InMemoryUnitOfWork``,
commands run in one transaction with what caused them, the mail commands, intake by mail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from connectors.db.store import ListFilter
from connectors.ports import OutboxStatus
from connectors.testing import InMemoryInbox, InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.mail import OutboxChanged
from flows.settings import Settings
from flows.steps import ACTOR as PIPELINE
from flows.steps import send_outbox, take_in
from flows.vocabulary import RedirectKindChoice, SortKey
from states.errors import InvalidInput, NotFound, TransitionRefused
from tests.builders import ACTOR, SPONSOR, T0, diagnosis_data, intake_data, plan_data

DOMAIN = "example.org"


@pytest.fixture
def inbox() -> InMemoryInbox:
    return InMemoryInbox()


@pytest.fixture
def app(tmp_path: Path, inbox: InMemoryInbox) -> Iterator[App]:
    uow = InMemoryUnitOfWork()
    yield bootstrap.compose(Settings(home=tmp_path, mail_from=f"ld@{DOMAIN}"), store=uow.store, uow=uow,
                            clock=FixedClock(T0), sender=InMemorySender(), sources=lambda: [inbox])


def test_a_command_within_a_transaction_commits_with_it_or_not_at_all(app: App) -> None:
    with pytest.raises(RuntimeError), app.uow.transaction() as tx:
        app.service.within(tx).submit(intake_data(), ACTOR)
        raise RuntimeError("what caused it could not be recorded")
    assert app.service.list(ListFilter())[1] == 0
    with app.uow.transaction() as tx:
        request = app.service.within(tx).submit(intake_data(), ACTOR, note="came by e-mail", note_source="e-mail")
    assert request.id == 1 and not request.pending_events()
    history = app.service.history(1)
    assert [(h.type, h.version) for h in history] == [("submitted", 1), ("note_added", 1)]
    assert history[1].payload["source"] == "e-mail"
    with pytest.raises(TransitionRefused), app.uow.transaction() as tx:
        app.service.within(tx).measure(1, ACTOR)
    assert app.service.show(1).version == 1


def _unknown(app: App) -> Any:
    """The intake acknowledgement of a new request, claimed and left ``unknown`` by a relay that died."""
    app.service.submit(intake_data(), ACTOR)
    [row] = app.uow.outbox.claim("dead", T0, timedelta(minutes=5))
    assert app.uow.outbox.mark_transmitting(row.id, "dead", "<m1@example.org>")
    assert app.uow.outbox.mark_unknown(row.id, "dead", reason="connection lost after DATA")
    return row


def test_retry_requeues_unknown_and_failed_rows_and_refuses_the_others(app: App) -> None:
    row = _unknown(app)
    app.service.submit(intake_data(), ACTOR)
    with pytest.raises(InvalidInput, match="only unknown or failed rows can be retried: 2:intake_acknowledgement"):
        app.mail.retry([row.key, "2:intake_acknowledgement"])
    with pytest.raises(NotFound, match="'9:nope'"):
        app.mail.retry(["9:nope", row.key])
    with pytest.raises(InvalidInput):
        app.mail.retry([])
    assert app.mail.outbox(OutboxStatus.UNKNOWN)[0].key == row.key  # nothing changed
    assert app.mail.retry([row.key, row.key]) == 1
    assert app.mail.retry(all_unknown=True) == 0
    assert [(r.key, r.status, r.attempts) for r in app.mail.outbox()][1] == (row.key, OutboxStatus.PENDING, 0)


def test_mark_sent_closes_an_unknown_row_and_records_it_in_the_history_together(app: App) -> None:
    row = _unknown(app)
    with pytest.raises(InvalidInput, match="actor"):
        app.mail.mark_sent(row.key, "")
    marked = app.mail.mark_sent(row.key, "ops@example.org")
    assert (marked.key, marked.message_id) == (row.key, "<m1@example.org>")
    [sent] = app.mail.outbox(OutboxStatus.SENT)
    assert sent.sent_at == T0 and "marked sent by ops@example.org" in (sent.last_error or "")
    last = app.service.history(row.request_id)[-1]
    assert (last.type, last.actor, last.payload["key"]) == ("email_sent", "ops@example.org", row.key)
    with pytest.raises(InvalidInput, match="only a row whose outcome is unknown"):
        app.mail.mark_sent(row.key, "ops@example.org")


def test_a_row_closed_meanwhile_is_a_conflict_and_writes_no_history(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    row = _unknown(app)
    monkeypatch.setattr(type(app.uow.outbox), "mark_sent", lambda self, *a, **k: False)
    events = len(app.service.history(row.request_id))
    with pytest.raises(OutboxChanged, match="changed meanwhile") as caught:
        app.mail.mark_sent(row.key, "ops@example.org")
    assert caught.value.exit_code == 5
    assert len(app.service.history(row.request_id)) == events


def _mail(subject: str, body: str, sender: str, message_id: str, reply_to: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"ld@{DOMAIN}"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if reply_to:
        message["In-Reply-To"] = message["References"] = reply_to
    message.set_content(body)
    return message.as_bytes()


def test_a_plain_mail_becomes_a_request_and_the_sponsors_reply_approves_its_plan(app: App, inbox: InMemoryInbox
                                                                                  ) -> None:
    inbox.add(_mail("Training for the sales meeting", "Our reps lose deals at the pricing talk.",
                    "Nora Lead <nora.lead@example.org>", "<new-1@example.org>"))
    assert take_in(app).counts == {"processed": 1, "quarantined": 0, "skipped": 0}
    assert app.service.show(1).intake.requester.email == "nora.lead@example.org"
    assert any(h.type == "note_added" and "Message-ID <new-1@example.org>" in str(h.payload)
               for h in app.service.history(1))

    request = app.service.submit(intake_data(), ACTOR)
    assert request.id is not None
    app.service.diagnose(request.id, diagnosis_data(), ACTOR)
    app.service.draft_plan(request.id, plan_data(), ACTOR)
    assert send_outbox(app).counts["failed"] == 0
    key = f"{request.id}:plan_approval_request:v3"
    asked = app.uow.outbox.by_keys([key])[key].message_id
    assert asked is not None and asked.startswith(f"<ldr-{request.id}-")  # the sponsor's reply code
    inbox.add(_mail("Re: plan", "Approved.\n", "Mallory <mallory@example.org>", "<a-1@example.org>", asked))
    inbox.add(_mail("Re: plan", "Approved.\n\nSam", f"Sam Sponsor <{SPONSOR}>", "<a-2@example.org>", asked))
    summary = take_in(app)
    assert (summary.counts["processed"], summary.counts["quarantined"]) == (1, 1)
    assert f"the reply code was issued to {SPONSOR}, and the reply comes from mallory@example.org" \
        in summary.errors[0]
    approved = app.service.show(request.id)
    assert approved.plan_approved_by == SPONSOR and app.service.history(request.id)[-1].actor == SPONSOR
    assert [r.message_id for r in app.mail.quarantined()] == ["<a-1@example.org>"]
    assert take_in(app).counts["processed"] == 0  # each mail is taken in once
    assert app.service.history(1)[0].actor == PIPELINE


def test_the_cli_choices_are_the_domains_and_the_stores() -> None:
    from connectors.db.store import SORTS
    from states.models import RedirectKind

    assert [k.value for k in RedirectKindChoice] == [k.value for k in RedirectKind]
    assert [k.value for k in SortKey] == list(SORTS)
