"""The request lifecycle, declared as data: which command may run in which state.

Two tables, one answer to "what can I do now?" (:func:`allowed_commands`):

* ``TRANSITIONS`` — the triggers that move a request from state to state, run by one shared
  ``transitions`` Machine;
* ``RULES`` — the commands that change a request without moving it (re-diagnose, draft or approve the plan,
  schedule a session, record a result, add a note, the pipeline's follow-ups, the report), with
  the states they are allowed in and the words a refusal uses.

Guards (what must be true besides the state) live in :mod:`states.guards`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from transitions import Machine, MachineError

from states.errors import InvalidTransition, TransitionRefused


class State(StrEnum):
    RECEIVED = "received"
    DIAGNOSED = "diagnosed"
    REDIRECTED = "redirected"
    DESIGNED = "designed"
    DELIVERED = "delivered"
    MEASURED = "measured"
    ACKNOWLEDGED = "acknowledged"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class Trigger(StrEnum):
    DIAGNOSE = "diagnose"
    REDIRECT = "redirect"
    DESIGN = "design"
    DELIVER = "deliver"
    MEASURE = "measure"
    ACKNOWLEDGE = "acknowledge"
    DECLINE = "decline"
    CANCEL = "cancel"
    REOPEN = "reopen"


class Command(StrEnum):
    """Everything that can be asked of an existing request: the triggers (same names) and the rest."""

    DIAGNOSE = "diagnose"
    REDIRECT = "redirect"
    DESIGN = "design"
    DELIVER = "deliver"
    MEASURE = "measure"
    ACKNOWLEDGE = "acknowledge"
    DECLINE = "decline"
    CANCEL = "cancel"
    REOPEN = "reopen"
    DRAFT_PLAN = "draft_plan"
    APPROVE_PLAN = "approve_plan"
    SCHEDULE_SESSION = "schedule_session"
    RECORD_RESULT = "record_result"
    ADD_NOTE = "add_note"
    SEND_CHECKPOINT = "send_checkpoint"
    REMIND_CHECKPOINT = "remind_checkpoint"
    REPORT = "report"
    REDIAGNOSE = "rediagnose"
    AMEND = "amend"
    ADD_COMPANION = "add_companion"
    COMPLETE_COMPANION = "complete_companion"
    DROP_COMPANION = "drop_companion"
    REMIND_OWNER = "remind_owner"
    SET_ROSTER = "set_roster"
    FLAG_UNANSWERED = "flag_unanswered"


TERMINAL: Final = frozenset({State.ACKNOWLEDGED, State.DECLINED, State.CANCELLED})
NON_TERMINAL: Final = tuple(s for s in State if s not in TERMINAL)

# (trigger, sources, destination)
TRANSITIONS: Final[tuple[tuple[Trigger, tuple[State, ...], State], ...]] = (
    (Trigger.DIAGNOSE, (State.RECEIVED,), State.DIAGNOSED),
    (Trigger.REDIRECT, (State.DIAGNOSED,), State.REDIRECTED),
    (Trigger.DESIGN, (State.DIAGNOSED,), State.DESIGNED),
    (Trigger.DELIVER, (State.REDIRECTED, State.DESIGNED), State.DELIVERED),
    (Trigger.MEASURE, (State.DELIVERED,), State.MEASURED),
    (Trigger.ACKNOWLEDGE, (State.MEASURED,), State.ACKNOWLEDGED),
    (Trigger.DECLINE, (State.RECEIVED, State.DIAGNOSED), State.DECLINED),
    (Trigger.CANCEL, NON_TERMINAL, State.CANCELLED),
    # The one way out of a terminal state: a declined or cancelled request is re-opened, with a
    # reason, back to ``received`` (its partner process starts again; acknowledged stays closed).
    (Trigger.REOPEN, (State.DECLINED, State.CANCELLED), State.RECEIVED),
)

DESTINATION: Final[dict[Trigger, State]] = {t: dest for t, _sources, dest in TRANSITIONS}

# Events that are past-tense names of what each trigger did.
EVENT_OF: Final[dict[Trigger, str]] = {
    Trigger.DIAGNOSE: "diagnosed",
    Trigger.REDIRECT: "redirected",
    Trigger.DESIGN: "designed",
    Trigger.DELIVER: "delivered",
    Trigger.MEASURE: "measured",
    Trigger.ACKNOWLEDGE: "acknowledged",
    Trigger.DECLINE: "declined",
    Trigger.CANCEL: "cancelled",
    Trigger.REOPEN: "reopened",
}


@dataclass(frozen=True)
class Rule:
    """Where a non-transition command may run, and how a refusal reads:
    ``cannot <verb> a <state> request; missing: <refusal>``."""

    states: frozenset[State]
    verb: str
    refusal: str


_FOLLOWING_UP: Final = frozenset({State.DELIVERED})
# The plan can be revised (a new version, approved again) while the request is open, until it is measured.
_PLAN_OPEN: Final = frozenset({State.RECEIVED, State.DIAGNOSED, State.DESIGNED, State.REDIRECTED, State.DELIVERED})
# A solution mix: companion pieces are added once the request is diagnosed and until it is measured,
# and closed (done, dropped) or their owners reminded until it is acknowledged and after (states/companions.py).
_MIX_OPEN: Final = frozenset({State.DIAGNOSED, State.DESIGNED, State.REDIRECTED, State.DELIVERED, State.MEASURED})
_MIX_FOLLOW: Final = _MIX_OPEN | {State.ACKNOWLEDGED}

RULES: Final[dict[Command, Rule]] = {
    Command.DRAFT_PLAN: Rule(_PLAN_OPEN, "draft a measurement plan for",
                             "an open request not yet measured (the plan is drafted or revised until then)"),
    Command.APPROVE_PLAN: Rule(_PLAN_OPEN, "approve the plan of",
                               "an open request not yet measured (a plan is approved until then)"),
    Command.SCHEDULE_SESSION: Rule(frozenset({State.DESIGNED, State.REDIRECTED}), "schedule a session for",
                                   "sessions are scheduled once the request is designed or redirected"),
    Command.RECORD_RESULT: Rule(_FOLLOWING_UP, "record a result for",
                                "results are recorded while the request is delivered"),
    Command.ADD_NOTE: Rule(frozenset(State), "add a note to", "a request that exists"),
    Command.SEND_CHECKPOINT: Rule(_FOLLOWING_UP, "send a checkpoint survey for",
                                  "surveys go out while the request is delivered"),
    Command.REMIND_CHECKPOINT: Rule(_FOLLOWING_UP, "send a survey reminder for",
                                    "reminders go out while the request is delivered"),
    Command.FLAG_UNANSWERED: Rule(_FOLLOWING_UP, "flag an unanswered checkpoint of",
                                  "unanswered checkpoints are flagged for review while the request is delivered"),
    Command.SET_ROSTER: Rule(frozenset({State.DESIGNED, State.REDIRECTED, State.DELIVERED}), "give a roster for",
                             "a designed, redirected or delivered request (the roster is of its delivery)"),
    Command.REDIAGNOSE: Rule(frozenset({State.DIAGNOSED}), "re-diagnose",
                             "a diagnosed request not yet designed or redirected (re-diagnose before either)"),
    Command.REPORT: Rule(frozenset({State.MEASURED, State.ACKNOWLEDGED}), "report on",
                         "results: the request is reported on once it is measured"),
    Command.AMEND: Rule(frozenset(NON_TERMINAL), "amend",
                        "an open request (acknowledged, declined and cancelled requests are closed; "
                        "re-open a declined or cancelled one first)"),
    Command.ADD_COMPANION: Rule(_MIX_OPEN, "add a companion piece to",
                                "a diagnosed request not yet measured (companion pieces go with its main path)"),
    Command.COMPLETE_COMPANION: Rule(_MIX_FOLLOW, "mark a companion piece done on",
                                     "a request with a solution mix (diagnosed, and not declined or cancelled)"),
    Command.DROP_COMPANION: Rule(_MIX_FOLLOW, "drop a companion piece of",
                                 "a request with a solution mix (diagnosed, and not declined or cancelled)"),
    Command.REMIND_OWNER: Rule(_MIX_FOLLOW, "remind an owner of",
                               "owners are reminded while the request is diagnosed and not declined or cancelled"),
}

TRIGGER_OF: Final[dict[Command, Trigger]] = {Command(t.value): t for t in Trigger}

_ALLOWED: Final[dict[State, tuple[Trigger, ...]]] = {
    s: tuple(t for t, sources, _ in TRANSITIONS if s in sources) for s in State
}
_COMMANDS: Final[dict[State, tuple[Command, ...]]] = {
    s: tuple(c for c in Command if (TRIGGER_OF[c] in _ALLOWED[s] if c in TRIGGER_OF else s in RULES[c].states))
    for s in State
}


def allowed_triggers(state: State) -> tuple[Trigger, ...]:
    """Triggers that may fire from ``state`` (guards aside)."""
    return _ALLOWED[state]


def allowed_commands(state: State) -> tuple[Command, ...]:
    """Every command ``state`` allows (guards aside), in ``Command`` order: what can be done now."""
    return _COMMANDS[state]


def allows(command: Command, state: State) -> bool:
    return command in _COMMANDS[state]


def verb(command: Command) -> str:
    """How a refusal of ``command`` names it: ``cannot <verb> a <state> request``."""
    trigger = TRIGGER_OF.get(command)
    return trigger.value if trigger is not None else RULES[command].verb


def refusal(command: Command, state: State) -> list[str]:
    """The missing item when ``state`` does not allow a non-transition ``command``; empty when it does."""
    return [] if allows(command, state) else [RULES[command].refusal]


def require(command: Command, state: State) -> None:
    """Raise unless ``state`` allows ``command``: ``InvalidTransition`` (listing the allowed triggers)
    for a trigger, ``TransitionRefused`` with the table's words for any other command."""
    if allows(command, state):
        return
    trigger = TRIGGER_OF.get(command)
    if trigger is not None:
        raise InvalidTransition(trigger.value, state.value, [t.value for t in _ALLOWED[state]])
    refuse(command, state, refusal(command, state))


