"""Pydantic models for everything a user hands to ldflow.

Validation here is about *shape*: types, formats, vague verbs, bad durations,
unknown fields (each error names its field; exit code 2). Whether enough has
been provided for a trigger to fire is the guards' business (exit code 3), so
most content fields may be empty here and are listed as missing by a guard.
"""

from __future__ import annotations

import re
from datetime import UTC, date
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, AwareDatetime, Field, ValidationInfo, field_validator, model_validator

from states.durations import MAX_YEARS, parse_duration
from states.fields import Email as Email  # re-exported: the field types of every input model
from states.fields import Line as Line
from states.fields import Model as Model
from states.fields import Person as Person
from states.fields import Text as Text
from states.fields import single_line
from states.groups import Respondent as Respondent  # re-exported: respondent groups (states/groups.py)
from states.groups import Roster as Roster
from states.groups import SurveyRules as SurveyRules
from states.kinds import RedirectKind as RedirectKind  # re-exported: part of the input models
from states.measures import CostCategory as CostCategory
from states.measures import CostLine as CostLine
from states.measures import Costs as Costs  # re-exported: the plan's evidence fields (states/measures.py)
from states.measures import Direction as Direction
from states.measures import Isolation as Isolation
from states.measures import IsolationMethod as IsolationMethod
from states.observable import VAGUE_VERBS as VAGUE_VERBS  # re-exported
from states.observable import check_observable
from states.validation import Count, Measure, ValuePerUnit, from_store


class BusinessGoal(Model):
    """The business result the request serves. Any part may be missing at intake;
    the ``diagnose`` guard requires all of them."""

    metric: Line | None = None
    unit: Line | None = None
    current_value: Measure | None = None
    target_value: Measure | None = None
    target_date: date | None = None
    data_source: Line | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("metric", "current_value", "target_value", "target_date", "data_source")

    def missing(self) -> list[str]:
        return [name for name in self.REQUIRED if getattr(self, name) in (None, "")]

    def merged(self, other: BusinessGoal | None) -> BusinessGoal:
        """This goal with any field ``other`` sets taking precedence."""
        if other is None:
            return self
        return self.model_copy(update=other.model_dump(exclude_none=True))


class Audience(Model):
    description: Line = ""
    size: Count | None = None
    contact: Person | None = Field(default=None, description="address that reaches the learners (e.g. a list)")


def _observable(action: str, info: ValidationInfo) -> str:
    if from_store(info):
        return action
    action = single_line(action)
    if len(action) < 3:
        raise ValueError("an action must say what someone does on the job")
    return check_observable(action)  # a vague verb or phrase anywhere (states/observable.py)


ObservableAction = Annotated[str, Field(max_length=300), AfterValidator(_observable)]


class Intake(Model):
    """What the requester asked for, in their words, plus the partner's first questions."""

    title: Line = Field(min_length=3)
    requester: Person
    sponsor: Person
    stakeholders: list[Person] = Field(default_factory=list)
    requested_solution: Text = Field(min_length=1, description="the order, in the requester's words")
    business_goal: BusinessGoal = Field(default_factory=BusinessGoal)
    audience: Audience = Field(default_factory=Audience)
    why_now: Text = ""
    tried_already: Text = ""
    behaviour_change: list[ObservableAction] = Field(
        default_factory=list, description="what people should do differently on the job, as observable actions")
    success_signs: Text = Field(default="", description="how success will show, in the requester's words")


# --- diagnosis -------------------------------------------------------------------------------------

class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class CheckAnswer(Model):
    answer: Answer
    evidence: Text = ""


# Mager & Pipe, Gilbert's BEM, action mapping: environment first, then the individual.
CAUSE_CHECKS: dict[str, str] = {
    "expectations_clear": "Are expectations and feedback clear to the people doing the work?",
    "tools_adequate": "Are the tools and information they need adequate?",
    "process_adequate": "Do the process and the time available let them do it?",
    "consequences_aligned": "Are consequences aligned (doing it right is not punished, doing it wrong "
                            "not rewarded)?",
    "simpler_way": "Is there a simpler way (could the task be simplified or removed)?",
    "could_do_if_life_depended": "Could they do it if their life depended on it?",
    "used_to_do_it": "Did they use to do it well?",
    "used_often": "Do they use the skill often?",
    "job_aid_possible": "Could the knowledge live in a job aid instead of in their heads?",
}


