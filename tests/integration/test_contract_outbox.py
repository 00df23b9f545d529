"""The outbox and inbound-log ports and the unit of work: the same cases on the in-memory fakes,
SQLite and PostgreSQL, and every protocol method present in each with a compatible signature."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors import ports
from connectors.db.event_outbox import SqlEventLog
from connectors.db.inbound import Handled, Quarantine, SqlInbound, ingest
from connectors.db.outbox import SqlOutbox
from connectors.db.store import SqlStore
from connectors.db.unit_of_work import SqlTransaction, SqlUnitOfWork
from connectors.email.inbound import InboundItem, InboundRef
from connectors.ports import InboundStatus, OutboxStatus
from connectors.testing import (
    InMemoryEventLog,
    InMemoryInbound,
    InMemoryInbox,
    InMemoryOutbox,
    InMemoryTransaction,
    InMemoryUnitOfWork,
)
from states.errors import Conflict, NotFound
from states.events import EmailSent
from states.models import Intake
from states.request import TrainingRequest
from states.validation import parse
from tests.builders import ACTOR, T0, intake_data

LEASE = timedelta(minutes=5)
BACKENDS = [pytest.param("memory", id="memory"), pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@dataclass
class Backend:
    uow: Any
    history: Any  # request id -> its audit records
    count: Any  # () -> number of requests


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        uow = InMemoryUnitOfWork()
        yield Backend(uow, uow.store.history, lambda: sum(uow.store.counts_by_state().values()))
        return
    engine: Engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    store = SqlStore(engine)
    yield Backend(SqlUnitOfWork(engine, store), store.history, lambda: sum(store.counts_by_state().values()))


def submit(uow: Any, title: str = "Objection handling course") -> int:
    """A new request through the unit of work: it queues its intake acknowledgement."""
    with uow.transaction() as tx:
        request = tx.add(TrainingRequest.submit(parse(Intake, intake_data(title=title)), T0), ACTOR)
    assert request.id is not None
    return int(request.id)


def ack(request_id: int) -> str:
    return f"{request_id}:intake_acknowledgement"


# --- the outbox ------------------------------------------------------------------------------------------

def test_rows_are_listed_newest_first_by_status_and_key(backend: Backend) -> None:
    outbox = backend.uow.outbox
    first, second = submit(backend.uow), submit(backend.uow)
    rows = outbox.rows()
    assert [r.key for r in rows] == [ack(second), ack(first)]
    row = rows[1]
    assert (row.request_id, row.template, row.status, row.attempts) == (first, "intake_acknowledgement",
                                                                        OutboxStatus.PENDING, 0)
    assert row.notification.to[0].email == "rita.requester@example.org" and row.sent_at is None
    assert [r.key for r in outbox.rows(limit=1)] == [ack(second)]
    assert outbox.rows(OutboxStatus.SENT) == []
    assert set(outbox.by_keys([ack(first), "9:nope"])) == {ack(first)}
    assert outbox.by_keys([]) == {}


def test_a_requests_rows_oldest_first_and_by_template(backend: Backend) -> None:
    outbox = backend.uow.outbox
    first, second = submit(backend.uow), submit(backend.uow)
    assert [r.key for r in outbox.for_request(second)] == [ack(second)]
    assert [r.key for r in outbox.for_request(first, ("intake_acknowledgement", "survey"))] == [ack(first)]
    assert outbox.for_request(first, ("plan_approval_request",)) == [] and outbox.for_request(99) == []
    [row] = outbox.for_request(first)
    assert row.notification.to[0].email == "rita.requester@example.org"


def test_claims_take_due_rows_once_and_expired_leases_are_taken_over(backend: Backend) -> None:
    outbox = backend.uow.outbox
    first, second = submit(backend.uow), submit(backend.uow)
    [a] = outbox.claim("a", T0, LEASE, limit=1)
    assert (a.key, a.status, a.attempts, a.lease_owner, a.lease_until) == (ack(first), OutboxStatus.SENDING, 1,
                                                                           "a", T0 + LEASE)
    assert [r.key for r in outbox.claim("b", T0, LEASE)] == [ack(second)]
    assert outbox.claim("c", T0 + timedelta(minutes=1), LEASE) == []
    assert outbox.claim("c", T0, LEASE, limit=0) == []
    later = outbox.claim("c", T0 + LEASE + timedelta(seconds=1), LEASE)
    assert [(r.key, r.attempts, r.lease_owner) for r in later] == [(ack(first), 2, "c"), (ack(second), 2, "c")]


def test_marks_are_fenced_by_the_lease_owner(backend: Backend) -> None:
    outbox = backend.uow.outbox
    rid = submit(backend.uow)
    [row] = outbox.claim("a", T0, LEASE)
    assert not outbox.mark_sent(row.id, "b", message_id="<m@x>", now=T0)
    assert not outbox.mark_failed(row.id, "b", reason="no")
    assert outbox.mark_transmitting(row.id, "a", "<m@x>", T0 + LEASE * 2)
    assert not outbox.mark_transmitting(row.id, "a", "<m@x>")  # only from sending
    assert outbox.sent_as(["<m@x>", "<other@x>"]) == {"<m@x>": (rid, ack(rid))}
    assert outbox.mark_sent(row.id, "a", message_id="<m@x>", now=T0, recipients_done=["Rita@Example.org"],
                            note="one refusal")
    assert not outbox.mark_sent(row.id, "a", message_id="<m@x>", now=T0)  # the lease is released
    [sent] = outbox.rows(OutboxStatus.SENT)
    assert (sent.sent_at, sent.message_id, sent.last_error, sent.lease_owner) == (T0, "<m@x>", "one refusal", None)
    assert sent.recipients_done == frozenset({"rita@example.org"})


def test_a_relay_that_dies_while_transmitting_leaves_the_row_unknown_until_an_operator_acts(backend: Backend) -> None:
    outbox = backend.uow.outbox
    rid = submit(backend.uow)
    [row] = outbox.claim("dead", T0, LEASE)
    assert outbox.mark_transmitting(row.id, "dead", "<m@x>")
    assert outbox.claim("next", T0 + LEASE + timedelta(seconds=1), LEASE) == []  # never resent by itself
    [unknown] = outbox.rows(OutboxStatus.UNKNOWN)
    assert unknown.key == ack(rid) and "outcome unknown" in (unknown.last_error or "")
    assert not outbox.mark_unknown(row.id, "dead", reason="late")  # the lease is gone
    assert outbox.requeue(T0, keys=[ack(rid)], statuses=(OutboxStatus.FAILED,)) == 0  # not failed
    assert outbox.mark_sent(row.id, None, message_id="<m@x>", now=T0)  # an operator closes it
    assert not outbox.mark_sent(row.id, None, message_id="<m@x>", now=T0)  # only an unknown row
    assert outbox.rows(OutboxStatus.SENT)[0].key == ack(rid)


def test_requeue_puts_unknown_and_failed_rows_back_with_fresh_attempts(backend: Backend) -> None:
    outbox = backend.uow.outbox
    first, second, third = submit(backend.uow), submit(backend.uow), submit(backend.uow)
    rows = {r.key: r for r in outbox.claim("a", T0, LEASE)}
    assert outbox.mark_failed(rows[ack(first)].id, "a", reason="550 no such user")
    assert outbox.mark_unknown(rows[ack(second)].id, "a", reason="connection lost after DATA")
    assert outbox.mark_retry(rows[ack(third)].id, "a", now=T0, backoff=timedelta(minutes=2), error="421 busy")
    assert outbox.requeue(T0, keys=[ack(third)], statuses=(OutboxStatus.UNKNOWN, OutboxStatus.FAILED)) == 0
    assert outbox.claim("b", T0 + timedelta(minutes=1), LEASE) == []  # the retry waits for its backoff
    assert outbox.requeue(T0, statuses=(OutboxStatus.PENDING, OutboxStatus.SENT)) == 0  # only unknown, failed
    assert outbox.requeue(T0) == 1  # the unknown one
    assert outbox.requeue(T0, keys=[ack(first)], statuses=(OutboxStatus.UNKNOWN, OutboxStatus.FAILED)) == 1
    claimed = outbox.claim("b", T0 + timedelta(minutes=2), LEASE)
    assert sorted((r.key, r.attempts) for r in claimed) == sorted([(ack(first), 1), (ack(second), 1),
                                                                   (ack(third), 2)])


# --- the inbound log ----------------------------------------------------------------------------------

def test_inbound_messages_are_recorded_once_by_uid_or_message_id(backend: Backend) -> None:
    inbound = backend.uow.inbound
    ref = InboundRef("imap:INBOX", "<a@x>", 5, 1)
    assert not inbound.seen(ref)
    first = inbound.claim(ref, received_at=T0)
    assert first is not None and inbound.seen(ref)
    assert inbound.claim(ref, received_at=T0) is None
    assert inbound.claim(InboundRef("imap:INBOX", "<a@x>", 6, 9), received_at=T0) is None  # same Message-ID
    assert inbound.seen(InboundRef("imap:INBOX", None, 5, 1))  # same UID
    assert not inbound.seen(InboundRef("imap:Other", "<a@x>", 5, 1))  # another source
    assert inbound.claim(InboundRef("imap:INBOX", "<b@x>", 5, 7), received_at=T0) is not None
    assert (inbound.max_uid("imap:INBOX", 5), inbound.max_uid("imap:INBOX", 6)) == (7, None)
    inbound.set_outcome(first, status=InboundStatus.QUARANTINED, reason="unreadable", raw_path="/q/a.eml")
    second = inbound.record(InboundRef("drop:x", "<c@x>"), received_at=T0, status=InboundStatus.QUARANTINED,
                            reason="no sender")
    assert inbound.record(InboundRef("drop:x", "<c@x>"), received_at=T0, status=InboundStatus.PROCESSED) is None
    found = inbound.quarantined()
    assert [(r.id, r.reason, r.raw_path) for r in found] == [(second, "no sender", None),
                                                             (first, "unreadable", "/q/a.eml")]
    assert (found[1].received_at, found[1].status, found[1].uid) == (T0, InboundStatus.QUARANTINED, 1)
    assert [r.id for r in inbound.quarantined(limit=1)] == [second]
    with pytest.raises(ValueError, match="processed or quarantined"):
        inbound.set_outcome(first, status="lost")


# --- the unit of work ---------------------------------------------------------------------------------

def test_a_transaction_commits_everything_or_nothing(backend: Backend) -> None:
    uow = backend.uow
    rid = submit(uow)
    with pytest.raises(RuntimeError), uow.transaction() as tx:
        tx.add(TrainingRequest.submit(parse(Intake, intake_data(title="Never committed")), T0), ACTOR)
        tx.inbound.claim(InboundRef("drop:x", "<rolled-back@x>"), received_at=T0)
        tx.record_events(rid, [EmailSent(key=ack(rid), template="intake_acknowledgement")], ACTOR, T0)
        tx.update(rid, ACTOR, lambda r: r.add_note("never", T0))
        raise RuntimeError("the command failed half-way")
    assert backend.count() == 1 and [r.key for r in uow.outbox.rows()] == [ack(rid)]
    assert not uow.inbound.seen(InboundRef("drop:x", "<rolled-back@x>"))
    assert [h.type for h in backend.history(rid)] == ["submitted"]
    with uow.transaction() as tx:
        updated = tx.update(rid, ACTOR, lambda r: r.add_note("kept", T0), expect_version=1)
        tx.record_events(rid, [EmailSent(key=ack(rid), template="intake_acknowledgement")], "relay", T0)
    assert updated.version == 2 and not updated.pending_events()
    history = backend.history(rid)
    assert [(h.type, h.version, h.actor) for h in history] == [("submitted", 1, ACTOR), ("note_added", 2, ACTOR),
                                                                ("email_sent", 2, "relay")]
    with pytest.raises(Conflict), uow.transaction() as tx:
        tx.update(rid, ACTOR, lambda r: r.add_note("stale", T0), expect_version=1)
    with pytest.raises(NotFound), uow.transaction() as tx:
        tx.record_events(999, [EmailSent(key="999:intake_acknowledgement", template="intake_acknowledgement")],
                         ACTOR, T0)


def test_ingest_records_each_item_with_what_its_handler_did_in_one_transaction(backend: Backend) -> None:
    uow = backend.uow
    inbox = InMemoryInbox()
    for n in range(3):
        inbox.add(f"From: Nora <nora@example.org>\r\nSubject: Request {n}\r\nMessage-ID: <r{n}@x>\r\n\r\n"
                  f"Please help\r\n".encode())

    def handle(tx: Any, item: InboundItem) -> Handled:
        assert item.message is not None
        request = tx.add(TrainingRequest.submit(parse(Intake, intake_data(title=item.message.subject)), T0), ACTOR)
        if item.message.subject == "Request 1":
            raise Quarantine("changed its mind")  # rolls back the request added above
        return Handled(InboundStatus.PROCESSED, request.id)

    summary = ingest(uow, inbox, handle, T0)
    assert (summary.processed, summary.quarantined, summary.skipped) == (2, 1, 0)
    assert backend.count() == 2 and len(uow.outbox.rows()) == 2
    [quarantined] = uow.inbound.quarantined()
    assert (quarantined.message_id, quarantined.reason) == ("<r1@x>", "changed its mind")
    assert inbox.seen == {1, 2, 3}
    inbox.seen.clear()
    again = ingest(uow, inbox, handle, T0)
    assert (again.processed, again.quarantined, again.skipped) == (0, 0, 0) and backend.count() == 2


# --- the event outbox ------------------------------------------------------------------------------------


def test_a_changes_prefect_events_commit_with_it_or_not_at_all(backend: Backend) -> None:
    rid = submit(backend.uow)
    staged = backend.uow.events.pending()
    assert [e.event for e in staged] == ["ldflow.request.submitted", "ldflow.outbox.enqueued"]
    assert staged[0].resource["prefect.resource.id"] == f"ldflow.request.{rid}"
    assert staged[1].payload["keys"] == [f"{rid}:intake_acknowledgement"]
    with pytest.raises(RuntimeError), backend.uow.transaction() as tx:
        tx.record_events(rid, [EmailSent(key=f"{rid}:x", template="t", to=("a@example.org",))], ACTOR, T0)
        raise RuntimeError("rolled back")
    assert backend.uow.events.count_pending() == 2
    with backend.uow.transaction() as tx:
        tx.record_events(rid, [EmailSent(key=f"{rid}:x", template="t", to=("a@example.org",))], ACTOR, T0)
    assert [e.event for e in backend.uow.events.pending()][-1] == "ldflow.request.email_sent"


def test_published_events_are_no_longer_pending_and_are_pruned_later(backend: Backend) -> None:
    submit(backend.uow)
    submit(backend.uow, "Second course")
    log = backend.uow.events
    first, *rest = log.pending(limit=10)
    assert len(rest) == 3 and [e.id for e in log.pending(limit=2)] == [first.id, rest[0].id]  # oldest first
    now = first.occurred + timedelta(seconds=1)
    assert log.mark_published([first.id], now) == 1
    assert log.mark_published([first.id], now) == 0  # once
    assert [e.id for e in log.pending()] == [e.id for e in rest] and log.count_pending() == 3
    assert log.prune(published_before=now, pending_before=first.occurred) == 0  # nothing old enough
    assert log.prune(published_before=now + timedelta(seconds=1), pending_before=first.occurred) == 1
    assert log.count_pending() == 3
    assert log.prune(published_before=now, pending_before=now + timedelta(days=1)) == 3  # stale, never published
    assert log.pending() == []


# --- the signatures -------------------------------------------------------------------------------------

def _members(protocol: type) -> dict[str, Any]:
    return {name: value for name, value in vars(protocol).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))}


def _shape(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(("protocol", "implementations"), [
    (ports.OutboxLog, [SqlOutbox, InMemoryOutbox]),
    (ports.InboundLog, [SqlInbound, InMemoryInbound]),
    (ports.EventLog, [SqlEventLog, InMemoryEventLog]),
    (ports.Transaction, [SqlTransaction, InMemoryTransaction]),
    (ports.UnitOfWork, [SqlUnitOfWork, InMemoryUnitOfWork]),
], ids=["OutboxLog", "InboundLog", "EventLog", "Transaction", "UnitOfWork"])
def test_every_port_method_is_implemented_with_its_signature(protocol: type, implementations: list[type]) -> None:
    members = _members(protocol)
    assert members, protocol
    for implementation in implementations:
        for name, member in members.items():
            actual = inspect.getattr_static(implementation, name, None)
            assert actual is not None, f"{implementation.__name__} lacks {name}"
            if isinstance(member, property):
                assert isinstance(actual, property), f"{implementation.__name__}.{name} is not a property"
                continue
            assert _shape(actual) == _shape(member), f"{implementation.__name__}.{name}"


def test_enqueue_queues_a_mail_about_no_request_once_per_key(backend: Backend) -> None:
    from states.notifications import Notification, Recipient

    note = Notification(key="attention_digest:2026-04-21:ops@example.org", request_id=0, template="attention_digest",
                        to=(Recipient("Ops", "ops@example.org", "ops"),), subject="Attention: 1 item",
                        context={"items": [{"request_id": 7, "text": "x"}]})
    outbox = backend.uow.outbox
    assert outbox.enqueue([note], T0) == 1
    assert outbox.enqueue([note], T0 + timedelta(hours=1)) == 0  # the same key: nothing written
    [row] = [r for r in outbox.rows(OutboxStatus.PENDING) if r.key == note.key]
    assert row.request_id == 0 and row.template == "attention_digest"
    assert row.notification.context["items"] == [{"request_id": 7, "text": "x"}]
    assert row.notification.to[0].email == "ops@example.org"
    with backend.uow.transaction() as tx:  # inside a transaction it joins it
        assert tx.outbox.enqueue([note], T0) == 0


def test_enqueue_queues_each_key_once(backend: Backend) -> None:
    from states.notifications import Notification, Recipient

    def alert(key: str) -> Notification:
        return Notification(key=key, request_id=0, template="ops_alert", to=(Recipient("Ops", "ops@example.org"),),
                            subject="ldflow alert", context={"kind": "mail"})

    assert backend.uow.outbox.enqueue([alert("alert:a"), alert("alert:b")], T0) == 2
    assert backend.uow.outbox.enqueue([alert("alert:a"), alert("alert:c")], T0 + LEASE) == 1
    rows = backend.uow.outbox.by_keys(["alert:a", "alert:b", "alert:c"])
    assert sorted(rows) == ["alert:a", "alert:b", "alert:c"]
    assert {r.status for r in rows.values()} == {OutboxStatus.PENDING}
    assert rows["alert:a"].notification.to[0].email == "ops@example.org"


def test_release_held_gives_back_a_stopping_relays_claims_not_its_transmitting_row(backend: Backend) -> None:
    ids = [submit(backend.uow, f"Course {i}") for i in range(4)]
    outbox = backend.uow.outbox
    mine = outbox.claim("host:42:1", T0, LEASE, limit=3)
    other = outbox.claim("host:420:1", T0, LEASE, limit=1)
    assert len(mine) == 3 and len(other) == 1
    assert outbox.mark_transmitting(mine[0].id, "host:42:1", "<m@x>")
    assert outbox.release_held("host:42:", note="flow run crashed") == 2
    rows = outbox.by_keys([ack(i) for i in ids])
    statuses = {r.key: (r.status, r.attempts) for r in rows.values()}
    assert statuses[mine[0].key] == (OutboxStatus.TRANSMITTING, 1)
    assert statuses[mine[1].key] == statuses[mine[2].key] == (OutboxStatus.PENDING, 0)
    assert statuses[other[0].key] == (OutboxStatus.SENDING, 1)
    assert [r.key for r in outbox.claim("host:7:1", T0, LEASE)] == [mine[1].key, mine[2].key]
