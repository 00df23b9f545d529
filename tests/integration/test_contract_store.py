"""The ``RequestStore`` port's contract, method by method, on the fake, SQLite and PostgreSQL.

``test_store.py`` runs the service's view of the same stores (round trips, listing, timers,
stale saves); the cases here are the ones it leaves out: what ``add``, ``get`` and ``update``
promise, their errors, the refused sort key and the reminder limit of ``unanswered_checkpoints``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.audit_chain import GENESIS
from connectors.ports import SORT_KEYS, ListFilter, RequestStore
from flows.clock import FixedClock
from flows.service import Service
from states.errors import Conflict, NotFound
from states.models import Intake
from states.request import TrainingRequest
from states.validation import parse
from tests.builders import ACTOR, T0, companion_data, drive_to, intake_data, record_when_due, result_data


def new_request(title: str = "Objection handling course") -> TrainingRequest:
    return TrainingRequest.submit(parse(Intake, intake_data(title=title)), T0)


def test_add_assigns_ids_and_version_one_and_records_the_submission(any_store: RequestStore) -> None:
    first, second = new_request("Alpha course"), new_request("Bravo course")
    assert any_store.add(first, ACTOR) is first
    any_store.add(second, "bea@example.org")
    assert (first.id, first.version, second.id, second.version) == (1, 1, 2, 1)
    assert first.pending_events() == [] and first.pending_notifications() == []
    [record] = any_store.history(2)
    assert (record.seq, record.rseq, record.request_id, record.type, record.version, record.actor) == (
        2, 1, 2, "submitted", 1, "bea@example.org")
    # each request's chain starts on its own: no link to the other request's event
    assert any_store.history(1)[0].prev_hash == GENESIS and record.prev_hash == GENESIS
    assert record.hash != any_store.history(1)[0].hash
    assert any_store.get(2).intake.title == "Bravo course"


def test_get_returns_a_fresh_copy_each_time(any_store: RequestStore) -> None:
    rid = any_store.add(new_request(), ACTOR).id
    assert rid is not None
    loaded = any_store.get(rid)
    loaded.add_note("not saved", T0 + timedelta(hours=1))
    again = any_store.get(rid)
    assert again is not loaded and again.updated_at == T0 and again.pending_events() == []
    assert [e.type for e in any_store.history(rid)] == ["submitted"]
    assert again.model_dump() == any_store.get(rid).model_dump()


def test_unknown_ids_are_not_found(any_store: RequestStore) -> None:
    calls: list[int] = []
    with pytest.raises(NotFound):
        any_store.get(7)
    with pytest.raises(NotFound):
        any_store.update(7, ACTOR, lambda r: calls.append(1))
    assert calls == []  # nothing to change, so the change never ran
    assert any_store.counts_by_state() == {} and any_store.verify().events_checked == 0


def test_save_commits_the_pending_changes_and_bumps_the_version(any_store: RequestStore) -> None:
    rid = any_store.add(new_request(), ACTOR).id
    assert rid is not None
    request = any_store.get(rid)
    request.add_note("called the sponsor", T0)
    assert any_store.save(request, "carl@example.org") is request
    assert request.version == 2 and request.pending_events() == []
    assert [(e.type, e.version, e.actor) for e in any_store.history(rid)] == [
        ("submitted", 1, ACTOR), ("note_added", 2, "carl@example.org")]
    assert any_store.history(rid)[1].payload == {"text": "called the sponsor"}


def test_update_applies_the_change_in_one_commit(any_store: RequestStore) -> None:
    rid = any_store.add(new_request(), ACTOR).id
    assert rid is not None
    seen: list[int] = []

    def mutate(request: TrainingRequest) -> None:
        seen.append(request.version)
        request.add_note("first", T0)
        request.add_note("second", T0)

    updated = any_store.update(rid, "dora@example.org", mutate, expect_version=1)
    assert seen == [1] and updated.version == 2 and updated.pending_events() == []
    history = any_store.history(rid)
    assert [(e.type, e.version, e.actor) for e in history[1:]] == [
        ("note_added", 2, "dora@example.org"), ("note_added", 2, "dora@example.org")]
    assert [e.payload["text"] for e in history[1:]] == ["first", "second"]
    assert any_store.verify().ok


def test_update_with_a_stale_expected_version_is_a_conflict_and_writes_nothing(any_store: RequestStore) -> None:
    rid = any_store.add(new_request(), ACTOR).id
    assert rid is not None
    any_store.update(rid, ACTOR, lambda r: r.add_note("moved on", T0))
    calls: list[int] = []
    with pytest.raises(Conflict) as info:
        any_store.update(rid, ACTOR, lambda r: calls.append(1), expect_version=1)
    assert (info.value.request_id, info.value.expected, info.value.actual) == (rid, 1, 2)
    assert calls == []
    assert any_store.get(rid).version == 2 and len(any_store.history(rid)) == 2


def test_update_whose_change_raises_writes_nothing(any_store: RequestStore) -> None:
    rid = any_store.add(new_request(), ACTOR).id
    assert rid is not None
    before = any_store.get(rid).model_dump()

    def half_done(request: TrainingRequest) -> None:
        request.add_note("half", T0)
        raise ValueError("refused half-way")

    with pytest.raises(ValueError, match="refused half-way"):
        any_store.update(rid, ACTOR, half_done)
    after = any_store.get(rid)
    assert after.version == 1 and after.model_dump() == before
    assert [e.type for e in any_store.history(rid)] == ["submitted"]
    assert any_store.verify().ok


def test_list_accepts_every_sort_key_and_refuses_others(any_store: RequestStore) -> None:
    for title in ("Bravo course", "Alpha course", "Charlie course"):
        any_store.add(new_request(title), ACTOR)
    for key in SORT_KEYS:
        for sort in (key, f"-{key}"):
            rows, total = any_store.list(ListFilter(sort=sort))
            assert total == 3 and sorted(r.id for r in rows) == [1, 2, 3], sort
    titles = [r.title for r in any_store.list(ListFilter(sort="title"))[0]]
    assert titles == ["Alpha course", "Bravo course", "Charlie course"]
    for bad in ("bogus", "-bogus", "requester"):
        with pytest.raises(KeyError):
            any_store.list(ListFilter(sort=bad))


def test_unanswered_checkpoints_count_from_the_last_reminder_and_honour_the_limit(
        any_store: RequestStore, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    rid = drive_to(service, "delivered").id  # delivered 2026-04-20 09:00; m2:P1D is due a day later
    key = f"{rid}:m2:P1D"
    sent_at = datetime(2026, 4, 21, 10, tzinfo=UTC)
    clock.set(sent_at)
    service.send_due_checkpoints(ACTOR, timedelta(days=14))
    assert any_store.unanswered_checkpoints(sent_at) == [(rid, key)]
    assert any_store.unanswered_checkpoints(sent_at, max_reminders=0) == []
    assert any_store.unanswered_checkpoints(sent_at, max_reminders=1) == [(rid, key)]
    assert any_store.unanswered_checkpoints(sent_at, limit=0) == []

    reminded_at = sent_at + timedelta(days=3)
    clock.set(reminded_at)
    assert service.send_reminders(ACTOR, after=timedelta(days=2), max_reminders=2) == 1
    # the reminder, not the first survey, is what the next one counts from
    assert any_store.unanswered_checkpoints(reminded_at - timedelta(seconds=1)) == []
    assert any_store.unanswered_checkpoints(reminded_at) == [(rid, key)]
    assert any_store.unanswered_checkpoints(reminded_at, max_reminders=1) == []
    assert any_store.unanswered_checkpoints(reminded_at, max_reminders=2) == [(rid, key)]
    assert any_store.due_checkpoints(reminded_at) == []


def test_due_counts_and_measurable_requests_follow_the_checkpoints(any_store: RequestStore, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    first = drive_to(service, "delivered")
    second = drive_to(service, "delivered")
    drive_to(service, "designed")  # no checkpoints: never measurable
    keys = [c.key for c in first.checkpoints]
    far = datetime(2030, 1, 1, tzinfo=UTC)
    assert any_store.count_due_checkpoints(T0) == 0
    assert any_store.count_due_checkpoints(far) == 2 * len(keys) == len(any_store.due_checkpoints(far))
    assert any_store.measurable_requests() == []
    for key in keys:
        data = result_data() if key != keys[0] else result_data(None, "nobody answered")
        record_when_due(service, first.id, key, data, ACTOR)
    assert any_store.measurable_requests() == [first.id]
    assert any_store.measurable_requests(after_id=first.id) == []
    assert any_store.measurable_requests(limit=0) == []
    assert any_store.count_due_checkpoints(far) == len(keys)
    for key in (c.key for c in second.checkpoints):
        record_when_due(service, second.id, key, result_data(), ACTOR)
    assert any_store.measurable_requests() == [first.id, second.id]
    assert any_store.measurable_requests(limit=1) == [first.id]
    service.measure(first.id, ACTOR)
    assert any_store.measurable_requests() == [second.id]  # measured: no longer delivered


def test_requests_owing_reminders_are_those_with_a_pending_reminder(any_store: RequestStore, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    plain = drive_to(service, "diagnosed")
    mixed = drive_to(service, "diagnosed")
    other = drive_to(service, "redirected", path="redirect")
    assert any_store.requests_owing_reminders() == []
    service.add_companion(mixed.id, companion_data(due="2026-03-20"), ACTOR)
    service.add_companion(other.id, companion_data(due="2026-04-30"), ACTOR)
    assert any_store.requests_owing_reminders() == [mixed.id, other.id]
    assert any_store.requests_owing_reminders(after_id=mixed.id) == [other.id]
    assert any_store.requests_owing_reminders(limit=1) == [mixed.id]
    clock.set(datetime(2026, 3, 18, 9, tzinfo=UTC))
    assert service.remind_owners(ACTOR, timedelta(days=3)) == {"reminded": 1, "conflicts": 0}
    assert any_store.requests_owing_reminders() == [other.id]  # reminded once: nothing owed any more
    service.drop_companion(other.id, "c1", {"reason": "not needed"}, ACTOR)
    assert any_store.requests_owing_reminders() == []
    assert plain.id not in any_store.requests_owing_reminders()