class Diagnosis(Model):
    business_goal: BusinessGoal | None = Field(
        default=None, description="completes or corrects the business goal given at intake")
    observable_actions: list[ObservableAction] = Field(default_factory=list)
    cause_checks: dict[str, CheckAnswer] = Field(default_factory=dict)
    summary: Text = ""

    @field_validator("cause_checks")
    @classmethod
    def _known_checks(cls, value: dict[str, CheckAnswer]) -> dict[str, CheckAnswer]:
        unknown = sorted(set(value) - set(CAUSE_CHECKS))
        if unknown:
            raise ValueError(f"unknown cause check(s) {', '.join(unknown)}; known: {', '.join(CAUSE_CHECKS)}")
        return value


class Recommendation(Model):
    """One recommended path: ``design`` or a redirect kind, with the reasons."""

    path: str
    reasons: list[str]


# --- measurement plan ------------------------------------------------------------------------------

class Framework(StrEnum):
    KIRKPATRICK = "kirkpatrick"
    LTEM = "ltem"
    PHILLIPS = "phillips"


_LEVELS = {Framework.KIRKPATRICK: 4, Framework.LTEM: 8, Framework.PHILLIPS: 5}
# Levels that measure behaviour on the job or business results (need a baseline).
_BEHAVIOUR_OR_RESULTS = {Framework.KIRKPATRICK: 3, Framework.LTEM: 7, Framework.PHILLIPS: 3}


class Instrument(StrEnum):
    SURVEY = "survey"
    ASSESSMENT = "assessment"
    OBSERVATION = "observation"
    SYSTEM_REPORT = "system_report"
    INTERVIEW = "interview"


class Baseline(Model):
    value: Measure
    date: date
    source: Line = Field(min_length=1)


class Target(Model):
    """What good is: ``value`` for increase, decrease, at_most (the ceiling), at_least (the floor);
    ``low`` and ``high`` for within."""

    value: Measure | None = None
    low: Measure | None = None
    high: Measure | None = None
    date: date


def _duration(value: str) -> str:
    return parse_duration(value).text


IsoDuration = Annotated[str, AfterValidator(_duration)]
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _slug(value: str) -> str:
    if value and not _SLUG.match(value):
        raise ValueError("use lower-case letters, digits, '-' or '_' (at most 40)")
    return value


Slug = Annotated[str, AfterValidator(_slug)]


class PlanItem(Model):
    id: Slug = ""
    framework: Framework
    level: int = Field(ge=1)
    metric: Line = Field(min_length=1)
    unit: Line = Field(min_length=1)
    baseline: Baseline | None = None
    target: Target
    instrument: Instrument
    respondent: Respondent
    checkpoints: list[IsoDuration] = Field(min_length=1, description="offsets after delivery, e.g. P30D")
    owner: Person
    value_per_unit: ValuePerUnit | None = Field(
        default=None, description="monetary benefit of one unit of improvement (Phillips level 5)")
    direction: Direction | None = Field(default=None, description="default: from baseline and target")
    guardrail: bool = Field(default=False, description="must not get worse while the main metric improves")
    isolation: Isolation | None = Field(default=None, description="how the training's effect is isolated")
    stakeholders: list[Person] = Field(default_factory=list, description="respondent stakeholders: who answers "
                                                                         "(default: the request's stakeholders)")
    survey: SurveyRules | None = Field(default=None, description="scale, threshold, minimum answers, window")

    @model_validator(mode="after")
    def _level_in_range(self) -> PlanItem:
        top = _LEVELS[self.framework]
        if self.level > top:
            raise ValueError(f"level {self.level} does not exist in {self.framework.value} (1–{top})")
        target = self.target
        if self.direction == Direction.WITHIN:
            if target.low is None or target.high is None:
                raise ValueError("target: a 'within' item needs target.low and target.high")
            if target.low > target.high:
                raise ValueError(f"target: low {target.low:g} is above high {target.high:g}")
        elif target.value is None or target.low is not None or target.high is not None:
            raise ValueError("target: give target.value (low and high are for direction 'within')")
        if len(set(self.checkpoints)) != len(self.checkpoints):
            raise ValueError("checkpoints: the same offset is listed twice")
        if self.baseline is not None and self.target.date <= self.baseline.date:
            raise ValueError(f"target.date ({self.target.date}) must be after baseline.date ({self.baseline.date})")
        return self

    @property
    def behaviour_or_results(self) -> bool:
        return self.level >= _BEHAVIOUR_OR_RESULTS[self.framework]


