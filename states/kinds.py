"""Vocabularies of the domain that entry points offer as choices, in a module that imports nothing
heavy (``ldflow --help`` lists them without loading pydantic)."""

from __future__ import annotations

from enum import StrEnum


class RedirectKind(StrEnum):
    """What solves a performance problem instead of training (a redirect's ``kind``)."""

    JOB_AID = "job_aid"
    PROCESS_CHANGE = "process_change"
    TOOL_FIX = "tool_fix"
    EXPECTATIONS_FEEDBACK = "expectations_feedback"
    COACHING = "coaching"
    INCENTIVE_CHANGE = "incentive_change"
    TASK_SIMPLIFICATION = "task_simplification"
    COMMUNICATION = "communication"
    JOB_REDESIGN = "job_redesign"


class CompanionKind(StrEnum):
    """What a companion piece of a solution mix is: any redirect kind, or a small designed piece
    (``design``: a decision card, a 30-minute practice) next to the main path."""

    DESIGN = "design"
    JOB_AID = "job_aid"
    PROCESS_CHANGE = "process_change"
    TOOL_FIX = "tool_fix"
    EXPECTATIONS_FEEDBACK = "expectations_feedback"
    COACHING = "coaching"
    INCENTIVE_CHANGE = "incentive_change"
    TASK_SIMPLIFICATION = "task_simplification"
    COMMUNICATION = "communication"
    JOB_REDESIGN = "job_redesign"