def refuse(command: Command, state: State, missing: Sequence[str]) -> None:
    """Raise ``TransitionRefused`` for ``command`` when anything is ``missing``."""
    if missing:
        raise TransitionRefused(verb(command), state.value, missing)


def reachable(state: State) -> frozenset[State]:
    """``state`` and every state a request in it can still reach going forward (re-opening, the
    documented way back from declined or cancelled, aside)."""
    seen, frontier = {state}, [state]
    while frontier:
        current = frontier.pop()
        for trigger in _ALLOWED[current]:
            if trigger == Trigger.REOPEN:
                continue
            dest = DESTINATION[trigger]
            if dest not in seen:
                seen.add(dest)
                frontier.append(dest)
    return frozenset(seen)


class _Cursor:
    """A throw-away model the shared machine moves; the aggregate keeps the real state."""

    state: State


# One Machine for every request (a Machine per object costs ~4x the time and
# keeps growing memory). Each thread keeps one cursor model attached to it and
# points it at the request's current state before firing: adding and removing
# a model per firing costs ~60 us here, re-pointing a cursor ~10 us.
_MACHINE: Final = Machine(
    model=None,
    states=State,
    transitions=[
        {"trigger": t.value, "source": list(sources), "dest": dest} for t, sources, dest in TRANSITIONS
    ],
    initial=None,
    auto_transitions=False,
    ignore_invalid_triggers=False,
)

_local = threading.local()


def _cursor() -> _Cursor:
    cursor: _Cursor | None = getattr(_local, "cursor", None)
    if cursor is None:
        cursor = _Cursor()
        _MACHINE.add_model(cursor, initial=State.RECEIVED)
        _local.cursor = cursor
    return cursor


def fire(state: State, trigger: Trigger) -> State:
    """Run ``trigger`` from ``state`` on the shared machine and return the new state.

    Raises :class:`states.errors.InvalidTransition` when the table has no such move.
    """
    cursor = _cursor()
    _MACHINE.set_state(state, model=cursor)
    try:
        _MACHINE.events[trigger.value].trigger(cursor)
    except MachineError:
        raise InvalidTransition(trigger.value, state.value, [t.value for t in _ALLOWED[state]]) from None
    return cursor.state
