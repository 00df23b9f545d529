"""The store contract on real databases (and the in-memory fake, which must behave the same).

Also: every guard refusal and invalid input on SqlStore writes nothing at all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy import Engine

from connectors.db.store import ListFilter, SqlStore
from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from states.errors import InvalidInput, InvalidTransition, NotFound, TransitionRefused
from states.lifecycle import State
from tests.builders import (
    ACTOR,
    REFUSALS,
    T0,
    Refusal,
    diagnosis_data,
    drive_to,
    intake_data,
    person,
    plan_data,
    plan_item,
    redirect_data,
    run_step,
)
from tests.integration.conftest import table_snapshot
from tests.unit.test_request_stateful import RequestLifecycle

# --- round trip and history -------------------------------------------------------------------------------


def test_full_request_document_round_trips(any_service: Service) -> None:
    request = drive_to(any_service, "acknowledged")
    loaded = any_service.show(request.id)
    assert loaded.model_dump() == request.model_dump()
    assert loaded.model_dump_json() == request.model_dump_json()
    assert loaded.checkpoints and loaded.results and loaded.roi and loaded.acknowledgement and loaded.plan
    assert loaded.created_at.tzinfo is not None and loaded.checkpoints[0].due_at.tzinfo is not None


def test_history_is_in_order_with_versions_and_states(any_service: Service, clock: FixedClock) -> None:
    a = any_service.submit(intake_data(title="Request A"), ACTOR).id
    b = any_service.submit(intake_data(title="Request B"), ACTOR).id
    clock.advance(timedelta(hours=1))
    any_service.diagnose(a, diagnosis_data(skill_gap=False), "alice@example.org")
    any_service.add_note(b, "waiting for data", ACTOR)
    any_service.draft_plan(a, plan_data(), ACTOR)
    history = any_service.history(a)
    assert [(e.type, e.version) for e in history] == [("submitted", 1), ("diagnosed", 2), ("plan_drafted", 3)]
    assert [e.seq for e in history] == sorted(e.seq for e in history)
    assert (history[1].from_state, history[1].to_state, history[1].trigger) == ("received", "diagnosed", "diagnose")
    assert history[1].actor == "alice@example.org" and history[1].at == "2026-03-02T10:00:00.000000Z"
    assert history[1].payload["recommendations"][0]["path"] == "tool_fix"
    assert [e.type for e in any_service.history(b)] == ["submitted", "note_added"]
    with pytest.raises(NotFound):
        any_service.history(99)
    assert any_service.verify().ok


def test_fake_and_databases_record_identical_histories(any_service: Service, clock: FixedClock) -> None:
    """The in-memory fake is faithful: the same commands give the same documents and the same chain."""
    reference = Service(InMemoryStore(), FixedClock(clock.now()))
    for service in (reference, any_service):
        drive_to(service, "acknowledged", path="redirect")
        drive_to(service, "cancelled")
    for rid in (1, 2):
        assert any_service.show(rid).model_dump() == reference.show(rid).model_dump()
        assert any_service.history(rid) == reference.history(rid)
    assert any_service.store.counts_by_state() == reference.store.counts_by_state() == {  # type: ignore[attr-defined]
        "acknowledged": 1, "cancelled": 1}
    assert any_service.verify() == reference.verify()


def test_save_rejects_a_stale_copy_and_keeps_the_winner(any_service: Service) -> None:
    from states.errors import Conflict

    store = any_service.store
    rid = any_service.submit(intake_data(), ACTOR).id
    first, second = store.get(rid), store.get(rid)
    first.add_note("first", T0)
    store.save(first, ACTOR)
    second.add_note("second", T0)
    with pytest.raises(Conflict) as info:
        store.save(second, ACTOR)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert second.version == 1  # the caller's copy is left as it was
    assert [e.payload.get("text") for e in store.history(rid)] == [None, "first"]
    assert any_service.verify().ok


# --- listing -------------------------------------------------------------------------------------------

def _populate(service: Service, clock: FixedClock) -> None:
    """Six requests on six days, with two requesters, two sponsors and several states."""
    specs = [("Alpha onboarding", "ann@example.org", "sam@example.org", "received"),
             ("Bravo coaching", "bob@example.org", "sam@example.org", "diagnosed"),
             ("Charlie safety", "ann@example.org", "sue@example.org", "declined"),
             ("Delta sales", "bob@example.org", "sue@example.org", "delivered"),
             ("Echo CRM", "ann@example.org", "sam@example.org", "received"),
             ("Foxtrot leadership", "Bob@Example.org", "sam@example.org", "cancelled")]
    for n, (title, requester, sponsor, state) in enumerate(specs):
        clock.set(T0 + timedelta(days=n))
        drive_to(service, state, intake=intake_data(title=title, requester_email=requester, sponsor_email=sponsor))
    clock.set(T0 + timedelta(days=10))
    service.add_note(1, "touched last", ACTOR)  # request 1 is now the most recently updated


def _ids(service: Service, **kwargs: Any) -> tuple[list[int], int]:
    rows, total = service.list(ListFilter(**kwargs))
    return [r.id for r in rows], total


def test_list_filters(any_service: Service, clock: FixedClock) -> None:
    _populate(any_service, clock)
    assert _ids(any_service) == ([1, 2, 3, 4, 5, 6], 6)
    assert _ids(any_service, states=["received"]) == ([1, 5], 2)
    assert _ids(any_service, states=["declined", "cancelled"]) == ([3, 6], 2)
    assert _ids(any_service, requester="ANN@example.org") == ([1, 3, 5], 3)
    assert _ids(any_service, requester="bob@example.org") == ([2, 4, 6], 3)  # stored lower-cased
    assert _ids(any_service, sponsor="sue@example.org") == ([3, 4], 2)
    assert _ids(any_service, sponsor="sam@example.org", states=["received"]) == ([1, 5], 2)
    day = T0.date()
    assert _ids(any_service, created_from=day + timedelta(days=2)) == ([3, 4, 5, 6], 4)
    assert _ids(any_service, created_to=day + timedelta(days=1)) == ([1, 2], 2)  # the whole end day counts
    assert _ids(any_service, created_from=day + timedelta(days=1), created_to=day + timedelta(days=3)) == (
        [2, 3, 4], 3)
    assert _ids(any_service, created_from=date(2030, 1, 1)) == ([], 0)
    assert _ids(any_service, requester="nobody@example.org") == ([], 0)


def test_list_sorts_and_pages(any_service: Service, clock: FixedClock) -> None:
    _populate(any_service, clock)
    assert _ids(any_service, sort="-id")[0] == [6, 5, 4, 3, 2, 1]
    assert _ids(any_service, sort="created")[0] == [1, 2, 3, 4, 5, 6]
    assert _ids(any_service, sort="-created")[0] == [6, 5, 4, 3, 2, 1]
    assert _ids(any_service, sort="-updated")[0] == [1, 6, 5, 4, 3, 2]
    assert _ids(any_service, sort="title")[0] == [1, 2, 3, 4, 5, 6]
    assert _ids(any_service, sort="-title")[0] == [6, 5, 4, 3, 2, 1]
    # state ties break on id ascending
    assert _ids(any_service, sort="state")[0] == [6, 3, 4, 2, 1, 5]
    assert _ids(any_service, sort="-state")[0] == [1, 5, 2, 4, 3, 6]
    assert _ids(any_service, limit=4) == ([1, 2, 3, 4], 6)
    assert _ids(any_service, limit=4, offset=4) == ([5, 6], 6)
    assert _ids(any_service, limit=2, offset=2, sort="-id") == ([4, 3], 6)
    assert _ids(any_service, limit=2, offset=10) == ([], 6)
    assert _ids(any_service, states=["received"], limit=1, offset=1) == ([5], 2)


def test_list_summaries_carry_the_columns(any_service: Service, clock: FixedClock) -> None:
    _populate(any_service, clock)
    rows, _ = any_service.list(ListFilter(states=["delivered"]))
    (row,) = rows
    assert (row.id, row.title, row.state, row.requester, row.sponsor) == (
        4, "Delta sales", "delivered", "bob@example.org", "sue@example.org")
    assert row.version == any_service.show(4).version
    assert row.created_at == T0 + timedelta(days=3) and row.created_at.tzinfo is not None
    assert any_service.store.counts_by_state() == {  # type: ignore[attr-defined]
        "received": 2, "diagnosed": 1, "declined": 1, "delivered": 1, "cancelled": 1}


# --- timers ------------------------------------------------------------------------------------------

def test_due_checkpoints_across_requests(any_service: Service, clock: FixedClock) -> None:
    first = drive_to(any_service, "delivered")  # ends 2026-04-20
    second = drive_to(any_service, "delivered")
    any_service.record(second.id, "m2:P1D", {"value": 4.0, "early_reason": "test"}, ACTOR)  # closed: no longer due
    end = datetime(2026, 4, 20, 9, tzinfo=UTC)
    store = any_service.store
    assert store.due_checkpoints(end) == []
    assert store.due_checkpoints(end + timedelta(days=1)) == [(first.id, f"{first.id}:m2:P1D")]
    assert store.due_checkpoints(end + timedelta(days=30)) == [
        (first.id, f"{first.id}:m2:P1D"), (first.id, f"{first.id}:m1:P30D"), (second.id, f"{second.id}:m1:P30D")]
    assert len(store.due_checkpoints(end + timedelta(days=365))) == 5
    assert len(store.due_checkpoints(end + timedelta(days=365), limit=2)) == 2
    clock.set(end + timedelta(days=1, hours=1))
    any_service.send_due_checkpoints(ACTOR, timedelta(days=14))
    assert store.due_checkpoints(end + timedelta(days=1)) == []
    assert store.unanswered_checkpoints(end + timedelta(days=1, hours=1)) == [(first.id, f"{first.id}:m2:P1D")]
    assert store.unanswered_checkpoints(end + timedelta(days=1)) == []
    any_service.cancel(first.id, {"reason": "merged"}, ACTOR)
    assert store.due_checkpoints(end + timedelta(days=365)) == [
        (second.id, f"{second.id}:m1:P30D"), (second.id, f"{second.id}:m1:P90D")]
    assert store.unanswered_checkpoints(end + timedelta(days=365)) == []


# --- refusals and invalid input write nothing -----------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_engine(request: pytest.FixtureRequest) -> Engine:
    engine: Engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    return engine


@pytest.mark.parametrize("case", REFUSALS, ids=[c.name for c in REFUSALS])
def test_guard_refusal_writes_nothing_on_sql(sql_engine: Engine, clock: FixedClock, case: Refusal) -> None:
    service = Service(SqlStore(sql_engine), clock)
    rid = service.submit(case.intake, ACTOR).id
    for command, data in case.setup:
        run_step(service, rid, command, data)
    before = table_snapshot(sql_engine)
    clock.advance(timedelta(minutes=5))
    with pytest.raises(TransitionRefused) as info:
        run_step(service, rid, case.command, case.data)
    assert not isinstance(info.value, InvalidTransition)
    for fragment in case.missing:
        assert sum(fragment in m for m in info.value.missing) == 1, (fragment, info.value.missing)
    assert len(info.value.missing) == len(case.missing)
    assert table_snapshot(sql_engine) == before
    assert service.verify().ok


def test_forbidden_transition_writes_nothing_on_sql(sql_engine: Engine, clock: FixedClock) -> None:
    service = Service(SqlStore(sql_engine), clock)
    rid = drive_to(service, "designed").id
    before = table_snapshot(sql_engine)
    with pytest.raises(InvalidTransition) as info:
        service.redirect(rid, redirect_data(), ACTOR)
    assert info.value.allowed == ["deliver", "cancel"]
    assert table_snapshot(sql_engine) == before


BAD_INPUTS: list[tuple[str, str, Any, str]] = [
    ("submit", "intake", intake_data(requester=person("Alice", "alice@example.org(<bob@example.com>")),
     "requester.email"),
    ("submit", "intake", intake_data(title="Course\r\nBcc: eve@example.com"), "title"),
    ("submit", "intake", {k: v for k, v in intake_data().items() if k != "sponsor"}, "sponsor"),
    ("submit", "intake", intake_data(budget=5000), "budget"),
    ("diagnose", "received", diagnosis_data(observable_actions=["be aware of the refund policy"]),
     "observable_actions[0]"),
    ("diagnose", "received", diagnosis_data(summary=["not", "text"]), "summary"),
    ("draft_plan", "received", {"items": [plan_item("m1", checkpoints=["30 days"])]}, "items[0].checkpoints[0]"),
    ("draft_plan", "received", {"items": [plan_item("m1", checkpoints=["P"])]}, "items[0].checkpoints[0]"),
    ("approve_plan", "planned", {"approver": "sam.sponsor@example.org(<bob@example.com>"}, "approver"),
]


@pytest.mark.parametrize(("command", "setup", "data", "field"), BAD_INPUTS,
                         ids=[f"{c}-{f}" for c, _s, _d, f in BAD_INPUTS])
def test_invalid_input_names_the_field_and_writes_nothing_on_sql(sql_engine: Engine, clock: FixedClock, command: str,
                                                                 setup: str, data: Any, field: str) -> None:
    service = Service(SqlStore(sql_engine), clock)
    if setup != "intake":
        rid = service.submit(intake_data(), ACTOR).id
        if setup == "planned":
            service.draft_plan(rid, plan_data(), ACTOR)
    before = table_snapshot(sql_engine)
    with pytest.raises(InvalidInput) as info:
        if setup == "intake":
            service.submit(data, ACTOR)
        else:
            getattr(service, command)(rid, data, ACTOR)
    assert field in [e.field for e in info.value.errors], info.value.errors
    assert table_snapshot(sql_engine) == before


def test_state_enum_matches_the_state_column_width() -> None:
    from connectors.db.tables import requests

    assert max(len(s.value) for s in State) <= requests.c.state.type.length  # type: ignore[attr-defined]


def test_a_save_without_events_keeps_the_chain_verifiable(any_service: Service) -> None:
    """Saving an unchanged request (no events) must not point it at another request's newest event."""
    store = any_service.store
    a = any_service.submit(intake_data(title="Request A"), ACTOR).id
    any_service.submit(intake_data(title="Request B"), ACTOR)
    saved = store.save(store.get(a), ACTOR)
    assert saved.version == 2
    assert [e.type for e in store.history(a)] == ["submitted"]
    assert any_service.verify().ok


