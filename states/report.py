"""The results report: one builder for what ``acknowledge`` mails and what ``ldflow report`` shows.

The report data is the ``results_report`` notification: to the sponsor, the requester and the
stakeholders, with the results against baseline and target, the ROI, and the three touchpoints
of closing the loop (recap, action plan, contributions). Before acknowledgement the touchpoints
are empty; the results are there as soon as the request is measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from states import companions, lifecycle
from states.checkpoints import CheckpointStatus
from states.lifecycle import Command
from states.notifications import Notification, recipients

if TYPE_CHECKING:
    from states.request import TrainingRequest

RESULTS_REPORT: Final = "results_report"  # the template, and the notification's key suffix


def report_context(request: TrainingRequest) -> dict[str, Any]:
    """The report's own template context (the notification adds the request and its people)."""
    currency = request.plan.costs.currency if request.plan is not None and request.plan.costs else ""
    return {
        "acknowledgement": request.acknowledgement.model_dump(mode="json") if request.acknowledgement else {},
        "results": [{**r.model_dump(mode="json"), "currency": currency} for r in request.results],
        "roi": request.roi.model_dump(mode="json") if request.roi else None,
        # who approved the measurement plan, and an admin who recorded it on their behalf (with why)
        "plan_approval": {"approver": request.plan_approved_by or "",
                          "recorded_by": request.plan_approval_recorded_by or "",
                          "reason": request.plan_approval_reason or ""},
        "missed": missed_checkpoints(request),
        # for the PDF's page (the mails do not show them): the goal, the delivery, each item's level and sources
        "business_goal": _business_goal(request),
        "delivery": request.delivery.model_dump(mode="json") if request.delivery is not None else None,
        "plan_items": {i.id: {"framework": i.framework.value, "level": i.level,
                              "baseline_source": i.baseline.source if i.baseline else "",
                              "baseline_date": i.baseline.date.isoformat() if i.baseline else None,
                              "target_date": i.target.date.isoformat()}
                       for i in (request.plan.items if request.plan is not None else [])},
        # the solution mix's companion pieces (states/companions.py): the open ones are listed as such
        "companions": [companions.summary(c) for c in request.companions],
    }


def _business_goal(request: TrainingRequest) -> dict[str, Any] | None:
    """The business goal as diagnosed (else as asked for), or None when it names no metric."""
    goal = request.diagnosis.business_goal if request.diagnosis is not None else None
    goal = goal if goal is not None and goal.metric else request.intake.business_goal
    return goal.model_dump(mode="json") if goal.metric else None


def missed_checkpoints(request: TrainingRequest) -> list[dict[str, Any]]:
    """The checkpoints closed without a result, with their reasons (the report names each)."""
    metrics = {i.id: i.metric for i in request.plan.items} if request.plan is not None else {}
    return [{"key": c.key, "item_id": c.item_id, "metric": metrics.get(c.item_id, c.item_id), "offset": c.offset,
             "due_at": c.due_at.isoformat(), "reason": c.missed_reason}
            for c in request.checkpoints if c.status == CheckpointStatus.MISSED]


def results_report(request: TrainingRequest) -> Notification:
    """The ``results_report`` notification of ``request`` (key ``results_report``, not yet prefixed
    with the request id)."""
    intake = request.intake
    return request.notification(RESULTS_REPORT, RESULTS_REPORT,
                                recipients([intake.sponsor, intake.requester, *intake.stakeholders]),
                                f"Results and thanks: {intake.title}", report_context(request))


def require_reportable(request: TrainingRequest) -> None:
    """Refuse (``TransitionRefused``, exit 3) before measurement: there are no results to report yet."""
    if lifecycle.allows(Command.REPORT, request.state):
        return
    open_items = [c.key for c in request.checkpoints if not c.closed]
    now = f"now {request.state.value}" + (f"; open checkpoints: {', '.join(open_items)}" if open_items else "")
    lifecycle.refuse(Command.REPORT, request.state, [f"{lifecycle.RULES[Command.REPORT].refusal} ({now})"])
