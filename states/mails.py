"""Telling people: the notifications a decline and a redirect send, queued by the aggregate in the
transaction of the transition (like :mod:`states.report` for the results report).

* ``request_declined`` - to the requester: the reason, and what L&D suggests instead (the
  diagnosis's recommendations, when the request was diagnosed).
* ``redirect_assigned`` - to the redirect's owner: what they own (the kind and the rationale), the
  result it serves and by when (the business goal's target date).

* ``request_delivered`` - to the requester (and the sponsor): what was delivered, the companion
  pieces still open, and when each measurement checkpoint comes, in words.

The keys are the template names, so the outbox holds one of each per request
(``<id>:request_declined``, ``<id>:redirect_assigned``, ``<id>:request_delivered``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from states import wording
from states.notifications import Notification, recipient, recipients

if TYPE_CHECKING:
    from states.models import Redirect
    from states.request import TrainingRequest

REQUEST_DECLINED: Final = "request_declined"
REDIRECT_ASSIGNED: Final = "redirect_assigned"
REQUEST_DELIVERED: Final = "request_delivered"


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


def request_delivered(request: TrainingRequest) -> Notification:
    """The requester (and the sponsor) told that the request is delivered and what comes next."""
    delivery = request.delivery
    main = "design" if request.brief is not None else (
        request.redirect_record.kind.value if request.redirect_record and request.redirect_record.kind else "")
    metrics = {i.id: i.metric for i in request.plan.items} if request.plan is not None else {}
    return request.notification(
        REQUEST_DELIVERED, REQUEST_DELIVERED, recipients([request.intake.requester, request.intake.sponsor]),
        f"Delivered: {request.intake.title}",
        {"delivery": delivery.model_dump(mode="json") if delivery else {},
         "main_path": wording.path_label(main) if main else "",
         "checkpoints": [{"metric": metrics.get(c.item_id, c.item_id), "offset": c.offset,
                          "due": c.due_at.date().isoformat()}
                         for c in sorted(request.checkpoints, key=lambda c: c.due_at) if not c.closed],
         "open_pieces": [{"what": c.what, "owner": c.owner.name, "due": c.due.isoformat()}
                         for c in request.companions if c.status.value == "open"]})
