"""Who answers a plan item: the respondent groups, the delivery's roster and a survey's rules.

A plan item's ``respondent`` names a group (:class:`Respondent`): ``learners`` (the delivery's roster),
``managers`` (the roster's managers: one per learner, or per team), ``sponsor``, ``stakeholders``
(the item's named ``stakeholders``, else the request's), or ``owner`` (the item's owner collects the
number: system reports, observations; a to-do, no survey). The values of plans made before groups
keep their meaning: ``learner`` is ``learners`` (the audience's contact, or the requester, when the
delivery has no roster), ``manager`` the sponsor, ``stakeholder`` the request's stakeholders.

A survey item may say how its answers are read (:class:`SurveyRules`): the scale, a threshold (the
result is then the share of answers at or above it), the minimum number of answers and response
rate, and the response window after the due date (default 14 days). Pure models; the rules that use
them are in :mod:`states.surveys`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import AfterValidator, Field, field_validator, model_validator

from states.durations import parse_duration
from states.fields import Email, Line, Model, Person
from states.validation import Count, Measure

DEFAULT_WINDOW: Final = "P14D"
MAX_ROSTER: Final = 100_000


class Respondent(StrEnum):
    LEARNERS = "learners"
    MANAGERS = "managers"
    SPONSOR = "sponsor"
    STAKEHOLDERS = "stakeholders"
    OWNER = "owner"
    # the values of plans made before respondent groups (read as LEGACY says)
    LEARNER = "learner"
    MANAGER = "manager"
    STAKEHOLDER = "stakeholder"


#: what an older plan's respondent means now
LEGACY: Final = {Respondent.LEARNER: Respondent.LEARNERS, Respondent.MANAGER: Respondent.SPONSOR,
                 Respondent.STAKEHOLDER: Respondent.STAKEHOLDERS}


def group_of(respondent: Respondent) -> Respondent:
    return LEGACY.get(respondent, respondent)


class Learner(Model):
    name: Line = Field(min_length=1)
    email: Email
    team: Line = ""
    manager: Person | None = Field(default=None, description="this learner's manager (else the team's)")


class TeamManager(Model):
    team: Line = Field(min_length=1)
    manager: Person


class Roster(Model):
    """The delivery's learners (name, address, optional team and manager) and the teams' managers."""

    learners: list[Learner] = Field(min_length=1, max_length=MAX_ROSTER)
    teams: list[TeamManager] = Field(default_factory=list, description="a manager per team")

    @field_validator("learners")
    @classmethod
    def _unique(cls, learners: list[Learner]) -> list[Learner]:
        seen: dict[str, int] = {}
        for i, learner in enumerate(learners):
            if learner.email in seen:
                raise ValueError(f"[{i}].email: {learner.email} is listed twice (also [{seen[learner.email]}])")
            seen[learner.email] = i
        return learners

    @field_validator("teams")
    @classmethod
    def _teams(cls, teams: list[TeamManager]) -> list[TeamManager]:
        names = [t.team for t in teams]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"team(s) listed twice: {', '.join(twice)}")
        return teams

    def manager_of(self, learner: Learner) -> Person | None:
        if learner.manager is not None:
            return learner.manager
        return next((t.manager for t in self.teams if t.team == learner.team), None) if learner.team else None

    def changes(self, new: Roster) -> dict[str, list[str]]:
        """What ``new`` changes: the addresses added, removed, and those whose name, team or manager changed."""
        old = {x.email: x for x in self.learners}
        now = {x.email: x for x in new.learners}
        return {"added": [e for e in now if e not in old], "removed": [e for e in old if e not in now],
                "changed": [e for e in now if e in old and (now[e] != old[e] or self.manager_of(old[e])
                                                            != new.manager_of(now[e]))]}


def _window(value: str) -> str:
    return parse_duration(value).text


class SurveyRules(Model):
    """How a survey item's answers are read and when its checkpoint closes."""

    scale_min: Measure = Field(default=1, description="the lowest answer")
    scale_max: Measure = Field(default=5, description="the highest answer")
    threshold: Measure | None = Field(default=None, description="the result is the share (%) of answers at or "
                                                                "above it")
    min_responses: Count = Field(default=1, description="fewer answers at the window's end: missed")
    min_response_rate: float = Field(default=0, ge=0, le=100, description="in % of the people asked")
    window: Annotated[str, AfterValidator(_window)] = Field(
        default=DEFAULT_WINDOW, description="answers count until this long after the due date")

    @model_validator(mode="after")
    def _scale(self) -> SurveyRules:
        if self.scale_min >= self.scale_max:
            raise ValueError(f"scale_max: {self.scale_max:g} must be above scale_min {self.scale_min:g}")
        if self.threshold is not None and not self.scale_min <= self.threshold <= self.scale_max:
            raise ValueError(f"threshold: {self.threshold:g} is outside the scale "
                             f"{self.scale_min:g}–{self.scale_max:g}")
        return self


class SurveyAnswer(Model):
    """One respondent's answer to one checkpoint's question (the latest; earlier ones are in the history)."""

    email: str
    value: float
    note: str = ""
    at: str = ""  # ISO time it was given
    via: str = ""  # reply, link


class Tally(Model):
    """A survey checkpoint's answers, aggregated: n of ``asked``, the response rate (%), mean, median and,
    with a threshold, the share (%) at or above it; ``result`` is the share with a threshold, else the mean."""

    n: int
    asked: int
    response_rate: float
    mean: float | None = None
    median: float | None = None
    share_at_or_above: float | None = None
    threshold: float | None = None

    @property
    def result(self) -> float | None:
        return self.share_at_or_above if self.threshold is not None else self.mean


def tally(values: list[float], asked: int, threshold: float | None = None) -> Tally:
    """Aggregate ``values`` (one per respondent) answered by ``len(values)`` of ``asked`` people."""
    n = len(values)
    rate = round(100 * n / asked, 1) if asked else 0.0
    if not n:
        return Tally(n=0, asked=asked, response_rate=rate, threshold=threshold)
    ordered = sorted(values)
    mid = n // 2
    median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    share = None
    if threshold is not None:
        share = round(100 * sum(1 for v in values if v >= threshold) / n, 1)
    return Tally(n=n, asked=asked, response_rate=rate, mean=round(sum(values) / n, 3), median=median,
                 share_at_or_above=share, threshold=threshold)
