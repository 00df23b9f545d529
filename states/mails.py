"""Telling people: the notifications a decline and a redirect send, queued by the aggregate in the
transaction of the transition (like :mod:`states.report` for the results report).

* ``request_declined`` - to the requester: the reason, and what L&D suggests instead (the
  diagnosis's recommendations, when the request was diagnosed).
* ``redirect_assigned`` - to the redirect's owner: what they own (the kind and the rationale), the
  result it serves and by when (the business goal's target date).

The keys are the template names, so the outbox holds one of each per request
(``<id>:request_declined``, ``<id>:redirect_assigned``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from states import wording
from states.notifications import Notification, recipient

if TYPE_CHECKING:
    from states.models import Redirect
    from states.request import TrainingRequest

REQUEST_DECLINED: Final = "request_declined"
REDIRECT_ASSIGNED: Final = "redirect_assigned"


def request_declined(request: TrainingRequest, reason: str) -> Notification:
    """The kind mail to the requester of a declined request (key ``request_declined``)."""
    suggestions = [{"path": r.path, "label": wording.path_label(r.path), "reasons": list(r.reasons)}
                   for r in request.recommendations]
    return request.notification(REQUEST_DECLINED, REQUEST_DECLINED, [recipient(request.intake.requester)],
                                f"About your request: {request.intake.title}",
                                {"reason": reason, "suggestions": suggestions,
                                 "requested_solution": request.intake.requested_solution})


def redirect_assigned(request: TrainingRequest, redirect: Redirect) -> Notification | None:
    """The mail telling the redirect's owner what they own and by when (None without an owner)."""
    if redirect.owner is None:
        return None
    kind = redirect.kind.value if redirect.kind is not None else ""
    goal = request.intake.business_goal
    return request.notification(
        REDIRECT_ASSIGNED, REDIRECT_ASSIGNED, [recipient(redirect.owner)],
        f"Over to you: {wording.path_label(kind).lower()} for {request.intake.title}",
        {"kind": kind, "kind_label": wording.path_label(kind), "rationale": redirect.rationale,
         "owner": {"name": redirect.owner.name, "email": redirect.owner.email},
         "business_goal": goal.model_dump(mode="json"),
         "due": goal.target_date.isoformat() if goal.target_date else None})