class MeasurementPlan(Model):
    items: list[PlanItem] = Field(min_length=1)
    costs: Costs | None = None

    @model_validator(mode="after")
    def _ids(self) -> MeasurementPlan:
        ids = [item.id or f"m{i}" for i, item in enumerate(self.items, start=1)]
        if len(set(ids)) != len(ids):
            raise ValueError("items: two items share an id")
        items = [item if item.id else item.model_copy(update={"id": ids[i]}) for i, item in enumerate(self.items)]
        object.__setattr__(self, "items", items)
        return self


class PlanApproval(Model):
    approver: Email
    comment: Text = ""
    # why an admin records the approver's approval on their behalf (required then, unused otherwise)
    reason: Text = ""


# --- design, redirect, delivery ----------------------------------------------------------------------

class DesignBrief(Model):
    objectives: list[ObservableAction] = Field(default_factory=list)
    format: Line = ""
    approach: Text = ""
    practice_activities: list[Line] = Field(default_factory=list)
    duration: Line = ""
    skill_gap_override: Text = Field(
        default="", description="why design anyway when the diagnosis found no knowledge/skill gap")


class Redirect(Model):
    kind: RedirectKind | None = None
    rationale: Text = ""
    owner: Person | None = None


class Delivery(Model):
    start_date: date | None = None
    end_date: date | None = None
    audience_reached: Count | None = None
    format: Line = ""
    notes: Text = ""
    roster: Roster | None = Field(default=None, description="the learners (and their managers) surveyed")

    @field_validator("start_date", "end_date")
    @classmethod
    def _schedulable(cls, value: date | None) -> date | None:
        # Checkpoints (up to MAX_YEARS later) must still be a representable date.
        if value is not None and value.year > 9999 - MAX_YEARS:
            raise ValueError(f"{value} is too far in the future to schedule checkpoints after it")
        return value

    @model_validator(mode="after")
    def _order(self) -> Delivery:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class SessionPlan(Model):
    """A delivery session to invite people to (a workshop, a coaching slot, a job-aid walk-through).

    Times must carry a UTC offset (no floating times); they are kept in UTC. Scheduling a session
    with an existing ``id`` again reschedules it: the same calendar event, a higher SEQUENCE.
    """

    id: Slug = ""
    title: Line = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    location: Line = ""
    attendees: list[Person] = Field(default_factory=list, description="default: the audience contact or requester")
    organizer: Person | None = Field(default=None, description="default: the team's organizer (LDFLOW_ORGANIZER)")
    agenda: list[Line] = Field(default_factory=list)
    preparation: Text = ""

    @model_validator(mode="after")
    def _times(self) -> SessionPlan:
        try:  # 0001-01-01T00:30+01:00 or 9999-12-31T23:30-01:00 have no UTC date
            start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        except OverflowError:
            raise ValueError("start and end must fall between the years 1 and 9999 in UTC") from None
        if end <= start:
            raise ValueError("end must be after start")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        return self


class CheckpointResult(Model):
    value: Measure | None = None
    note: Text = ""
    missed_reason: Text = ""
    comparison_value: Measure | None = Field(
        default=None, description="the comparison group's value at this checkpoint (isolation: control_group)")
    early_reason: Text = Field(default="", description="why a result is recorded before the checkpoint is due")

    @model_validator(mode="after")
    def _one(self) -> CheckpointResult:
        if (self.value is None) == (not self.missed_reason):
            raise ValueError("give either a value, or missed_reason to close the checkpoint as missed")
        if self.comparison_value is not None and self.value is None:
            raise ValueError("comparison_value: goes with a value (the trained group's result)")
        return self


# --- closing the loop ----------------------------------------------------------------------------------

class ActionStep(Model):
    step: Line = Field(min_length=1)
    owner: Line = ""
    email: Email | None = Field(default=None, description="the owner's address: told their step, reminded of its date")
    due: date | None = None


class Contribution(Model):
    stakeholder: Line = Field(min_length=1)
    contribution: Text = Field(min_length=1)


class Acknowledgement(Model):
    recap: list[Line] = Field(default_factory=list, description="takeaways")
    action_plan: list[ActionStep] = Field(default_factory=list)
    contributions: list[Contribution] = Field(default_factory=list)
    message: Text = ""


class Reason(Model):
    reason: Text = ""
