"""The stakeholder report: recap, action plan, contributions and results, as text and HTML.

It is the same document ``acknowledge`` sends to the stakeholders through the
outbox (template ``results_report`` of ``connectors/email/templates``, rendered
by the e-mail connector's ``render_bodies``), so what ``ldflow report ID``
shows is what they receive. Before acknowledgement the three touchpoints show
as still to be completed; the results are there as soon as the request is
measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from states.errors import TransitionRefused
from states.lifecycle import State
from states.notifications import Notification, Recipient
from states.request import TrainingRequest

REPORTABLE = (State.MEASURED, State.ACKNOWLEDGED)


@dataclass(frozen=True)
class Report:
    request_id: int
    subject: str
    text: str
    html: str


def _recipients(request: TrainingRequest) -> tuple[Recipient, ...]:
    people = [request.intake.sponsor, request.intake.requester, *request.intake.stakeholders]
    seen: dict[str, Recipient] = {}
    for p in people:
        seen.setdefault(p.email, Recipient(name=p.name, email=p.email, role=p.role))
    return tuple(seen.values())


def report_context(request: TrainingRequest) -> dict[str, Any]:
    """The template context: the keys the ``results_report`` notification of ``acknowledge`` carries."""
    intake = request.intake
    return {
        "request": {"id": request.id, "title": intake.title, "state": request.state.value},
        "requester": {"name": intake.requester.name, "email": intake.requester.email},
        "sponsor": {"name": intake.sponsor.name, "email": intake.sponsor.email},
        "business_goal": intake.business_goal.model_dump(mode="json"),
        "acknowledgement": request.acknowledgement.model_dump(mode="json") if request.acknowledgement else {},
        "results": [r.model_dump(mode="json") for r in request.results],
        "roi": request.roi.model_dump(mode="json") if request.roi else None,
    }


def build(request: TrainingRequest, templates_dir: str | None = None) -> Report:
    """Render the report of a measured (or acknowledged) request.

    Raises ``TransitionRefused`` (exit 3) before measurement: there are no results to report yet.
    """
    if request.state not in REPORTABLE:
        open_items = [c.key for c in request.checkpoints if not c.closed]
        missing = ["results: the request is reported on once it is measured (now "
                   f"{request.state.value}" + (f"; open checkpoints: {', '.join(open_items)}" if open_items else "")
                   + ")"]
        raise TransitionRefused("report on", request.state.value, missing)
    from connectors.email.render import render_bodies

    assert request.id is not None
    subject = f"Results and thanks: {request.intake.title}"
    notification = Notification(key=f"{request.id}:results_report", request_id=request.id,
                                template="results_report", to=_recipients(request), subject=subject,
                                context=report_context(request))
    text, html = render_bodies(notification, templates_dir=templates_dir)
    return Report(request.id, subject, text, html)


def outcome_counts(request: TrainingRequest) -> dict[str, int]:
    """How many plan items met, partly met, did not meet their target (or have no data)."""
    counts: dict[str, int] = {}
    for r in request.results:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    return counts
