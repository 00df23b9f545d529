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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

from sqlalchemy import Engine

from connectors.db.outbox import backoff_for
from connectors.email.smtp import (
    PermanentSendError,
    Refusal,
    Sender,
    SendResult,
    TemporarySendError,
    UnknownOutcomeError,
)
from connectors.ports import OutboxLog, OutboxRow, Transaction, UnitOfWork
from states.notifications import CalendarItem, Notification

__all__ = ["CalendarPublisher", "OutcomeHook", "RelaySummary", "relay_outbox"]


class CalendarPublisher(Protocol):
    """Where calendar items are published besides the invite mail (``CaldavPublisher``)."""

    def publish(self, item: CalendarItem) -> Any:
        """Create, update or cancel ``item`` idempotently."""
        ...


#: Called inside the transaction that records a row's outcome, e.g. to append
#: "email sent" / "email bounced" to the request's history:
#: ``hook(tx, row, outcome, detail)`` with outcome one of
#: ``sent``, ``retry``, ``failed``, ``unknown``.
OutcomeHook = Callable[[Transaction, OutboxRow, str, str], None]

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
) -> RelaySummary:
    """Send up to ``batch`` due outbox rows through ``sender``.

    ``target`` is the unit of work (an Engine stands for the SQL one on it).
    ``render_fn`` turns a notification into the message (e.g.
    ``functools.partial(render, mail_from=..., domain=...)``). Temporary
    failures go back to ``pending`` with exponential backoff until
    ``max_attempts`` claims, then ``failed``; permanent ones are ``failed``
    with the server's reply; unknown outcomes are ``unknown`` (see
    ``connectors.db.outbox`` for that policy).
    """
    if isinstance(target, Engine):
        from connectors.db.unit_of_work import SqlUnitOfWork

        target = SqlUnitOfWork(target)
    uow: UnitOfWork = target
    summary = RelaySummary()
    started = time.monotonic()
    rows = uow.outbox.claim(owner, now, lease, batch)
    summary.claimed = len(rows)
    for row in rows:
        # ``now`` is the run's clock; leases are renewed from it plus the time spent so far
        lease_until = now + timedelta(seconds=time.monotonic() - started) + lease
        _relay_one(uow, sender, render_fn, now, owner, row, max_attempts, on_outcome, summary, lease_until,
                   calendar)
    return summary


def _finish(
    uow: UnitOfWork,
    row: OutboxRow,
    outcome: str,
    detail: str,
    mark: Mark,
    on_outcome: OutcomeHook | None,
    summary: RelaySummary,
) -> None:
    with uow.transaction() as tx:
        if not mark(tx.outbox):
            summary.lost_lease += 1
            summary.errors.append(f"{row.key}: lease lost before recording '{outcome}'")
            return
        if on_outcome is not None:
            on_outcome(tx, row, outcome, detail)
    if outcome == "sent":
        summary.sent += 1
    elif outcome == "retry":
        summary.retried += 1
    elif outcome == "failed":
        summary.failed += 1
    elif outcome == "unknown":
        summary.unknown += 1
    if outcome != "sent" and detail:
        summary.errors.append(f"{row.key}: {detail}")


def _relay_one(
    uow: UnitOfWork,
    sender: Sender,
    render_fn: Callable[[Notification], EmailMessage],
    now: datetime,
    owner: str,
    row: OutboxRow,
    max_attempts: int,
    on_outcome: OutcomeHook | None,
    summary: RelaySummary,
    lease_until: datetime,
    calendar: CalendarPublisher | None = None,
) -> None:
    done = set(row.recipients_done)

    def fail(reason: str, recipients: set[str] = done) -> None:
        _finish(uow, row, "failed", reason,
                lambda o: o.mark_failed(row.id, owner, reason=reason, recipients_done=recipients),
                on_outcome, summary)

    def retry(reason: str, recipients: set[str] = done) -> None:
        if row.attempts >= max_attempts:
            fail(f"gave up after {row.attempts} attempts: {reason}", recipients)
            return
        backoff = backoff_for(row.attempts)
        _finish(uow, row, "retry", reason,
                lambda o: o.mark_retry(row.id, owner, now=now, backoff=backoff, error=reason,
                                       recipients_done=recipients),
                on_outcome, summary)

    try:
        message = render_fn(row.notification)
    except Exception as exc:  # an unrenderable message will not render better later
        fail(f"cannot render {row.template}: {type(exc).__name__}: {exc}")
        return
    message_id = str(message["Message-ID"])
    open_recipients: list[str] = []
    for recipient in row.notification.to:
        if recipient.email.lower() not in done and recipient.email.lower() not in (
            r.lower() for r in open_recipients
        ):
            open_recipients.append(recipient.email)
    if not open_recipients:
        _finish(uow, row, "sent", "",
                lambda o: o.mark_sent(row.id, owner, message_id=message_id, now=now, recipients_done=done),
                on_outcome, summary)
        return

    if calendar is not None and row.notification.calendar is not None:
        try:
            calendar.publish(row.notification.calendar)
        except Exception as exc:  # the calendar server is down or refuses: try again later
            retry(f"calendar publishing failed: {type(exc).__name__}: {exc}")
            return
        summary.published += 1

    if not sender.idempotent and not uow.outbox.mark_transmitting(row.id, owner, message_id, lease_until):
        summary.lost_lease += 1
        summary.errors.append(f"{row.key}: lease lost before sending; left to its new owner")
        return

    try:
        result: SendResult = sender.send(message, open_recipients)
    except UnknownOutcomeError as exc:
        reason = str(exc)
        _finish(uow, row, "unknown", reason,
                lambda o: o.mark_unknown(row.id, owner, reason=reason, recipients_done=done),
                on_outcome, summary)
        return
    except TemporarySendError as exc:
        retry(str(exc))
        return
    except PermanentSendError as exc:
        fail(str(exc))
        return
    except Exception as exc:  # a bug or an unexpected library error: do not guess
        reason = f"unexpected {type(exc).__name__} while sending: {exc}"
        if sender.idempotent:
            retry(reason)
        else:
            _finish(uow, row, "unknown", reason,
                    lambda o: o.mark_unknown(row.id, owner, reason=reason, recipients_done=done),
                    on_outcome, summary)
        return

    done_now = done | {r.lower() for r in result.done}
    notes = _refusals("permanent", result.refused_permanent) + _refusals("temporary", result.refused_temporary)
    note = "; ".join(notes)
    if result.refused_temporary:
        retry(note, done_now)
    elif result.accepted or (done and len(done_now) > len(result.refused_permanent)):
        _finish(uow, row, "sent", note,
                lambda o: o.mark_sent(row.id, owner, message_id=message_id, now=now,
                                      recipients_done=done_now, note=note or None),
                on_outcome, summary)
    else:
        fail(note or "no recipient accepted the message", done_now)
