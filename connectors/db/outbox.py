"""The outbox relay's database side: claim rows with a lease, record what happened.

Row life cycle (``outbox.status``)::

    pending --claim--> sending --(SMTP DATA begins)--> transmitting --> sent
       ^                  |                                 |     \\--> unknown
       |                  +--> pending (retry, backoff)     +--> pending (4xx) / failed (5xx)
       +------------------+--> failed (5xx, max attempts, unrenderable)

* ``claim_batch`` takes rows that are ``pending`` and due (``not_before``
  passed, or further ahead than any backoff: set by a clock that ran ahead and
  was corrected) and rows left ``sending`` by a relay whose lease expired
  (likewise: or ends further ahead than any lease) (it died
  before handing the message to the server, so sending again cannot
  duplicate it). PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` lets many
  relays claim side by side; SQLite: the write lock taken by
  ``BEGIN IMMEDIATE`` (``write_transaction``) serialises claimers.
* ``mark_transmitting`` is committed just before the message data goes to a
  non-idempotent transport (SMTP). A relay that dies after that point may or
  may not have delivered the message; ``claim_batch`` therefore turns an
  expired ``transmitting`` row into ``unknown`` instead of reclaiming it.

**Unknown-outcome policy.** A row is ``unknown`` when the SMTP connection
failed after the message data was sent and before the server's final reply,
or when a relay died while transmitting. Such a row is **never resent
automatically**: a duplicate e-mail to a stakeholder (a second approval
request, a second survey) does more harm than a late one, and the operator
can usually tell from the mail server's log whether it went out. The row
stays ``unknown`` (listed by ``list_unknown`` and counted by the relay)
until someone runs ``ldflow outbox retry`` (``requeue``), which puts it back
to ``pending``; because the Message-ID is derived from the outbox key, even
that resend carries the same Message-ID, so most receiving systems and mail
clients show it once. ``mark_sent`` on an ``unknown`` row (e.g. after
checking the server log) closes it without sending.

Every update after the claim is fenced by ``lease_owner``: a relay that lost
its lease (it was too slow and another relay reclaimed the row) cannot
overwrite the newer relay's outcome; the ``mark_*`` functions then return
False.

Times are stored in UTC; SQLite keeps them as naive UTC text, so every
function here converts its datetimes to UTC first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, case, or_, select, update

from connectors.db.engine import read_transaction, write_transaction
from connectors.db.tables import outbox
from connectors.notification_codec import decode_notification, notification_json
from connectors.ports import RETRYABLE, OutboxRow, OutboxStatus
from connectors.ports.outbox import MAX_BACKOFF, stranded_after

if TYPE_CHECKING:
    pass

__all__ = [
    "OutboxRow",
    "SqlOutbox",
    "backoff_for",
    "claim_batch",
    "decode_notification",
    "enqueue_new",
    "list_rows",
    "list_unknown",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "mark_transmitting",
    "mark_unknown",
    "release",
    "release_held",
    "record_recipients",
    "requeue",
    "rows_for_request",
    "rows_by_key",
    "sent_as",
]

PENDING = OutboxStatus.PENDING
SENDING = OutboxStatus.SENDING
TRANSMITTING = OutboxStatus.TRANSMITTING
SENT = OutboxStatus.SENT
FAILED = OutboxStatus.FAILED
UNKNOWN = OutboxStatus.UNKNOWN


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("outbox times must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def _db_time(conn: Connection, value: datetime) -> datetime:
    """UTC, and naive on SQLite (which would otherwise store the local wall time text)."""
    value = _utc(value)
    return value.replace(tzinfo=None) if conn.dialect.name == "sqlite" else value


def _from_db(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _done(text: str | None) -> frozenset[str]:
    if not text:
        return frozenset()
    try:
        values = json.loads(text)
    except ValueError:
        return frozenset()
    return frozenset(str(v).lower() for v in values if isinstance(v, str))


def _row(record: Any) -> OutboxRow:
    return OutboxRow(
        id=record.id, key=record.key, request_id=record.request_id, template=record.template,
        notification=decode_notification(record.notification), status=OutboxStatus(record.status),
        attempts=record.attempts, lease_owner=record.lease_owner, lease_until=_from_db(record.lease_until),
        message_id=record.message_id, recipients_done=_done(record.recipients_done), last_error=record.last_error,
        sent_at=_from_db(record.sent_at), created_at=_from_db(record.created_at))


def _begin(target: Engine | Connection) -> AbstractContextManager[Connection]:
    """A write transaction on an Engine, or the caller's transaction on a Connection."""
    return write_transaction(target) if isinstance(target, Engine) else nullcontext(target)


