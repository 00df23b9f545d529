"""The request lifecycle, declared as data and run by one shared ``transitions`` Machine.

The table below is the single source of truth for which trigger moves a
request from which state to which. Guards (what must be true before a trigger
may fire) live in :mod:`states.guards`; the machine only knows the shape.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Final

from transitions import Machine, MachineError


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


TERMINAL: Final = frozenset({State.ACKNOWLEDGED, State.DECLINED, State.CANCELLED})
NON_TERMINAL: Final = tuple(s for s in State if s not in TERMINAL)

# (trigger, sources, destination) — DESIGN.md §1.
TRANSITIONS: Final[tuple[tuple[Trigger, tuple[State, ...], State], ...]] = (
    (Trigger.DIAGNOSE, (State.RECEIVED,), State.DIAGNOSED),
    (Trigger.REDIRECT, (State.DIAGNOSED,), State.REDIRECTED),
    (Trigger.DESIGN, (State.DIAGNOSED,), State.DESIGNED),
    (Trigger.DELIVER, (State.REDIRECTED, State.DESIGNED), State.DELIVERED),
    (Trigger.MEASURE, (State.DELIVERED,), State.MEASURED),
    (Trigger.ACKNOWLEDGE, (State.MEASURED,), State.ACKNOWLEDGED),
    (Trigger.DECLINE, (State.RECEIVED, State.DIAGNOSED), State.DECLINED),
    (Trigger.CANCEL, NON_TERMINAL, State.CANCELLED),
)

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
}


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

_ALLOWED: Final[dict[State, tuple[Trigger, ...]]] = {
    s: tuple(t for t, sources, _ in TRANSITIONS if s in sources) for s in State
}


def allowed_triggers(state: State) -> tuple[Trigger, ...]:
    """Triggers that may fire from ``state`` (guards aside)."""
    return _ALLOWED[state]


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
    from states.errors import InvalidTransition

    cursor = _cursor()
    _MACHINE.set_state(state, model=cursor)
    try:
        _MACHINE.events[trigger.value].trigger(cursor)
    except MachineError:
        raise InvalidTransition(trigger.value, state.value, [t.value for t in _ALLOWED[state]]) from None
    return cursor.state
