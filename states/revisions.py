"""Changing what was decided: re-diagnosing a request and revising its measurement plan.

* **Re-diagnose** (a diagnosed request, before design or redirect): the new diagnosis and its
  recommendations replace the old ones, with a reason; the stakeholders get the summary again.
* **Plan versions**: ``TrainingRequest.plan`` is the plan in force (version ``plan_version``) and
  ``plan_draft`` a revision waiting for the sponsor. Before the first approval a draft simply
  replaces ``plan`` (version 1, as it always did); once a version is approved, a new draft waits
  beside it and everything (design, redirect, delivery, checkpoints, results) keeps working on the
  approved version until the sponsor approves the revision. Approving it on a delivered request
  reschedules the checkpoints from the new offsets: the new ones are scheduled, the open ones
  whose item/offset is gone are closed as superseded, recorded results stay.

The aggregate (:mod:`states.request`) checks the lifecycle table and calls these functions; each
changes the request and returns the events and notifications to record.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from states import events as ev
from states import guards, lifecycle, plan_review
from states.checkpoints import CheckpointStatus, schedule
from states.diagnosis import recommend
from states.lifecycle import Command
from states.models import Diagnosis, MeasurementPlan, PlanApproval, Reason
from states.notifications import Notification, recipient, recipients

if TYPE_CHECKING:
    from states.request import TrainingRequest

Changes = tuple[list[ev.DomainEvent], list[Notification]]


class PlanRevision(BaseModel):
    """A new version of an approved plan, waiting for the sponsor's approval."""

    model_config = ConfigDict(extra="forbid")

    version: int
    plan: MeasurementPlan
    drafted_at: datetime


# --- re-diagnose ------------------------------------------------------------------------------------

def rediagnose(request: TrainingRequest, diagnosis: Diagnosis, reason: Reason, at: datetime) -> Changes:
    """Replace the diagnosis and its recommendations (every missing item at once, the state's first)."""
    missing = (lifecycle.refusal(Command.REDIAGNOSE, request.state) + guards.diagnose(request, diagnosis)
               + guards.reason("re-diagnose", reason))
    lifecycle.refuse(Command.REDIAGNOSE, request.state, missing)
    recommendations = recommend(diagnosis)
    recs = [r.model_dump() for r in recommendations]
    goal = request.intake.business_goal.merged(diagnosis.business_goal)
    request.intake = request.intake.model_copy(update={"business_goal": goal})
    request.diagnosis = diagnosis
    request.recommendations = recommendations
    request.updated_at = at
    event = ev.Rediagnosed(diagnosis=diagnosis.model_dump(mode="json"), recommendations=tuple(recs),
                           reason=reason.reason)
    summary = request.notification(
        f"diagnosis_summary:v{request.version + 1}", "diagnosis_summary",
        recipients([request.intake.sponsor, request.intake.requester, *request.intake.stakeholders]),
        f"Revised diagnosis: {request.intake.title}",
        {"recommendations": recs, "observable_actions": list(diagnosis.observable_actions),
         "business_goal": goal.model_dump(mode="json"), "summary": diagnosis.summary, "reason": reason.reason})
    return [event], [summary]


# --- plan versions ----------------------------------------------------------------------------------

def approved(request: TrainingRequest) -> bool:
    return request.plan is not None and request.plan_approved_by is not None


def draft(request: TrainingRequest, plan: MeasurementPlan, at: datetime) -> Changes:
    """Draft the plan (before the first approval: it replaces the draft, version 1) or a new version
    of the approved plan (it waits in ``plan_draft``; a second revision before approval replaces it)."""
    lifecycle.require(Command.DRAFT_PLAN, request.state)
    request.updated_at = at
    subject = f"Please approve the measurement plan: {request.intake.title}"
    request.plan_review = plan_review.review(plan)
    context: dict[str, object] = {"plan": plan.model_dump(mode="json"), "warnings": list(request.plan_review)}
    event: ev.DomainEvent
    if not approved(request):
        request.plan, request.plan_version = plan, max(request.plan_version, 1)
        request.plan_approved_by = request.plan_approved_at = None
        event = ev.PlanDrafted(plan=plan.model_dump(mode="json"))
    else:
        version = request.plan_version + 1
        request.plan_draft = PlanRevision(version=version, plan=plan, drafted_at=at)
        event = ev.PlanRevised(version=version, plan=plan.model_dump(mode="json"))
        subject = f"Please approve version {version} of the measurement plan: {request.intake.title}"
        context["plan_version"] = version
    note = request.notification(f"plan_approval_request:v{request.version + 1}", "plan_approval_request",
                                [recipient(request.intake.sponsor)], subject, context)
    return [event], [note]


