"""Guards: what must be true before a trigger fires.

Each guard returns *every* missing item at once (an empty list means go);
the aggregate raises :class:`states.errors.TransitionRefused` with that list
and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from states.diagnosis import has_skill_gap
from states.models import (
    CAUSE_CHECKS,
    Acknowledgement,
    Answer,
    Delivery,
    DesignBrief,
    Diagnosis,
    PlanApproval,
    Reason,
    Redirect,
)

if TYPE_CHECKING:
    from states.request import TrainingRequest


def diagnose(request: TrainingRequest, diagnosis: Diagnosis) -> list[str]:
    missing: list[str] = []
    goal = request.intake.business_goal.merged(diagnosis.business_goal)
    missing += [f"business goal: {name.replace('_', ' ')}" for name in goal.missing()]
    if not diagnosis.observable_actions:
        missing.append("at least one observable action (what people will do differently on the job)")
    for check in CAUSE_CHECKS:
        given = diagnosis.cause_checks.get(check)
        if given is None:
            missing.append(f"cause check '{check}' unanswered ({CAUSE_CHECKS[check]})")
        elif given.answer == Answer.UNKNOWN:
            missing.append(f"cause check '{check}' is 'unknown': find out, then answer yes or no")
    return missing


def approve_plan(request: TrainingRequest, approval: PlanApproval) -> list[str]:
    missing = []
    if request.plan is None:
        missing.append("a drafted measurement plan")
    elif request.plan_approved_by is not None:
        missing.append(f"a plan awaiting approval (already approved by {request.plan_approved_by})")
    return missing + sponsor_approval(request, approval)


def sponsor_approval(request: TrainingRequest, approval: PlanApproval) -> list[str]:
    """The approver is the request's sponsor (a first approval or a plan revision's)."""
    sponsor = request.intake.sponsor.email
    return [] if approval.approver == sponsor else [f"approval by the sponsor {sponsor} (not {approval.approver})"]


def on_behalf(approval: PlanApproval, actor: str | None, admin: bool) -> list[str]:
    """Who records an approval: the approver themselves, or an admin with a reason. ``actor`` None: not
    known here (the domain's own tests); the application always says who acts."""
    if actor is None or actor.strip().lower() == approval.approver.lower():
        return []
    if not admin:
        return [f"the approver's own approval: {actor} is not {approval.approver} (only an admin may record "
                "an approval on someone else's behalf, with a reason)"]
    if not approval.reason.strip():
        return [f"a reason for recording {approval.approver}'s approval on their behalf"]
    return []


def _approved_plan(request: TrainingRequest) -> list[str]:
    if request.plan is None:
        return ["an approved measurement plan (none drafted: run `ldflow plan draft`)"]
    if request.plan_approved_by is None:
        return [f"an approved measurement plan (the draft awaits approval by the sponsor "
                f"{request.intake.sponsor.email}: run `ldflow plan approve`)"]
    return []


def redirect(request: TrainingRequest, given: Redirect) -> list[str]:
    missing = _approved_plan(request)
    if given.kind is None:
        missing.append("a redirect kind (job_aid, process_change, tool_fix, expectations_feedback, coaching, "
                       "incentive_change, task_simplification, communication, job_redesign)")
    if not given.rationale:
        missing.append("a rationale for the redirect")
    return missing


def design(request: TrainingRequest, brief: DesignBrief) -> list[str]:
    missing = _approved_plan(request)
    if request.plan is not None:
        for item in request.plan.items:
            if item.behaviour_or_results and item.baseline is None:
                missing.append(f"a baseline for measurement item '{item.id}' ({item.metric}, "
                               f"{item.framework.value} level {item.level})")
    assert request.diagnosis is not None  # a diagnosed request always has one
    if not has_skill_gap(request.diagnosis) and not brief.skill_gap_override:
        missing.append("a knowledge/skill gap in the diagnosis, or a skill_gap_override with a justification")
    if not brief.objectives:
        missing.append("design brief: at least one objective")
    if not brief.format:
        missing.append("design brief: a format")
    if not brief.approach:
        missing.append("design brief: an approach")
    return missing


def deliver(request: TrainingRequest, delivery: Delivery) -> list[str]:
    missing = []
    if delivery.start_date is None:
        missing.append("delivery: start date")
    if delivery.end_date is None:
        missing.append("delivery: end date")
    if delivery.audience_reached is None:
        missing.append("delivery: audience reached (how many people)")
    if not delivery.format:
        missing.append("delivery: format")
    return missing


def measure(request: TrainingRequest) -> list[str]:
    missing = [f"checkpoint {c.key} ({c.status}, due {c.due_at:%Y-%m-%d}) is not closed: record a result "
               "or close it as missed"
               for c in request.checkpoints if not c.closed]
    if not request.checkpoints:
        missing.append("measurement checkpoints (none were scheduled)")
    return missing


def acknowledge(request: TrainingRequest, ack: Acknowledgement) -> list[str]:
    missing = []
    if not ack.recap:
        missing.append("a recap of the takeaways")
    if not ack.action_plan:
        missing.append("an action plan (next steps with owners)")
    missing += [f"an owner for action step '{step.step}'" for step in ack.action_plan if not step.owner]
    if not ack.contributions:
        missing.append("an acknowledgement of the stakeholders' contributions")
    return missing


def reason(trigger: str, given: Reason) -> list[str]:
    return [] if given.reason else [f"a reason to {trigger}"]
