"""The lifecycle table: every State x Trigger pair, allowed and forbidden, on the table and on the service."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flows.service import Service
from states import lifecycle
from states.errors import Conflict, InvalidInput, InvalidTransition, NotFound, TransitionRefused
from states.lifecycle import EVENT_OF, NON_TERMINAL, TERMINAL, TRANSITIONS, State, Trigger
from tests.builders import (
    ACTOR,
    ack_data,
    brief_data,
    delivery_data,
    diagnosis_data,
    drive_to,
    reason_data,
    redirect_data,
    result_data,
)

# DESIGN.md §1, written out independently of states.lifecycle: (state, trigger) -> destination.
EXPECTED: dict[tuple[State, Trigger], State] = {
    (State.RECEIVED, Trigger.DIAGNOSE): State.DIAGNOSED,
    (State.DIAGNOSED, Trigger.REDIRECT): State.REDIRECTED,
    (State.DIAGNOSED, Trigger.DESIGN): State.DESIGNED,
    (State.REDIRECTED, Trigger.DELIVER): State.DELIVERED,
    (State.DESIGNED, Trigger.DELIVER): State.DELIVERED,
    (State.DELIVERED, Trigger.MEASURE): State.MEASURED,
    (State.MEASURED, Trigger.ACKNOWLEDGE): State.ACKNOWLEDGED,
    (State.RECEIVED, Trigger.DECLINE): State.DECLINED,
    (State.DIAGNOSED, Trigger.DECLINE): State.DECLINED,
    **{(s, Trigger.CANCEL): State.CANCELLED for s in (State.RECEIVED, State.DIAGNOSED, State.REDIRECTED,
                                                      State.DESIGNED, State.DELIVERED, State.MEASURED)},
}

PAIRS = list(itertools.product(State, Trigger))
ALLOWED = [p for p in PAIRS if p in EXPECTED]
FORBIDDEN = [p for p in PAIRS if p not in EXPECTED]


def _table() -> dict[tuple[State, Trigger], State]:
    return {(s, t): dest for t, sources, dest in TRANSITIONS for s in sources}


def test_table_is_exactly_the_designed_lifecycle() -> None:
    assert _table() == EXPECTED
    assert len(ALLOWED) == 15 and len(FORBIDDEN) == len(State) * len(Trigger) - 15


def test_terminal_states_have_no_way_out() -> None:
    assert frozenset({State.ACKNOWLEDGED, State.DECLINED, State.CANCELLED}) == TERMINAL
    assert set(NON_TERMINAL) == set(State) - TERMINAL
    for state in TERMINAL:
        assert lifecycle.allowed_triggers(state) == ()
        assert all(source != state for (source, _t) in EXPECTED)


def test_every_state_is_reachable_from_received() -> None:
    reached, frontier = {State.RECEIVED}, [State.RECEIVED]
    while frontier:
        state = frontier.pop()
        for trigger in lifecycle.allowed_triggers(state):
            dest = lifecycle.fire(state, trigger)
            if dest not in reached:
                reached.add(dest)
                frontier.append(dest)
    assert reached == set(State)


def test_every_trigger_has_a_past_tense_event() -> None:
    assert {t.value: e for t, e in EVENT_OF.items()} == {
        "diagnose": "diagnosed", "redirect": "redirected", "design": "designed", "deliver": "delivered",
        "measure": "measured", "acknowledge": "acknowledged", "decline": "declined", "cancel": "cancelled"}


@pytest.mark.parametrize(("state", "trigger"), ALLOWED, ids=[f"{s.value}-{t.value}" for s, t in ALLOWED])
def test_allowed_pair_moves_to_its_destination(state: State, trigger: Trigger) -> None:
    assert trigger in lifecycle.allowed_triggers(state)
    assert lifecycle.fire(state, trigger) == EXPECTED[(state, trigger)]


@pytest.mark.parametrize(("state", "trigger"), FORBIDDEN, ids=[f"{s.value}-{t.value}" for s, t in FORBIDDEN])
def test_forbidden_pair_raises_listing_the_allowed_triggers(state: State, trigger: Trigger) -> None:
    assert trigger not in lifecycle.allowed_triggers(state)
    with pytest.raises(InvalidTransition) as info:
        lifecycle.fire(state, trigger)
    allowed = sorted(t.value for (s, t) in EXPECTED if s == state)
    assert sorted(info.value.allowed) == allowed
    assert info.value.trigger == trigger.value and info.value.state == state.value
    message = str(info.value)
    assert state.value in message and trigger.value in message
    for name in allowed:
        assert name in message
    if not allowed:
        assert "closed" in message
    assert info.value.exit_code == 3


def test_firing_from_many_threads_uses_the_shared_machine_safely() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run(n: int) -> list[State]:
        return [lifecycle.fire(state, trigger) for (state, trigger) in ALLOWED for _ in range(20)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(8)))
    expected = [EXPECTED[p] for p in ALLOWED for _ in range(20)]
    assert all(r == expected for r in results)


# --- the same table, through the service and the aggregate ----------------------------------------------

def _request_in(service: Service, state: State) -> int:
    """A request in ``state`` with everything in place for any allowed trigger to pass its guard."""
    path = "redirect" if state == State.REDIRECTED else "design"
    request = drive_to(service, state.value, path=path)
    if state == State.DELIVERED:  # measure needs every checkpoint closed
        for c in request.checkpoints:
            request = service.record(request.id, c.key, result_data(), ACTOR)
    return int(request.id)


def _fire(service: Service, request_id: int, trigger: Trigger) -> Any:
    data = {
        Trigger.DIAGNOSE: diagnosis_data(), Trigger.REDIRECT: redirect_data(), Trigger.DESIGN: brief_data(),
        Trigger.DELIVER: delivery_data(), Trigger.ACKNOWLEDGE: ack_data(), Trigger.DECLINE: reason_data(),
        Trigger.CANCEL: reason_data(),
    }
    if trigger == Trigger.MEASURE:
        return service.measure(request_id, ACTOR)
    return getattr(service, trigger.value)(request_id, data[trigger], ACTOR)


@pytest.mark.parametrize(("state", "trigger"), ALLOWED, ids=[f"{s.value}-{t.value}" for s, t in ALLOWED])
def test_service_fires_every_allowed_pair(memory_service: Service, state: State, trigger: Trigger) -> None:
    rid = _request_in(memory_service, state)
    before = memory_service.show(rid)
    after = _fire(memory_service, rid, trigger)
    assert after.state == EXPECTED[(state, trigger)]
    assert after.version == before.version + 1
    event = memory_service.history(rid)[-1] if trigger != Trigger.DELIVER else next(
        e for e in memory_service.history(rid) if e.type == "delivered")
    assert (event.type, event.trigger, event.from_state, event.to_state) == (
        EVENT_OF[trigger], trigger.value, state.value, EXPECTED[(state, trigger)].value)
    assert memory_service.show(rid).state == EXPECTED[(state, trigger)]


@pytest.mark.parametrize(("state", "trigger"), FORBIDDEN, ids=[f"{s.value}-{t.value}" for s, t in FORBIDDEN])
def test_service_refuses_every_forbidden_pair_and_writes_nothing(
        memory_service: Service, state: State, trigger: Trigger) -> None:
    rid = _request_in(memory_service, state)
    before = memory_service.show(rid)
    history = memory_service.history(rid)
    outbox = dict(memory_service.store.outbox)  # type: ignore[attr-defined]
    with pytest.raises(InvalidTransition) as info:
        _fire(memory_service, rid, trigger)
    assert sorted(info.value.allowed) == sorted(t.value for (s, t) in EXPECTED if s == state)
    after = memory_service.show(rid)
    assert after.model_dump() == before.model_dump() and after.version == before.version
    assert memory_service.history(rid) == history
    assert memory_service.store.outbox == outbox  # type: ignore[attr-defined]


def test_error_exit_codes_are_the_documented_ones() -> None:
    assert InvalidInput([]).exit_code == 2
    assert TransitionRefused("design", "received", ["x"]).exit_code == 3
    assert InvalidTransition("design", "received", ["diagnose"]).exit_code == 3
    assert NotFound("request 9").exit_code == 4
    assert Conflict(1, 2, 3).exit_code == 5
