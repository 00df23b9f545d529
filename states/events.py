"""Domain events: what happened to a request, recorded in past tense, one class per kind.

The aggregate appends events as it changes; the store turns each into one
hash-chained audit row (``type``, ``trigger``, ``from_state``, ``to_state``,
``payload``) in the same transaction as the new state. ``payload`` is the
event's fields as JSON data, exactly as audit rows have always stored them
(the chain's hashes cover it). :data:`EVENTS` maps a stored ``type`` back to
its class and :func:`read` turns a stored row back into an event.

Transition events (:class:`TransitionEvent`) take their ``type``, ``trigger``
and ``to_state`` from the lifecycle table and carry the state they left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from states.event_base import DomainEvent as DomainEvent  # re-exported: the events' types live here for callers
from states.event_base import Fact as Fact
from states.event_base import Json as Json
from states.event_base import TransitionEvent as TransitionEvent
from states.event_base import optional as _optional
from states.lifecycle import Trigger

# --- transitions (type, trigger and to_state from the lifecycle table) ------------------------------

@dataclass(frozen=True, kw_only=True)
class Diagnosed(TransitionEvent, trigger=Trigger.DIAGNOSE):
    diagnosis: Json
    recommendations: tuple[Json, ...]


@dataclass(frozen=True, kw_only=True)
class Redirected(TransitionEvent, trigger=Trigger.REDIRECT):
    redirect: Json


@dataclass(frozen=True, kw_only=True)
class Designed(TransitionEvent, trigger=Trigger.DESIGN):
    brief: Json


@dataclass(frozen=True, kw_only=True)
class Delivered(TransitionEvent, trigger=Trigger.DELIVER):
    delivery: Json


@dataclass(frozen=True, kw_only=True)
class Measured(TransitionEvent, trigger=Trigger.MEASURE):
    results: tuple[Json, ...]
    roi: Json | None


@dataclass(frozen=True, kw_only=True)
class Acknowledged(TransitionEvent, trigger=Trigger.ACKNOWLEDGE):
    acknowledgement: Json


@dataclass(frozen=True, kw_only=True)
class Declined(TransitionEvent, trigger=Trigger.DECLINE):
    reason: str


@dataclass(frozen=True, kw_only=True)
class Cancelled(TransitionEvent, trigger=Trigger.CANCEL):
    reason: str


@dataclass(frozen=True, kw_only=True)
class Reopened(TransitionEvent, trigger=Trigger.REOPEN):
    reason: str


# --- the request and its plan ---------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Submitted(Fact):
    type = "submitted"
    intake: Json


@dataclass(frozen=True, kw_only=True)
class PlanDrafted(Fact):
    type = "plan_drafted"
    plan: Json


@dataclass(frozen=True, kw_only=True)
class PlanApproved(Fact):
    type = "plan_approved"
    approver: str
    comment: str
    # an admin who recorded the approval on the approver's behalf, and why (absent when the approver acted)
    recorded_by: str = _optional("")
    reason: str = _optional("")


@dataclass(frozen=True, kw_only=True)
class Rediagnosed(Fact):
    """A diagnosed request diagnosed again (states.revisions): the new diagnosis, its recommendations, why."""

    type = "rediagnosed"
    diagnosis: Json
    recommendations: tuple[Json, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class PlanRevised(Fact):
    """A new version of an approved plan, drafted; it awaits the sponsor beside the version in force."""

    type = "plan_revised"
    version: int
    plan: Json


@dataclass(frozen=True, kw_only=True)
class PlanRevisionApproved(Fact):
    """The sponsor approved plan version ``version``: it is now the plan in force."""

    type = "plan_revision_approved"
    version: int
    approver: str
    comment: str
    recorded_by: str = _optional("")  # as on PlanApproved
    reason: str = _optional("")


@dataclass(frozen=True, kw_only=True)
class Amended(Fact):
    """Parts of an open request corrected: ``changes`` maps each field (``sponsor``,
    ``plan.items.m1.owner`` …) to ``{"before": …, "after": …}``."""

    type = "amended"
    reason: str
    changes: Json


@dataclass(frozen=True, kw_only=True)
class NoteAdded(Fact):
    type = "note_added"
    text: str
    source: str = _optional("")


# --- a solution mix (states/companions.py) -------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CompanionAdded(Fact):
    """A companion piece next to the main path: ``piece`` is its id, kind, what, owner, due date, note."""

    type = "companion_added"
    piece: Json


@dataclass(frozen=True, kw_only=True)
class CompanionDone(Fact):
    type = "companion_done"
    piece: str
    outcome: str = _optional("")


@dataclass(frozen=True, kw_only=True)
class CompanionDropped(Fact):
    type = "companion_dropped"
    piece: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class CompanionReminded(Fact):
    type = "companion_reminded"
    piece: str
    due: str


@dataclass(frozen=True, kw_only=True)
class ActionStepReminded(Fact):
    """The owner of action step ``step`` (1-based) reminded of it (states/followups.py)."""

    type = "action_step_reminded"
    step: int
    due: str


# --- sessions --------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SessionScheduled(Fact):
    type = "session_scheduled"
    session: Json
    sequence: int


@dataclass(frozen=True, kw_only=True)
class SessionRescheduled(Fact):
    type = "session_rescheduled"
    session: Json
    sequence: int


@dataclass(frozen=True, kw_only=True)
class SessionCancelled(Fact):
    type = "session_cancelled"
    session: str  # the session's id
    sequence: int


# --- checkpoints (keys are "<request id>:<item>:<offset>") -----------------------------------------

@dataclass(frozen=True, kw_only=True)
class CheckpointScheduled(Fact):
    type = "checkpoint_scheduled"
    checkpoint: str
    item: str
    offset: str
    due_at: str


@dataclass(frozen=True, kw_only=True)
class CheckpointSuperseded(Fact):
    """An open checkpoint closed because plan version ``version`` no longer has its item/offset."""

    type = "checkpoint_superseded"
    checkpoint: str
    version: int


@dataclass(frozen=True, kw_only=True)
class SurveySent(Fact):
    type = "survey_sent"
    checkpoint: str
    to: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ReminderSent(Fact):
    type = "reminder_sent"
    checkpoint: str
    reminder: int


@dataclass(frozen=True, kw_only=True)
class CheckpointFlagged(Fact):
    type = "checkpoint_flagged"
    checkpoint: str
    due_at: str
    late_by_days: int


@dataclass(frozen=True, kw_only=True)
class CheckpointStalled(Fact):
    """A survey still unanswered after its last reminder and response window: needs review (states.stalls)."""

    type = "checkpoint_stalled"
    checkpoint: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ResultRecorded(Fact):
    type = "result_recorded"
    checkpoint: str
    value: float
    note: str
    comparison_value: float | None = _optional(None)  # the comparison group's value (control group)
    early_reason: str = _optional("")  # recorded before the checkpoint was due, and why
    due_at: str = _optional("")  # when it was due (an early result only)


@dataclass(frozen=True, kw_only=True)
class CheckpointMissed(Fact):
    type = "checkpoint_missed"
    checkpoint: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class PlanChangesRequested(Fact):
    """The sponsor asked for changes to the plan version waiting for approval (states.responses)."""

    type = "plan_changes_requested"
    version: int
    by: str
    comment: str


@dataclass(frozen=True, kw_only=True)
class AnswerChanged(Fact):
    """A respondent changed a survey answer while the checkpoint's window was open (states.responses)."""

    type = "answer_changed"
    checkpoint: str
    before: float
    value: float
    note: str = _optional("")