def awaiting_approval(request: TrainingRequest) -> bool:
    """Is a plan (the first draft, or a revision) waiting for the sponsor's approval?"""
    return request.plan_draft is not None or (request.plan is not None and request.plan_approved_by is None)


def ask_again(request: TrainingRequest, at: datetime, why: str) -> Changes:
    """Send the sponsor the approval request of the plan waiting for them again (e.g. after a reply
    that could not count as their approval), with a note in the history saying why."""
    lifecycle.require(Command.APPROVE_PLAN, request.state)
    if not awaiting_approval(request):
        return [], []
    request.updated_at = at
    pending = request.plan_draft
    plan = pending.plan if pending is not None else request.plan
    assert plan is not None
    context: dict[str, object] = {"plan": plan.model_dump(mode="json"), "asked_again": True,
                                  "warnings": plan_review.review(plan)}
    subject = f"Please approve the measurement plan: {request.intake.title}"
    if pending is not None:
        context["plan_version"] = pending.version
        subject = f"Please approve version {pending.version} of the measurement plan: {request.intake.title}"
    note = request.notification(f"plan_approval_request:v{request.version + 1}", "plan_approval_request",
                                [recipient(request.intake.sponsor)], subject, context)
    text = f"{why.strip()} The approval request was sent to the sponsor again."
    return [ev.NoteAdded(text=text, source="mail")], [note]


def approve(request: TrainingRequest, approval: PlanApproval, at: datetime, actor: str | None = None,
            admin: bool = False) -> Changes:
    """The sponsor approves the drafted plan, or the revision waiting beside the approved one. ``actor``
    (who records it) must be the sponsor, or an admin (``admin``) giving ``approval.reason``."""
    pending = request.plan_draft
    if pending is None:
        missing = lifecycle.refusal(Command.APPROVE_PLAN, request.state) + guards.approve_plan(request, approval)
    else:
        missing = lifecycle.refusal(Command.APPROVE_PLAN, request.state) + guards.sponsor_approval(request, approval)
    missing += guards.on_behalf(approval, actor, admin)
    lifecycle.refuse(Command.APPROVE_PLAN, request.state, missing)
    behalf = actor is not None and actor.strip().lower() != approval.approver.lower()
    recorded_by, reason = (actor.strip(), approval.reason.strip()) if behalf and actor else ("", "")
    request.plan_approved_by, request.plan_approved_at, request.updated_at = approval.approver, at, at
    request.plan_approval_recorded_by, request.plan_approval_reason = recorded_by or None, reason or None
    if pending is None:
        return [ev.PlanApproved(approver=approval.approver, comment=approval.comment, recorded_by=recorded_by,
                                reason=reason)], []
    request.plan, request.plan_version, request.plan_draft = pending.plan, pending.version, None
    events: list[ev.DomainEvent] = [ev.PlanRevisionApproved(version=pending.version, approver=approval.approver,
                                                            comment=approval.comment, recorded_by=recorded_by,
                                                            reason=reason)]
    if request.state == lifecycle.State.DELIVERED:
        events += reschedule(request, at)
    return events, []


def reschedule(request: TrainingRequest, at: datetime) -> list[ev.DomainEvent]:
    """After a new plan version on a delivered request: schedule its new checkpoints from the delivery's
    end date and close the open ones whose item/offset the plan no longer has as superseded."""
    assert request.plan is not None and request.delivery is not None and request.delivery.end_date is not None
    assert request.id is not None
    wanted = {(c.item_id, c.offset): c for c in schedule(request.id, request.plan, request.delivery.end_date)}
    events: list[ev.DomainEvent] = []
    for c in request.checkpoints:
        if (c.item_id, c.offset) not in wanted and not c.closed:
            c.status, c.closed_at = CheckpointStatus.SUPERSEDED, at
            c.note = f"superseded by plan version {request.plan_version}"
            events.append(ev.CheckpointSuperseded(checkpoint=c.key, version=request.plan_version))
    kept = {(c.item_id, c.offset) for c in request.checkpoints if c.status != CheckpointStatus.SUPERSEDED}
    taken = {c.key for c in request.checkpoints}
    for pair, c in wanted.items():
        if pair in kept:
            continue
        if c.key in taken:  # the item/offset came back after being superseded: a fresh key
            c.key = f"{c.key}:v{request.plan_version}"
        request.checkpoints.append(c)
        events.append(ev.CheckpointScheduled(checkpoint=c.key, item=c.item_id, offset=c.offset,
                                             due_at=c.due_at.isoformat()))
    return events
