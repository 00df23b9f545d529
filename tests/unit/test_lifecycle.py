"""The lifecycle table: every State x Trigger pair, allowed and forbidden, on the table and on the service."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flows.service import Service
from states import lifecycle
from states.checkpoints import CheckpointStatus
from states.errors import Conflict, InvalidInput, InvalidTransition, NotFound, TransitionRefused
from states.lifecycle import EVENT_OF, NON_TERMINAL, TERMINAL, TRANSITIONS, Command, State, Trigger
from tests.builders import (
    ACTOR,
    SPONSOR,
    ack_data,
    brief_data,
    delivery_data,
    diagnosis_data,
    drive_to,
    reason_data,
    record_when_due,
    redirect_data,
    result_data,
)

# The designed lifecycle, written out independently of states.lifecycle: (state, trigger) -> destination.
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
    # the documented way back: a declined or cancelled request is re-opened to received
    (State.DECLINED, Trigger.REOPEN): State.RECEIVED,
    (State.CANCELLED, Trigger.REOPEN): State.RECEIVED,
}

PAIRS = list(itertools.product(State, Trigger))
ALLOWED = [p for p in PAIRS if p in EXPECTED]
FORBIDDEN = [p for p in PAIRS if p not in EXPECTED]


def _table() -> dict[tuple[State, Trigger], State]:
    return {(s, t): dest for t, sources, dest in TRANSITIONS for s in sources}


def test_table_is_exactly_the_designed_lifecycle() -> None:
    assert _table() == EXPECTED
    assert len(ALLOWED) == 17 and len(FORBIDDEN) == len(State) * len(Trigger) - 17


def test_terminal_states_have_no_way_out_but_the_documented_reopen() -> None:
    assert frozenset({State.ACKNOWLEDGED, State.DECLINED, State.CANCELLED}) == TERMINAL
    assert set(NON_TERMINAL) == set(State) - TERMINAL
    assert lifecycle.allowed_triggers(State.ACKNOWLEDGED) == ()
    for state in (State.DECLINED, State.CANCELLED):
        assert lifecycle.allowed_triggers(state) == (Trigger.REOPEN,)
        assert lifecycle.fire(state, Trigger.REOPEN) == State.RECEIVED
    assert all(source not in TERMINAL for (source, t) in EXPECTED if t != Trigger.REOPEN)
    # going forward, re-opening aside, a closed request reaches nothing else
    assert all(lifecycle.reachable(state) == {state} for state in TERMINAL)


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
        "measure": "measured", "acknowledge": "acknowledged", "decline": "declined", "cancel": "cancelled",
        "reopen": "reopened"}


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
    if not allowed or allowed == ["reopen"]:
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
            request = record_when_due(service, request.id, c.key, result_data(), ACTOR)
    return int(request.id)


def _fire(service: Service, request_id: int, trigger: Trigger) -> Any:
    data = {
        Trigger.DIAGNOSE: diagnosis_data(), Trigger.REDIRECT: redirect_data(), Trigger.DESIGN: brief_data(),
        Trigger.DELIVER: delivery_data(), Trigger.ACKNOWLEDGE: ack_data(), Trigger.DECLINE: reason_data(),
        Trigger.CANCEL: reason_data(), Trigger.REOPEN: reason_data("the budget came through"),
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


# --- the command table: what can be done in each state -------------------------------------------------

C = Command
_EVERY_STATE = {C.ADD_NOTE}
_OPEN = {C.ADD_NOTE, C.AMEND}
# a solution mix: companion pieces added from diagnosed until measured, closed and reminded until acknowledged
_MIX = {C.ADD_COMPANION, C.COMPLETE_COMPANION, C.DROP_COMPANION, C.REMIND_OWNER}
_MIX_CLOSING = {C.COMPLETE_COMPANION, C.DROP_COMPANION, C.REMIND_OWNER}
# Written out independently of states.lifecycle: the commands each state allows (guards aside).
EXPECTED_COMMANDS: dict[State, set[Command]] = {
    State.RECEIVED: {C.DIAGNOSE, C.DECLINE, C.CANCEL, C.DRAFT_PLAN, C.APPROVE_PLAN, *_OPEN},
    State.DIAGNOSED: {C.REDIRECT, C.DESIGN, C.DECLINE, C.CANCEL, C.DRAFT_PLAN, C.APPROVE_PLAN, C.REDIAGNOSE,
                      *_OPEN, *_MIX},
    State.REDIRECTED: {C.DELIVER, C.CANCEL, C.SCHEDULE_SESSION, C.DRAFT_PLAN, C.APPROVE_PLAN, C.SET_ROSTER,
                       *_OPEN, *_MIX},
    State.DESIGNED: {C.DELIVER, C.CANCEL, C.SCHEDULE_SESSION, C.DRAFT_PLAN, C.APPROVE_PLAN, C.SET_ROSTER,
                     *_OPEN, *_MIX},
    State.DELIVERED: {C.MEASURE, C.CANCEL, C.RECORD_RESULT, C.SEND_CHECKPOINT, C.REMIND_CHECKPOINT,
                      C.FLAG_UNANSWERED, C.DRAFT_PLAN, C.APPROVE_PLAN, C.SET_ROSTER, *_OPEN, *_MIX},
    State.MEASURED: {C.ACKNOWLEDGE, C.CANCEL, C.REPORT, *_OPEN, *_MIX},
    State.ACKNOWLEDGED: {C.REPORT, *_EVERY_STATE, *_MIX_CLOSING},
    State.DECLINED: {C.REOPEN, *_EVERY_STATE},
    State.CANCELLED: {C.REOPEN, *_EVERY_STATE},
}


def test_allowed_commands_is_the_designed_table() -> None:
    assert {s: set(lifecycle.allowed_commands(s)) for s in State} == EXPECTED_COMMANDS
    for state in State:
        commands = lifecycle.allowed_commands(state)
        assert list(commands) == sorted(commands, key=list(Command).index)  # in Command order, once each
        assert [c for c in commands if c in lifecycle.TRIGGER_OF] == [
            Command(t.value) for t in lifecycle.allowed_triggers(state)]
    assert set(lifecycle.TRIGGER_OF) | set(lifecycle.RULES) == set(Command)
    assert not set(lifecycle.TRIGGER_OF) & set(lifecycle.RULES)


def test_the_aggregate_answers_from_the_same_table(memory_service: Service) -> None:
    request = memory_service.show(_request_in(memory_service, State.DESIGNED))
    assert request.allowed_commands() == lifecycle.allowed_commands(State.DESIGNED)


@pytest.mark.parametrize("state", list(State), ids=[s.value for s in State])
def test_require_refuses_in_the_table_words(state: State) -> None:
    for command in Command:
        if command in EXPECTED_COMMANDS[state]:
            lifecycle.require(command, state)
            continue
        with pytest.raises(TransitionRefused) as info:
            lifecycle.require(command, state)
        if command in lifecycle.TRIGGER_OF:
            assert isinstance(info.value, InvalidTransition)
        else:
            rule = lifecycle.RULES[command]
            a = "an" if state is State.ACKNOWLEDGED else "a"  # "an acknowledged request"
            assert str(info.value) == f"cannot {rule.verb} {a} {state.value} request; missing: {rule.refusal}"


SESSION = {"title": "Workshop", "start": "2026-04-06T09:00:00+00:00", "end": "2026-04-06T12:00:00+00:00"}


@pytest.mark.parametrize("state", NON_TERMINAL, ids=[s.value for s in NON_TERMINAL])
def test_plan_session_and_note_commands_run_exactly_where_the_table_allows(memory_service: Service,
                                                                          state: State) -> None:
    from tests.builders import plan_data

    rid = _request_in(memory_service, state)
    commands = {C.DRAFT_PLAN: lambda: memory_service.draft_plan(rid, plan_data(), ACTOR),
                C.SCHEDULE_SESSION: lambda: memory_service.schedule_session(rid, SESSION, ACTOR),
                C.ADD_NOTE: lambda: memory_service.add_note(rid, "a note", ACTOR)}
    for command, run in commands.items():
        if lifecycle.allows(command, state):
            run()
            continue
        with pytest.raises(TransitionRefused) as info:
            run()
        assert str(info.value) == (f"cannot {lifecycle.RULES[command].verb} a {state.value} request; "
                                   f"missing: {lifecycle.RULES[command].refusal}")


def test_refusals_keep_their_wording(memory_service: Service) -> None:
    from tests.builders import approval_data, plan_data

    measured = _request_in(memory_service, State.MEASURED)
    with pytest.raises(TransitionRefused) as info:
        memory_service.draft_plan(measured, plan_data(), ACTOR)
    assert str(info.value) == ("cannot draft a measurement plan for a measured request; missing: an open request "
                               "not yet measured (the plan is drafted or revised until then)")
    assert info.value.exit_code == 3
    with pytest.raises(TransitionRefused) as info:
        memory_service.approve_plan(measured, approval_data(), SPONSOR)
    assert str(info.value) == ("cannot approve the plan of a measured request; missing: an open request not yet "
                               "measured (a plan is approved until then); a plan awaiting approval (already "
                               "approved by sam.sponsor@example.org)")
    designed = _request_in(memory_service, State.DESIGNED)
    with pytest.raises(TransitionRefused) as info:
        memory_service.approve_plan(designed, approval_data(), SPONSOR)
    assert str(info.value) == ("cannot approve the plan of a designed request; missing: a plan awaiting approval "
                               "(already approved by sam.sponsor@example.org)")
    diagnosed = _request_in(memory_service, State.DIAGNOSED)
    with pytest.raises(TransitionRefused) as info:
        memory_service.schedule_session(diagnosed, SESSION, ACTOR)
    assert str(info.value) == ("cannot schedule a session for a diagnosed request; missing: sessions are "
                               "scheduled once the request is designed or redirected")
    measured = _request_in(memory_service, State.MEASURED)
    key = memory_service.show(measured).checkpoints[0].key
    with pytest.raises(TransitionRefused) as info:
        memory_service.record(measured, key, result_data(), ACTOR)
    assert str(info.value) == ("cannot record a result for a measured request; missing: results are recorded "
                               "while the request is delivered")
    delivered = _request_in(memory_service, State.DELIVERED)
    with pytest.raises(TransitionRefused) as info:
        memory_service.record(delivered, key.split(":", 1)[1], result_data(), ACTOR)
    assert str(info.value).startswith("cannot record a result for a delivered request; missing: an open "
                                      f"checkpoint ({delivered}:m1:P30D is already closed)")


def test_follow_ups_do_nothing_outside_delivery(memory_service: Service) -> None:
    from datetime import UTC, datetime, timedelta

    rid = drive_to(memory_service, "delivered").id
    memory_service.cancel(rid, reason_data(), ACTOR)
    request = memory_service.show(rid)
    later = datetime(2027, 1, 1, tzinfo=UTC)
    request.checkpoints[0].status = CheckpointStatus.SCHEDULED  # as if it were still open
    assert request.send_checkpoint(request.checkpoints[0].key, later, timedelta(days=400)) is False
    request.checkpoints[0].status, request.checkpoints[0].sent_at = CheckpointStatus.SENT, later
    assert request.remind_checkpoint(request.checkpoints[0].key, later + timedelta(days=9), timedelta(days=3),
                                     2) is False
    assert request.pending_events() == [] and request.pending_notifications() == []