def test_saving_an_unknown_request_is_a_conflict_and_writes_nothing(any_service: Service) -> None:
    from states.errors import Conflict

    store = any_service.store
    request = any_service.submit(intake_data(), ACTOR)
    ghost = store.get(request.id)
    ghost.id = 42
    ghost.add_note("ghost", T0)
    with pytest.raises(Conflict) as info:
        store.save(ghost, ACTOR)
    assert (info.value.request_id, info.value.expected, info.value.actual) == (42, 1, None)
    with pytest.raises(NotFound):
        store.get(42)
    assert [e.type for e in store.history(request.id)] == ["submitted"]
    assert any_service.verify().ok


def test_an_empty_store_verifies(any_service: Service) -> None:
    report = any_service.verify()
    assert report.ok and (report.events_checked, report.requests_checked) == (0, 0)
    assert any_service.list(ListFilter()) == ([], 0)
    assert any_service.store.counts_by_state() == {}  # type: ignore[attr-defined]


# --- the lifecycle state machine on a real SQLite file ------------------------------------------------------

class SqliteRequestLifecycle(RequestLifecycle):
    """The unit suite's stateful test, run on SqlStore: same invariants, real transactions."""

    def make_store(self) -> Any:
        import tempfile

        from connectors.db import schema
        from connectors.db.engine import make_engine

        self._tmp = tempfile.TemporaryDirectory(prefix="ldflow-stateful-")
        self._engine = make_engine(f"sqlite:///{self._tmp.name}/ldflow.db", synchronous="NORMAL")
        schema.ensure_schema(self._engine)
        return SqlStore(self._engine)

    def snapshot(self) -> Any:
        return table_snapshot(self._engine)

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            self._engine.dispose()
            self._tmp.cleanup()


SqliteRequestLifecycle.TestCase.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
TestSqliteRequestLifecycle = pytest.mark.slow(SqliteRequestLifecycle.TestCase)
