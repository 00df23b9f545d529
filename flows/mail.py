"""The mail commands and queries: the outbox (list, retry, mark sent) and the inbound quarantine.

What an operator does when the mail server's log disagrees with the outbox. Each write is one
transaction of the unit of work; nothing here knows SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.email.render import message_id_for
from connectors.ports import RETRYABLE, InboundRecord, OutboxLog, OutboxRow, OutboxStatus, UnitOfWork
from flows.clock import Clock
from flows.service import valid_actor
from states.errors import Conflict, FieldError, InvalidInput, LdflowError, NotFound
from states.events import EmailSent


class OutboxChanged(LdflowError):
    """An outbox row changed between reading and writing it (exit 5, like any conflict)."""

    exit_code = Conflict.exit_code


@dataclass(frozen=True)
class MarkedSent:
    """An outbox row closed as sent by an operator."""

    key: str
    message_id: str


def _rows(outbox: OutboxLog, keys: Sequence[str]) -> dict[str, OutboxRow]:
    """The rows for ``keys``; NotFound (exit 4) naming every unknown key."""
    rows = outbox.by_keys(keys)
    missing = [k for k in keys if k not in rows]
    if missing:
        raise NotFound(f"outbox key(s) {', '.join(repr(k) for k in missing)} (see `ldflow outbox list`)")
    return rows


class MailService:
    """Outbox and inbound commands for operators (``ldflow outbox …``, ``ldflow inbound …``)."""

    def __init__(self, uow: UnitOfWork, clock: Clock, mail_from: str) -> None:
        self.uow = uow
        self.clock = clock
        self.domain = mail_from.rsplit("@", 1)[-1]

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def outbox(self, status: OutboxStatus | None = None, limit: int = 200) -> list[OutboxRow]:
        """One row per e-mail, newest first, optionally only those with ``status``."""
        return self.uow.outbox.rows(status, limit)

    def retry(self, keys: Sequence[str] = (), *, all_unknown: bool = False) -> int:
        """Put rows back to pending so the next dispatch sends them (same Message-ID): the rows named
        by ``keys`` (each must be unknown or failed) and, with ``all_unknown``, every unknown one.
        Returns how many were requeued; nothing changes when a key is wrong."""
        keys = list(dict.fromkeys(keys))
        if not keys and not all_unknown:
            raise InvalidInput([FieldError("key", "name the rows to retry, or ask for every unknown one")])
        now = self._now()
        with self.uow.transaction() as tx:
            rows = _rows(tx.outbox, keys) if keys else {}
            wrong = [f"{k} is {rows[k].status}" for k in keys if rows[k].status not in RETRYABLE]
            if wrong:
                raise InvalidInput([FieldError("key", "only unknown or failed rows can be retried: "
                                                      + "; ".join(wrong))])
            count = tx.outbox.requeue(now, keys=keys, statuses=RETRYABLE) if keys else 0
            if all_unknown:
                count += tx.outbox.requeue(now, statuses=(OutboxStatus.UNKNOWN,))
        return count

    def mark_sent(self, key: str, actor: str) -> MarkedSent:
        """Close a row whose outcome is unknown as sent, without sending (the mail server's log shows
        it went out), and record "email sent" in its request's history: one transaction."""
        who = valid_actor(actor)
        now = self._now()
        with self.uow.transaction() as tx:
            row = _rows(tx.outbox, [key])[key]
            if row.status != OutboxStatus.UNKNOWN:
                raise InvalidInput([FieldError("key", f"{key} is {row.status}: only a row whose outcome is "
                                                      "unknown can be marked sent")])
            message_id = row.message_id or message_id_for(key, self.domain)
            note = f"marked sent by {who} (outcome was unknown: {row.last_error or 'no detail'})"
            if not tx.outbox.mark_sent(row.id, None, message_id=message_id, now=now,
                                       recipients_done=sorted(row.recipients_done), note=note):
                raise OutboxChanged(f"outbox {key} changed meanwhile (retried or closed by someone else); "
                                    "see `ldflow outbox list`")
            tx.record_events(row.request_id, [EmailSent(
                key=key, template=row.template, detail="marked sent by an operator after an unknown outcome")],
                who, now)
        return MarkedSent(key, message_id)

    def quarantined(self, limit: int = 100) -> list[InboundRecord]:
        """Incoming mail and files that were quarantined, newest first, with the reason."""
        return self.uow.inbound.quarantined(limit)
