"""The outbox relay: claim due outbox rows, render, send, record the outcome.

Plain Python over the ports (no Prefect, no SQL): the ``dispatch`` step calls
``relay_outbox`` with the application's unit of work. Running it twice, or in
several processes at once, sends every message once: rows are claimed with a
lease (see ``connectors.db.outbox``), the Message-ID derives from the outbox
key, recipients already served are never sent to again, and a send whose
outcome is unknown is parked, not repeated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal, Protocol

from sqlalchemy import Engine

from connectors.db.outbox import backoff_for
from connectors.email.smtp import (
    PermanentSendError,
    Refusal,
    Sender,
    SendResult,
    ServerUnavailableError,
    TemporarySendError,
    UnknownOutcomeError,
)
from connectors.email.tokens import invites_reply
from connectors.ports import OutboxLog, OutboxRow, Transaction, UnitOfWork
from states.notifications import CalendarItem, Notification, Recipient

__all__ = ["CalendarPublisher", "OutcomeHook", "RelaySummary", "relay_outbox"]


class CalendarPublisher(Protocol):
    """Where calendar items are published besides the invite mail (``CaldavPublisher``)."""

    def publish(self, item: CalendarItem) -> Any:
        """Create, update or cancel ``item`` idempotently."""
        ...


#: What became of a row in one relay run.
Outcome = Literal["sent", "retry", "failed", "unknown"]

#: Called inside the transaction that records a row's outcome, e.g. to append
#: "email sent" / "email bounced" to the request's history: ``hook(tx, row, outcome, detail)``.
OutcomeHook = Callable[[Transaction, OutboxRow, Outcome, str], None]

#: How a row's outcome is written: one of the outbox port's ``mark_*`` calls.
Mark = Callable[[OutboxLog], bool]


@dataclass
class RelaySummary:
    """What one relay run did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    lost_lease: int = 0
    published: int = 0
    deferred: int = 0  # rows given back untried because the server was unreachable
    errors: list[str] = field(default_factory=list)


def _refusals(kind: str, refusals: dict[str, Refusal]) -> list[str]:
    return [f"{address}: {refusal} ({kind})" for address, refusal in sorted(refusals.items())]


def relay_outbox(
    target: UnitOfWork | Engine,
    sender: Sender,
    render_fn: Callable[[Notification], EmailMessage],
    now: datetime,
    owner: str,
    batch: int = 100,
    lease: timedelta = timedelta(minutes=5),
    max_attempts: int = 8,
    on_outcome: OutcomeHook | None = None,
    calendar: CalendarPublisher | None = None,
    prepare: Callable[[OutboxRow], Notification] | None = None,
) -> RelaySummary:
    """Send up to ``batch`` due outbox rows through ``sender``.

    ``target`` is the unit of work (an Engine stands for the SQL one on it).
    ``render_fn`` turns a notification into the message (e.g.
    ``functools.partial(render, mail_from=..., domain=...)``). Temporary
    failures go back to ``pending`` with exponential backoff until
    ``max_attempts`` claims, then ``failed``; permanent ones are ``failed``
    with the server's reply; unknown outcomes are ``unknown`` (see
    ``connectors.db.outbox`` for that policy). ``prepare`` gives the notification to render
    from its row (the signed links of ``flows.links``; it must give the same for the same row, so
    a retried send is the same message).
    """
    if isinstance(target, Engine):
        from connectors.db.unit_of_work import SqlUnitOfWork

        target = SqlUnitOfWork(target)
    run = _Run(target, sender, now, owner, max_attempts, on_outcome, calendar, prepare)
    started = time.monotonic()
    rows = target.outbox.claim(owner, now, lease, batch)
    run.summary.claimed = len(rows)
    for index, row in enumerate(rows):
        # ``now`` is the run's clock; leases are renewed from it plus the time spent so far
        lease_until = now + timedelta(seconds=time.monotonic() - started) + lease
        try:
            _Row(run, row).relay(render_fn, lease_until)
        except ServerUnavailableError as exc:
            # One unreachable server is one wait, not one timeout per row: this row and the rest go
            # back to pending, untried (no attempt counted), for the next pass.
            note = f"not sent: {exc}"
            with target.transaction() as tx:  # one commit for the lot
                run.summary.deferred = sum(tx.outbox.release(rest.id, owner, note=note) for rest in rows[index:])
            run.summary.errors.append(f"{exc}; {run.summary.deferred} message(s) left pending for the next pass")
            break
    return run.summary