def claim_batch(target: Engine | Connection, owner: str, now: datetime, lease: timedelta,
                limit: int = 100) -> list[OutboxRow]:
    """Claim up to ``limit`` due rows for ``owner`` until ``now + lease``.

    Due: ``pending`` with ``not_before`` unset or passed, or ``sending`` with
    an expired lease. Claiming sets ``status='sending'``, the lease, and
    counts an attempt. Expired ``transmitting`` rows become ``unknown`` in
    the same transaction (see the module docstring). With an Engine the
    claim commits before returning; with a Connection it joins the caller's
    transaction.
    """
    if limit <= 0:
        return []
    with _begin(target) as conn:
        t_now = _db_time(conn, now)
        deferred_max, lease_max = (_db_time(conn, t) for t in stranded_after(now, lease))
        expired = or_(outbox.c.lease_until < t_now, outbox.c.lease_until > lease_max)
        conn.execute(update(outbox).where(outbox.c.status == TRANSMITTING, expired).values(
            status=UNKNOWN, lease_owner=None, lease_until=None,
            last_error="relay stopped while the message was being transmitted; outcome unknown"))
        due = or_(
            and_(outbox.c.status == PENDING, or_(outbox.c.not_before.is_(None), outbox.c.not_before <= t_now,
                                                 outbox.c.not_before > deferred_max)),
            and_(outbox.c.status == SENDING, expired),
        )
        ids = list(conn.execute(select(outbox.c.id).where(due).order_by(outbox.c.id).limit(limit)
                                .with_for_update(skip_locked=True)).scalars())
        if not ids:
            return []
        conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(
            status=SENDING, lease_owner=owner, lease_until=_db_time(conn, now + lease),
            attempts=outbox.c.attempts + 1))
        records = conn.execute(select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.id)).all()
        return [_row(r) for r in records]


def _fenced(conn: Connection, row_id: int, owner: str, statuses: Sequence[str], values: dict[str, Any]) -> bool:
    result = conn.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.lease_owner == owner,
                                               outbox.c.status.in_(list(statuses))).values(**values))
    return bool(result.rowcount == 1)


def _done_json(done: Iterable[str]) -> str:
    return json.dumps(sorted({d.lower() for d in done}))


def _released(status: OutboxStatus, note: str | None, done: Iterable[str]) -> dict[str, Any]:
    """The values that end a claim: the new status, the lease released, the note and who is done."""
    return {"status": status, "lease_owner": None, "lease_until": None, "last_error": note,
            "recipients_done": _done_json(done)}


def mark_transmitting(conn: Connection, row_id: int, owner: str, message_id: str,
                      lease_until: datetime | None = None) -> bool:
    """Record that the message data is about to be handed to the server (commit before sending).

    ``lease_until`` renews the lease, so that a long batch does not see its
    own row turned ``unknown`` by another relay while it is still sending.
    """
    values: dict[str, Any] = {"status": TRANSMITTING, "message_id": message_id}
    if lease_until is not None:
        values["lease_until"] = _db_time(conn, lease_until)
    return _fenced(conn, row_id, owner, [SENDING], values)


def record_recipients(conn: Connection, row_id: int, owner: str, recipients_done: Iterable[str]) -> bool:
    """Store which recipients need no further attempt (accepted or refused for good)."""
    return _fenced(conn, row_id, owner, [SENDING, TRANSMITTING], {"recipients_done": _done_json(recipients_done)})


def mark_sent(conn: Connection, row_id: int, owner: str | None, *, message_id: str, now: datetime,
              recipients_done: Iterable[str] = (), note: str | None = None) -> bool:
    """The message was accepted (for every recipient still open, or refused for good).

    ``note`` keeps per-recipient refusals readable in ``last_error``. With
    ``owner=None`` an ``unknown`` row is closed as sent (an operator checked
    the server's log).
    """
    values = {**_released(SENT, note, recipients_done), "sent_at": _db_time(conn, now), "message_id": message_id}
    if owner is None:
        result = conn.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.status == UNKNOWN)
                              .values(**values))
        return bool(result.rowcount == 1)
    return _fenced(conn, row_id, owner, [SENDING, TRANSMITTING], values)


def mark_retry(conn: Connection, row_id: int, owner: str, *, now: datetime, backoff: timedelta, error: str,
               recipients_done: Iterable[str] = ()) -> bool:
    """A temporary failure: back to ``pending``, not before ``now + backoff``."""
    values = {**_released(PENDING, error, recipients_done), "not_before": _db_time(conn, now + backoff)}
    return _fenced(conn, row_id, owner, [SENDING, TRANSMITTING], values)


def mark_failed(conn: Connection, row_id: int, owner: str, *, reason: str,
                recipients_done: Iterable[str] = ()) -> bool:
    """A permanent failure, with the reason (the server's reply) recorded."""
    return _fenced(conn, row_id, owner, [SENDING, TRANSMITTING], _released(FAILED, reason, recipients_done))


