"""The outbox relay on a real database (SQLite, PostgreSQL): leases, crashes, concurrency."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from connectors.db import outbox as ob
from connectors.db.engine import write_transaction
from connectors.db.tables import outbox
from connectors.db.unit_of_work import SqlUnitOfWork
from connectors.email.render import message_id_for
from connectors.email.smtp import (
    FileSender,
    PermanentSendError,
    Refusal,
    TemporarySendError,
    UnknownOutcomeError,
)
from connectors.testing import InMemorySender
from flows.relay import relay_outbox
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import (
    DOMAIN,
    T0,
    enqueue,
    make_notification,
    outbox_rows,
    renderer,
)

# fixtures shared with the other mail/calendar test modules
mail_engine = cm.mail_engine

LEASE = timedelta(minutes=5)


def test_claim_takes_due_rows_once(mail_engine: Engine) -> None:
    enqueue(mail_engine, *[make_notification(f"{i}:k", request_id=i) for i in range(1, 4)])
    first = ob.claim_batch(mail_engine, "a", T0, LEASE, limit=2)
    second = ob.claim_batch(mail_engine, "b", T0, LEASE, limit=10)
    third = ob.claim_batch(mail_engine, "c", T0, LEASE, limit=10)
    assert [r.key for r in first] == ["1:k", "2:k"]
    assert [r.key for r in second] == ["3:k"]
    assert third == []
    assert first[0].notification.to[0].email == "dana@example.org"
    assert first[0].attempts == 1 and first[0].lease_owner == "a"


def test_crashed_relay_rows_are_reclaimed_after_the_lease_and_sent_once(mail_engine: Engine) -> None:
    enqueue(mail_engine, make_notification("1:a"), make_notification("2:b", request_id=2))
    # relay "dead" claims both and dies before sending anything
    assert len(ob.claim_batch(mail_engine, "dead", T0, LEASE)) == 2
    sender = InMemorySender()
    # within the lease nobody else may take them
    assert relay_outbox(mail_engine, sender, renderer(), T0 + timedelta(minutes=1), "live").claimed == 0
    summary = relay_outbox(mail_engine, sender, renderer(), T0 + LEASE + timedelta(seconds=1), "live")
    assert (summary.claimed, summary.sent) == (2, 2)
    assert sorted(str(m["Message-ID"]) for m in sender.messages) == sorted(
        message_id_for(k, DOMAIN) for k in ("1:a", "2:b"))
    # the dead relay wakes up: its late verdicts are refused by the lease fence
    with write_transaction(mail_engine) as conn:
        row_id = outbox_rows(mail_engine)["1:a"]["id"]
        assert not ob.mark_failed(conn, row_id, "dead", reason="late")
    assert outbox_rows(mail_engine)["1:a"]["status"] == "sent"
    # and a confirmed send is never sent again
    assert relay_outbox(mail_engine, sender, renderer(), T0 + timedelta(days=2), "live").claimed == 0
    assert len(sender.messages) == 2


def test_crash_while_transmitting_becomes_unknown_not_a_resend(mail_engine: Engine) -> None:
    enqueue(mail_engine, make_notification("1:a"))
    [row] = ob.claim_batch(mail_engine, "dead", T0, LEASE)
    with write_transaction(mail_engine) as conn:
        assert ob.mark_transmitting(conn, row.id, "dead", message_id_for(row.key, DOMAIN))
    sender = InMemorySender()
    summary = relay_outbox(mail_engine, sender, renderer(), T0 + LEASE * 2, "live")
    assert summary.claimed == 0 and sender.messages == []
    state = outbox_rows(mail_engine)["1:a"]
    assert state["status"] == "unknown" and "outcome unknown" in state["last_error"]
    with mail_engine.connect() as conn:
        assert [r.key for r in ob.list_unknown(conn)] == ["1:a"]
    # an operator who checked the server log can close it without sending
    with write_transaction(mail_engine) as conn:
        assert ob.mark_sent(conn, row.id, None, message_id=message_id_for(row.key, DOMAIN), now=T0)
    assert outbox_rows(mail_engine)["1:a"]["status"] == "sent"


def test_requeue_is_the_explicit_retry(mail_engine: Engine) -> None:
    enqueue(mail_engine, make_notification("1:a"), make_notification("2:b", request_id=2))
    sender = InMemorySender()
    sender.failures = [UnknownOutcomeError("lost"), PermanentSendError("550 no")]
    relay_outbox(mail_engine, sender, renderer(), T0, "r")
    rows = outbox_rows(mail_engine)
    assert (rows["1:a"]["status"], rows["2:b"]["status"]) == ("unknown", "failed")
    with write_transaction(mail_engine) as conn:
        assert ob.requeue(conn, T0, keys=["1:a"]) == 1
        assert ob.requeue(conn, T0, keys=["2:b"], statuses=("failed",)) == 1
    assert relay_outbox(mail_engine, sender, renderer(), T0, "r").sent == 2


def test_temporary_failures_back_off_then_give_up(mail_engine: Engine) -> None:
    enqueue(mail_engine, make_notification("1:a"))
    sender = InMemorySender()
    sender.failures = [TemporarySendError("421 busy")] * 3
    now = T0
    delays = []
    for _ in range(3):
        relay_outbox(mail_engine, sender, renderer(), now, "r", max_attempts=3)
        row = outbox_rows(mail_engine)["1:a"]
        if row["status"] != "pending":
            break
        not_before = row["not_before"].replace(tzinfo=None)
        delays.append(not_before - now.replace(tzinfo=None))
        now = now + (not_before - now.replace(tzinfo=None)) + timedelta(seconds=1)
    assert delays == [timedelta(minutes=1), timedelta(minutes=2)]
    row = outbox_rows(mail_engine)["1:a"]
    assert row["status"] == "failed" and "gave up after 3 attempts" in row["last_error"]


def test_partial_refusal_is_bookkept_per_recipient(mail_engine: Engine) -> None:
    to = ("ann@example.org", "bob@example.org", "cat@example.org")
    enqueue(mail_engine, make_notification("1:a", to=to))
    sender = InMemorySender()
    sender.refuse["cat@example.org"] = Refusal(450, "greylisted")
    relay_outbox(mail_engine, sender, renderer(), T0, "r")
    row = outbox_rows(mail_engine)["1:a"]
    assert row["status"] == "pending"
    assert json.loads(row["recipients_done"]) == ["ann@example.org", "bob@example.org"]
    sender.refuse.clear()
    relay_outbox(mail_engine, sender, renderer(), T0 + timedelta(hours=1), "r")
    for address in to:
        assert len(sender.deliveries(address)) == 1


def test_unrenderable_notification_fails_with_the_reason(mail_engine: Engine) -> None:
    enqueue(mail_engine, make_notification("1:a", template="no_such_template"),
            make_notification("2:b", request_id=2, to=("alice@example.org(<bob@example.com>",)))
    summary = relay_outbox(mail_engine, InMemorySender(), renderer(), T0, "r")
    assert summary.failed == 2
    rows = outbox_rows(mail_engine)
    assert "no template no_such_template" in rows["1:a"]["last_error"]
    assert "not a single plain address" in rows["2:b"]["last_error"]


def test_concurrent_relays_send_every_message_exactly_once(mail_engine: Engine) -> None:
    count = 40
    enqueue(mail_engine, *[make_notification(f"{i}:k", request_id=i) for i in range(1, count + 1)])
    sender = InMemorySender()
    errors: list[BaseException] = []

    def run(owner: str) -> None:
        try:
            for _ in range(10):
                relay_outbox(mail_engine, sender, renderer(), T0, owner, batch=5)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"relay-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    ids = [str(m["Message-ID"]) for m in sender.messages]
    assert len(ids) == count and len(set(ids)) == count
    assert {r["status"] for r in outbox_rows(mail_engine).values()} == {"sent"}


def test_file_sender_relay_is_idempotent_across_a_crash(mail_engine: Engine, tmp_path) -> None:
    enqueue(mail_engine, make_notification("1:a"))
    sender = FileSender(tmp_path / "outbox")
    [row] = ob.claim_batch(mail_engine, "dead", T0, LEASE)
    # the dead relay wrote the file but never recorded it
    sender.send(renderer()(row.notification))
    relay_outbox(mail_engine, sender, renderer(), T0 + LEASE * 2, "live")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    assert outbox_rows(mail_engine)["1:a"]["status"] == "sent"


def test_outcome_hook_runs_in_the_recording_transaction(mail_engine: Engine) -> None:
    enqueue(mail_engine, make_notification("1:a"))
    seen: list[tuple[str, str]] = []

    def hook(tx, row, outcome, detail) -> None:  # type: ignore[no-untyped-def]
        seen.append((row.key, outcome))
        tx.connection.execute(update(outbox).where(outbox.c.id == row.id).values(template="hooked"))

    relay_outbox(mail_engine, InMemorySender(), renderer(), T0, "r", on_outcome=hook)
    assert seen == [("1:a", "sent")]
    assert outbox_rows(mail_engine)["1:a"]["template"] == "hooked"


def test_a_failing_outcome_hook_rolls_the_outcome_back(mail_engine: Engine) -> None:
    enqueue(mail_engine, make_notification("1:a"))

    def hook(tx, row, outcome, detail) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("history write failed")

    with pytest.raises(RuntimeError, match="history write failed"):
        relay_outbox(SqlUnitOfWork(mail_engine), InMemorySender(), renderer(), T0, "r", on_outcome=hook)
    # not recorded as sent: still as it was committed before the data went out
    assert outbox_rows(mail_engine)["1:a"]["status"] == "transmitting"


def test_transmitting_renews_the_lease(mail_engine: Engine) -> None:
    enqueue(mail_engine, make_notification("1:a"))
    [row] = ob.claim_batch(mail_engine, "slow", T0, LEASE)
    with write_transaction(mail_engine) as conn:
        assert ob.mark_transmitting(conn, row.id, "slow", message_id_for(row.key, DOMAIN), T0 + LEASE * 3)
    # past the original lease, but within the renewed one: another relay leaves it alone
    assert ob.claim_batch(mail_engine, "other", T0 + LEASE * 2, LEASE) == []
    with write_transaction(mail_engine) as conn:
        assert ob.mark_sent(conn, row.id, "slow", message_id=message_id_for(row.key, DOMAIN), now=T0)
    assert outbox_rows(mail_engine)["1:a"]["status"] == "sent"


def _invite(key: str, method: str = "REQUEST", start: str = "2026-12-01T09:00:00+00:00", sequence: int = 0):  # type: ignore[no-untyped-def]
    from states.notifications import CalendarItem, Recipient

    cal = CalendarItem(uid="ldflow-1-delivery@ldflow", kind="event", summary="Workshop", start=start,
                       end=start.replace("09:00", "11:00"), organizer=Recipient("L&D", "ld-team@example.org"),
                       attendees=(Recipient("Dana", "dana@example.org"),), sequence=sequence, method=method)
    return make_notification(key, template="delivery_invite", calendar=cal,
                             context={"request": {"title": "Sales coaching"}})


def test_calendar_items_are_published_with_their_mail(mail_engine: Engine) -> None:
    from connectors.testing import InMemoryCalendar

    calendar = InMemoryCalendar()
    sender = InMemorySender()
    enqueue(mail_engine, _invite("1:delivery_invite:v1"))
    summary = relay_outbox(mail_engine, sender, renderer(), T0, "r", calendar=calendar)
    assert (summary.sent, summary.published) == (1, 1)
    enqueue(mail_engine, _invite("1:delivery_invite:v2", start="2026-12-08T09:00:00+00:00", sequence=1),
            _invite("1:delivery_cancelled", method="CANCEL", start="2026-12-08T09:00:00+00:00", sequence=2))
    relay_outbox(mail_engine, sender, renderer(), T0, "r", calendar=calendar)
    [vevent] = calendar.objects["ldflow-1-delivery@ldflow"].walk("VEVENT")
    assert str(vevent["STATUS"]) == "CANCELLED" and int(vevent["SEQUENCE"]) == 2
    assert len(sender.messages) == 3


def test_a_calendar_outage_retries_the_row(mail_engine: Engine) -> None:
    from connectors.calendar.caldav_client import CaldavError
    from connectors.testing import InMemoryCalendar

    class Down(InMemoryCalendar):
        def publish(self, item, *, dtstamp=None):  # type: ignore[no-untyped-def]
            raise CaldavError("PUT: HTTP 503")

    sender = InMemorySender()
    enqueue(mail_engine, _invite("1:delivery_invite:v1"))
    summary = relay_outbox(mail_engine, sender, renderer(), T0, "r", calendar=Down())
    assert summary.retried == 1 and sender.messages == []
    assert "calendar publishing failed" in outbox_rows(mail_engine)["1:delivery_invite:v1"]["last_error"]
    calendar = InMemoryCalendar()
    relay_outbox(mail_engine, sender, renderer(), T0 + timedelta(hours=1), "r", calendar=calendar)
    assert calendar.uids() == ["ldflow-1-delivery@ldflow"] and len(sender.messages) == 1
