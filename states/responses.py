"""What the people outside L&D answer: the sponsor asks for changes to a plan, a respondent changes
an answer while the survey is open.

Approving a plan (``TrainingRequest.approve_plan``) and recording a result (``record_result``) are
the aggregate's own commands; these two complete what a sponsor's and a respondent's link can do.
Both follow the lifecycle table's rules of the command they sit beside (asking for changes is
allowed where approving is, changing an answer where recording one is). Each function changes the
request and records its events and notifications; nothing is written here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from states import events as ev
from states import lifecycle
from states.checkpoints import CheckpointStatus
from states.lifecycle import Command
from states.models import MeasurementPlan
from states.notifications import recipients

if TYPE_CHECKING:
    from states.request import TrainingRequest

MAX_COMMENT = 4000


def pending_plan(request: TrainingRequest) -> tuple[int, MeasurementPlan] | None:
    """The plan version waiting for the sponsor's approval and its plan, or None when none waits."""
    if request.plan_draft is not None:
        return request.plan_draft.version, request.plan_draft.plan
    if request.plan is not None and request.plan_approved_by is None:
        return request.plan_version or 1, request.plan
    return None


def request_plan_changes(request: TrainingRequest, version: int, by: str, comment: str, at: datetime) -> None:
    """The sponsor asks for changes to plan ``version`` with a comment; the plan's owners are told.

    Refused (every missing item at once) unless the state allows approving, ``version`` is the one
    waiting for approval, ``by`` is the sponsor and the comment says something."""
    missing = lifecycle.refusal(Command.APPROVE_PLAN, request.state)
    pending = pending_plan(request)
    if pending is None:
        missing.append("a plan version waiting for approval")
    elif pending[0] != version:
        missing.append(f"plan version {version} waiting for approval (version {pending[0]} is)")
    sponsor = request.intake.sponsor.email
    if by.lower() != sponsor.lower():
        missing.append(f"a request by the sponsor {sponsor} (not {by})")
    comment = comment.strip()
    if not comment:
        missing.append("a comment saying what should change")
    elif len(comment) > MAX_COMMENT:
        missing.append(f"a comment of at most {MAX_COMMENT} characters")
    lifecycle.refuse(Command.APPROVE_PLAN, request.state, missing)
    assert pending is not None
    plan = pending[1]
    request.updated_at = at
    request._events.append(ev.PlanChangesRequested(version=version, by=by, comment=comment))
    context: dict[str, Any] = {"plan_version": version, "comment": comment, "by": by,
                               "plan": plan.model_dump(mode="json")}
    owners = recipients(item.owner for item in plan.items)
    request._outgoing.append(request.notification(
        f"plan_changes_requested:v{request.version + 1}", "plan_changes_requested", owners,
        f"The sponsor asks for changes to the measurement plan: {request.intake.title}", context))


def change_answer(request: TrainingRequest, key: str, value: float, note: str, at: datetime) -> None:
    """Change the recorded answer of checkpoint ``key`` (a respondent correcting their survey answer)."""
    checkpoint = request.checkpoint(key)
    missing = lifecycle.refusal(Command.RECORD_RESULT, request.state)
    if checkpoint.status != CheckpointStatus.CLOSED or checkpoint.value is None:
        missing.append(f"an answered checkpoint ({checkpoint.key} is {checkpoint.status.value})")
    lifecycle.refuse(Command.RECORD_RESULT, request.state, missing)
    assert checkpoint.value is not None
    before = checkpoint.value
    checkpoint.value, checkpoint.note = value, note
    request.updated_at = at
    request._events.append(ev.AnswerChanged(checkpoint=checkpoint.key, before=before, value=value, note=note))