def release(conn: Connection, row_id: int, owner: str, *, note: str) -> bool:
    """Give a claimed row back untried (the server was unreachable): ``pending``, due now, and the
    claim's attempt not counted, so an outage never uses up a message's attempts."""
    return _fenced(conn, row_id, owner, [SENDING, TRANSMITTING], {
        "status": PENDING, "lease_owner": None, "lease_until": None, "last_error": note,
        "attempts": case((outbox.c.attempts > 0, outbox.c.attempts - 1), else_=0)})


def release_held(conn: Connection, owner_prefix: str, *, note: str) -> int:
    """Give back the claimed rows of a relay that is stopping (a crashed or cancelled flow run's hook):
    ``sending`` rows whose lease owner starts with ``owner_prefix`` go back to ``pending`` at once,
    their attempt not counted, instead of waiting for the lease to expire. A ``transmitting`` row is
    kept: its outcome is unknown and the lease's expiry makes it ``unknown``."""
    result = conn.execute(update(outbox).where(
        outbox.c.status == SENDING, outbox.c.lease_owner.startswith(owner_prefix, autoescape=True)).values(
        status=PENDING, lease_owner=None, lease_until=None, last_error=note,
        attempts=case((outbox.c.attempts > 0, outbox.c.attempts - 1), else_=0)))
    return int(result.rowcount or 0)


def enqueue_new(conn: Connection, notifications: Sequence[Any], now: datetime) -> int:
    """Queue the notifications whose key is not in the outbox yet (an alert raised once, however
    often it is raised); how many were new. Concurrent callers queue each key once (the key is
    unique: a row another transaction inserted meanwhile is skipped)."""
    if not notifications:
        return 0
    existing = set(conn.execute(select(outbox.c.key).where(
        outbox.c.key.in_([n.key for n in notifications]))).scalars())
    fresh = {n.key: n for n in notifications if n.key not in existing}
    if not fresh:
        return 0
    from sqlalchemy.dialects import postgresql, sqlite

    values = [{"key": n.key, "request_id": n.request_id, "template": n.template, "attempts": 0,
               "notification": notification_json(n), "created_at": _db_time(conn, now), "status": PENDING}
              for n in fresh.values()]
    statement = (postgresql.insert(outbox).values(values).on_conflict_do_nothing(index_elements=["key"])
                 if conn.dialect.name == "postgresql"
                 else sqlite.insert(outbox).values(values).on_conflict_do_nothing(index_elements=["key"]))
    return len(conn.execute(statement.returning(outbox.c.key)).all())


def mark_unknown(conn: Connection, row_id: int, owner: str, *, reason: str,
                 recipients_done: Iterable[str] = ()) -> bool:
    """The outcome is unknown: park the row; it is not resent without ``requeue``."""
    return _fenced(conn, row_id, owner, [SENDING, TRANSMITTING], _released(UNKNOWN, reason, recipients_done))


def list_unknown(conn: Connection) -> list[OutboxRow]:
    """Rows whose outcome is unknown, oldest first."""
    return [_row(r) for r in conn.execute(select(outbox).where(outbox.c.status == UNKNOWN).order_by(outbox.c.id))]


def list_rows(conn: Connection, status: OutboxStatus | None = None, limit: int = 200) -> list[OutboxRow]:
    """Up to ``limit`` rows, newest first, optionally only those with ``status``."""
    query = select(outbox)
    if status is not None:
        query = query.where(outbox.c.status == status)
    return [_row(r) for r in conn.execute(query.order_by(outbox.c.id.desc()).limit(limit))]


def rows_by_key(conn: Connection, keys: Sequence[str]) -> dict[str, OutboxRow]:
    """The rows for those of ``keys`` that exist."""
    if not keys:
        return {}
    return {r.key: _row(r) for r in conn.execute(select(outbox).where(outbox.c.key.in_(list(keys))))}


