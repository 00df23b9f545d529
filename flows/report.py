"""The stakeholder report as text, HTML and PDF: the ``results_report`` notification, rendered.

The report data comes from the domain's one builder (:func:`states.report.results_report`), the same
notification ``acknowledge`` sends to the stakeholders through the outbox, rendered by the e-mail
connector's ``render_bodies`` with the same templates: what ``ldflow report ID`` shows is what they
receive, and ``build_pdf`` is the PDF their mail carries. Before acknowledgement the three
touchpoints show as still to be completed; the results are there as soon as the request is measured.
``Report.data`` is the same content as JSON (``ldflow report ID --json``): the subject, the
recipients, the request and its people, the results, the ROI, the three touchpoints, the outcome
counts, and whether it is final (acknowledged).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from states import results
from states.notifications import Notification
from states.report import require_reportable, results_report
from states.request import TrainingRequest


@dataclass(frozen=True)
class Report:
    request_id: int
    subject: str
    text: str
    html: str
    data: dict[str, Any] = field(default_factory=dict)  # what the templates render, as JSON (`report --json`)


def build(request: TrainingRequest, templates_dir: str | None = None) -> Report:
    """Render the report of a measured (or acknowledged) request.

    Raises ``TransitionRefused`` (exit 3) before measurement: there are no results to report yet.
    """
    from connectors.email.render import render_bodies

    notification = _notification(request)
    assert request.id is not None
    text, html = render_bodies(notification, templates_dir=templates_dir)
    data = {"subject": notification.subject, "to": [asdict(r) for r in notification.to], **notification.context,
            "outcomes": outcome_counts(request), "final": request.acknowledgement is not None}
    return Report(request.id, notification.subject, text, html, data)


def build_pdf(request: TrainingRequest, templates_dir: str | None = None) -> bytes:
    """The report of a measured (or acknowledged) request as a PDF: the page the acknowledgement mail
    attaches (``connectors.email.pdf``). Raises ``TransitionRefused`` (exit 3) before measurement."""
    from connectors.email.pdf import report_pdf

    return report_pdf(_notification(request), templates_dir=templates_dir)


def _notification(request: TrainingRequest) -> Notification:
    require_reportable(request)
    assert request.id is not None
    notification = results_report(request)
    return replace(notification, key=f"{request.id}:{notification.key}")


def outcome_counts(request: TrainingRequest) -> dict[str, int]:
    """How many plan items met, partly met, did not meet their target (or have no data)."""
    return results.outcome_counts(request.results)