@dataclass
class _Run:
    """What one relay run shares: where rows are recorded, how they are sent, what it did."""

    uow: UnitOfWork
    sender: Sender
    now: datetime
    owner: str
    max_attempts: int
    on_outcome: OutcomeHook | None
    calendar: CalendarPublisher | None
    prepare: Callable[[OutboxRow], Notification] | None = None
    summary: RelaySummary = field(default_factory=RelaySummary)


class _Row:
    """One claimed row through render, calendar, send and the recording of its outcome."""

    def __init__(self, run: _Run, row: OutboxRow) -> None:
        self.run, self.row = run, row
        self.done = set(row.recipients_done)

    def finish(self, outcome: Outcome, detail: str, mark: Mark) -> None:
        """Record the outcome (and the hook's history) in one transaction, unless the lease was lost."""
        run, row, summary = self.run, self.row, self.run.summary
        with run.uow.transaction() as tx:
            if not mark(tx.outbox):
                summary.lost_lease += 1
                summary.errors.append(f"{row.key}: lease lost before recording '{outcome}'")
                return
            if run.on_outcome is not None:
                run.on_outcome(tx, row, outcome, detail)
        counter = {"sent": "sent", "retry": "retried", "failed": "failed", "unknown": "unknown"}[outcome]
        setattr(summary, counter, getattr(summary, counter) + 1)
        if outcome != "sent" and detail:
            summary.errors.append(f"{row.key}: {detail}")

    def fail(self, reason: str, recipients: set[str] | None = None) -> None:
        done = self.done if recipients is None else recipients
        self.finish("failed", reason, lambda o: o.mark_failed(self.row.id, self.run.owner, reason=reason,
                                                              recipients_done=done))

    def retry(self, reason: str, recipients: set[str] | None = None) -> None:
        run, row = self.run, self.row
        if row.attempts >= run.max_attempts:
            self.fail(f"gave up after {row.attempts} attempts: {reason}", recipients)
            return
        done = self.done if recipients is None else recipients
        backoff = backoff_for(row.attempts)
        self.finish("retry", reason, lambda o: o.mark_retry(row.id, run.owner, now=run.now, backoff=backoff,
                                                            error=reason, recipients_done=done))

    def unknown(self, reason: str) -> None:
        self.finish("unknown", reason, lambda o: o.mark_unknown(self.row.id, self.run.owner, reason=reason,
                                                                recipients_done=self.done))

    def sent(self, message_id: str, done: set[str], note: str = "") -> None:
        self.finish("sent", note, lambda o: o.mark_sent(self.row.id, self.run.owner, message_id=message_id,
                                                        now=self.run.now, recipients_done=done,
                                                        note=note or None))

    def open_recipients(self) -> list[str]:
        """The addressees not served yet, each once."""
        found: list[str] = []
        for recipient in self.row.notification.to:
            email = recipient.email.lower()
            if email not in self.done and email not in (r.lower() for r in found):
                found.append(recipient.email)
        return found

    def relay(self, render_fn: Callable[[Notification], EmailMessage], lease_until: datetime) -> None:
        run, row = self.run, self.row
        if invites_reply(row.template) and len(row.notification.to) > 1:
            self.relay_each(render_fn, lease_until)
            return
        try:
            message = render_fn(run.prepare(row) if run.prepare is not None else row.notification)
        except Exception as exc:  # an unrenderable message will not render better later
            self.fail(f"cannot render {row.template}: {type(exc).__name__}: {exc}")
            return
        message_id = str(message["Message-ID"])
        recipients = self.open_recipients()
        if not recipients:
            self.sent(message_id, self.done)
            return
        if not self.publish():
            return
        if not run.sender.idempotent and not run.uow.outbox.mark_transmitting(row.id, run.owner, message_id,
                                                                              lease_until):
            run.summary.lost_lease += 1
            run.summary.errors.append(f"{row.key}: lease lost before sending; left to its new owner")
            return
        result = self.send(message, recipients)
        if result is not None:
            self.record(result, message_id)

    def relay_each(self, render_fn: Callable[[Notification], EmailMessage], lease_until: datetime) -> None:
        """A mail that invites a reply goes to each recipient on its own: each carries that recipient's
        reply code (``connectors.email.tokens``). The row is marked transmitting once, before the
        first; a failure part-way is recorded with the recipients served so far, so a retry goes to
        the others only (and a relay dying part-way leaves the row ``unknown``, as for one mail)."""
        run = self.run
        notification = run.prepare(self.row) if run.prepare is not None else self.row.notification
        messages: list[tuple[str, EmailMessage]] = []
        seen: set[str] = set()
        links = _links_by_recipient(notification)  # once per row: a roster's survey has a thousand recipients
        try:
            for recipient in notification.to:
                if recipient.email.lower() not in seen:
                    seen.add(recipient.email.lower())
                    messages.append((recipient.email, render_fn(_for_one(notification, recipient, links))))
        except Exception as exc:  # an unrenderable message will not render better later
            self.fail(f"cannot render {self.row.template}: {type(exc).__name__}: {exc}")
            return
        open_ = [(email, message) for email, message in messages if email.lower() not in self.done]
        last_id = str(messages[-1][1]["Message-ID"])
        if not open_:
            self.sent(last_id, self.done)
            return
        if not self.publish():
            return
        permanent: dict[str, Refusal] = {}
        temporary: dict[str, Refusal] = {}
        first_id = str(open_[0][1]["Message-ID"])
        if not run.sender.idempotent and not run.uow.outbox.mark_transmitting(self.row.id, run.owner, first_id,
                                                                              lease_until):
            run.summary.lost_lease += 1
            run.summary.errors.append(f"{self.row.key}: lease lost before sending; left to its new owner")
            return
        for email, message in open_:
            result = self.send(message, [email])
            if result is None:
                return  # the failure is recorded, with the recipients served so far
            self.done |= {r.lower() for r in result.done}
            permanent.update(result.refused_permanent)
            temporary.update(result.refused_temporary)
        accepted = tuple(e for e, _ in open_ if e.lower() in self.done and e not in permanent)
        self.record(SendResult(message_id=last_id, accepted=accepted, refused_permanent=permanent,
                               refused_temporary=temporary), last_id)

    def publish(self) -> bool:
        """Publish the row's calendar item, if any; False when that failed (the row is retried)."""
        calendar, item = self.run.calendar, self.row.notification.calendar
        if calendar is None or item is None:
            return True
        try:
            calendar.publish(item)
        except Exception as exc:  # the calendar server is down or refuses: try again later
            self.retry(f"calendar publishing failed: {type(exc).__name__}: {exc}")
            return False
        self.run.summary.published += 1
        return True

    def send(self, message: EmailMessage, recipients: list[str]) -> SendResult | None:
        """The sender's result, or None when the failure was recorded already."""
        try:
            return self.run.sender.send(message, recipients)
        except ServerUnavailableError:
            raise  # ends the pass (relay_outbox)
        except UnknownOutcomeError as exc:
            self.unknown(str(exc))
        except TemporarySendError as exc:
            self.retry(str(exc))
        except PermanentSendError as exc:
            self.fail(str(exc))
        except Exception as exc:  # a bug or an unexpected library error: do not guess
            reason = f"unexpected {type(exc).__name__} while sending: {exc}"
            if self.run.sender.idempotent:
                self.retry(reason)
            else:
                self.unknown(reason)
        return None

    def record(self, result: SendResult, message_id: str) -> None:
        """Sent, retried or failed, by what each recipient's server said."""
        done_now = self.done | {r.lower() for r in result.done}
        notes = _refusals("permanent", result.refused_permanent) + _refusals("temporary", result.refused_temporary)
        note = "; ".join(notes)
        if result.refused_temporary:
            self.retry(note, done_now)
        elif result.accepted or (self.done and len(done_now) > len(result.refused_permanent)):
            self.sent(message_id, done_now, note)
        else:
            self.fail(note or "no recipient accepted the message", done_now)


def _links_by_recipient(notification: Notification) -> dict[str, list[Any]] | None:
    """The row's signed links by recipient address (None when it has none)."""
    links = notification.context.get("links")
    if not isinstance(links, list):
        return None
    found: dict[str, list[Any]] = {}
    for link in links:
        found.setdefault(str(link.get("email", "")).lower(), []).append(link)
    return found


def _for_one(notification: Notification, recipient: Recipient,
             links: dict[str, list[Any]] | None = None) -> Notification:
    """``notification`` addressed to ``recipient`` alone, with only that recipient's signed link(s)
    (a link acts as the person it was issued to: nobody is sent another's)."""
    context = dict(notification.context)
    if links is None and isinstance(context.get("links"), list):
        links = _links_by_recipient(notification)
    if links is not None:
        context["links"] = links.get(recipient.email.lower(), [])
    return replace(notification, to=(recipient,), context=context)