def sent_as(conn: Connection, message_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Message-IDs ldflow sent (or is sending) → (request id, outbox key): replies are matched by them."""
    ids = list(message_ids)
    if not ids:
        return {}
    rows = conn.execute(select(outbox.c.message_id, outbox.c.request_id, outbox.c.key)
                        .where(outbox.c.message_id.in_(ids))).all()
    return {r.message_id: (r.request_id, r.key) for r in rows}


def rows_for_request(conn: Connection, request_id: int, templates: Sequence[str] = ()) -> list[OutboxRow]:
    """The rows of one request (only those of ``templates`` when given), oldest first."""
    query = select(outbox).where(outbox.c.request_id == request_id)
    if templates:
        query = query.where(outbox.c.template.in_(list(templates)))
    return [_row(r) for r in conn.execute(query.order_by(outbox.c.id))]


def requeue(conn: Connection, now: datetime, *, keys: Sequence[str] | None = None,
            statuses: Sequence[str] = (UNKNOWN,)) -> int:
    """Put ``unknown`` (and optionally ``failed``) rows back to ``pending`` - the explicit retry.

    ``keys`` limits it to those outbox keys. Attempts restart at zero;
    ``recipients_done`` is kept, so recipients already served are skipped.
    Returns the number of rows requeued.
    """
    allowed = [s for s in statuses if s in RETRYABLE]
    statement = update(outbox).where(outbox.c.status.in_(allowed))
    if keys is not None:
        statement = statement.where(outbox.c.key.in_(list(keys)))
    result = conn.execute(statement.values(status=PENDING, not_before=_db_time(conn, now), attempts=0,
                                           lease_owner=None, lease_until=None))
    return int(result.rowcount or 0)


def backoff_for(attempts: int, *, base: timedelta = timedelta(minutes=1),
                cap: timedelta = MAX_BACKOFF) -> timedelta:
    """Exponential backoff: 1, 2, 4, 8 … minutes after attempts 1, 2, 3, 4 …, at most ``cap``."""
    exponent = max(0, attempts - 1)
    if exponent > 30:
        return cap
    delay: timedelta = base * (2**exponent)
    return min(cap, delay)


class SqlOutbox:
    """The :class:`connectors.ports.OutboxLog` port on SQL.

    On an Engine every call is a transaction of its own; on a Connection (``SqlTransaction.outbox``)
    it joins the caller's transaction."""

    def __init__(self, target: Engine | Connection) -> None:
        self._target = target

    def _write(self) -> AbstractContextManager[Connection]:
        return _begin(self._target)

    def _read(self) -> AbstractContextManager[Connection]:
        target = self._target
        return read_transaction(target) if isinstance(target, Engine) else nullcontext(target)

    def claim(self, owner: str, now: datetime, lease: timedelta, limit: int = 100) -> list[OutboxRow]:
        return claim_batch(self._target, owner, now, lease, limit)

    def mark_transmitting(self, row_id: int, owner: str, message_id: str,
                          lease_until: datetime | None = None) -> bool:
        with self._write() as conn:
            return mark_transmitting(conn, row_id, owner, message_id, lease_until)

    def mark_sent(self, row_id: int, owner: str | None, *, message_id: str, now: datetime,
                  recipients_done: Iterable[str] = (), note: str | None = None) -> bool:
        with self._write() as conn:
            return mark_sent(conn, row_id, owner, message_id=message_id, now=now, recipients_done=recipients_done,
                             note=note)

    def release(self, row_id: int, owner: str, *, note: str) -> bool:
        with self._write() as conn:
            return release(conn, row_id, owner, note=note)

    def mark_retry(self, row_id: int, owner: str, *, now: datetime, backoff: timedelta, error: str,
                   recipients_done: Iterable[str] = ()) -> bool:
        with self._write() as conn:
            return mark_retry(conn, row_id, owner, now=now, backoff=backoff, error=error,
                              recipients_done=recipients_done)

    def mark_failed(self, row_id: int, owner: str, *, reason: str, recipients_done: Iterable[str] = ()) -> bool:
        with self._write() as conn:
            return mark_failed(conn, row_id, owner, reason=reason, recipients_done=recipients_done)

    def mark_unknown(self, row_id: int, owner: str, *, reason: str, recipients_done: Iterable[str] = ()) -> bool:
        with self._write() as conn:
            return mark_unknown(conn, row_id, owner, reason=reason, recipients_done=recipients_done)

    def release_held(self, owner_prefix: str, *, note: str) -> int:
        with self._write() as conn:
            return release_held(conn, owner_prefix, note=note)

    def enqueue(self, notifications: Sequence[Any], now: datetime) -> int:
        with self._write() as conn:
            return enqueue_new(conn, notifications, now)

    def requeue(self, now: datetime, *, keys: Sequence[str] | None = None,
                statuses: Sequence[OutboxStatus] = (OutboxStatus.UNKNOWN,)) -> int:
        with self._write() as conn:
            return requeue(conn, now, keys=keys, statuses=statuses)

    def rows(self, status: OutboxStatus | None = None, limit: int = 200) -> list[OutboxRow]:
        with self._read() as conn:
            return list_rows(conn, status, limit)

    def by_keys(self, keys: Sequence[str]) -> dict[str, OutboxRow]:
        with self._read() as conn:
            return rows_by_key(conn, keys)

    def sent_as(self, message_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
        with self._read() as conn:
            return sent_as(conn, message_ids)

    def for_request(self, request_id: int, templates: Sequence[str] = ()) -> list[OutboxRow]:
        with self._read() as conn:
            return rows_for_request(conn, request_id, templates)