@dataclass(frozen=True, kw_only=True)
class SurveyAnswered(Fact):
    """A respondent answered a group survey (states.surveys); ``replaces`` their earlier answer, if any."""

    type = "survey_answered"
    checkpoint: str
    respondent: str
    value: float
    note: str = _optional("")
    replaces: float | None = _optional(None)


@dataclass(frozen=True, kw_only=True)
class SurveyClosed(Fact):
    """A group survey closed with its aggregate: everyone answered, or its response window ended."""

    type = "survey_closed"
    checkpoint: str
    responses: int
    asked: int
    response_rate: float
    value: float | None


@dataclass(frozen=True, kw_only=True)
class RosterSet(Fact):
    """The delivery's roster was given or changed: how many learners, the addresses added, removed, changed."""

    type = "roster_set"
    learners: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


# --- mail (recorded by the outbox relay and the operator's outbox commands) --------------------------

@dataclass(frozen=True, kw_only=True)
class _Mail(Fact):
    key: str  # the outbox key
    template: str
    to: tuple[str, ...] | None = _optional(None)
    detail: str = _optional("")


@dataclass(frozen=True, kw_only=True)
class EmailSent(_Mail):
    type = "email_sent"


@dataclass(frozen=True, kw_only=True)
class EmailBounced(_Mail):
    type = "email_bounced"


@dataclass(frozen=True, kw_only=True)
class InviteSent(_Mail):
    type = "invite_sent"


# --- the registry ----------------------------------------------------------------------------------

TRANSITION_EVENTS: Final[dict[Trigger, type[TransitionEvent]]] = {
    cls.trigger: cls for cls in (Diagnosed, Redirected, Designed, Delivered, Measured, Acknowledged, Declined,
                                 Cancelled, Reopened)
}
FACTS: Final[tuple[type[Fact], ...]] = (
    Submitted, PlanDrafted, PlanApproved, Amended, NoteAdded, SessionScheduled, SessionRescheduled, SessionCancelled,
    CheckpointScheduled, SurveySent, ReminderSent, CheckpointFlagged, CheckpointStalled, ResultRecorded,
    CheckpointMissed,
    EmailSent, EmailBounced, InviteSent, Rediagnosed, PlanRevised, PlanRevisionApproved, CheckpointSuperseded,
    PlanChangesRequested, AnswerChanged, CompanionAdded, CompanionDone, CompanionDropped, CompanionReminded,
    ActionStepReminded, SurveyAnswered, SurveyClosed, RosterSet,
)
EVENTS: Final[dict[str, type[Fact] | type[TransitionEvent]]] = {
    **{cls.type: cls for cls in TRANSITION_EVENTS.values()}, **{cls.type: cls for cls in FACTS},
}


class UnknownEvent(ValueError):
    """A stored row whose ``type`` names no event class."""


def read(type_: str, payload: Json, from_state: str | None = None) -> DomainEvent:
    """The event a stored audit row records. Raises ``UnknownEvent`` for a type no class has,
    ``TypeError`` or ``ValueError`` when the payload does not fit the class."""
    cls = EVENTS.get(type_)
    if cls is None:
        raise UnknownEvent(type_)
    if issubclass(cls, TransitionEvent):
        if from_state is None:
            raise ValueError(f"{type_}: a transition event needs the state it left")
        return cls.from_payload(payload, from_state)
    return cls.from_payload(payload)
