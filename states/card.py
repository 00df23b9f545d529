"""What a board card says about a request, derived from its document alone: who owns the work, the
next action on the main path and what that action's guard still misses (asked with nothing given).

The store keeps these facts on the request's row on every save (like the checkpoint timers), so the
board reads one row per card instead of the whole document and history (``flows/board.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from states import guards
from states.lifecycle import State
from states.models import Acknowledgement, Delivery, DesignBrief, Diagnosis, Redirect
from states.request import TrainingRequest


@dataclass(frozen=True)
class CardFacts:
    owners: tuple[str, ...]
    next_action: str
    missing: tuple[str, ...]


def owners(request: TrainingRequest) -> tuple[str, ...]:
    """Who owns the work: the redirect's owner and the owners of the plan's items, each once."""
    found: list[str] = []
    if request.redirect_record is not None and request.redirect_record.owner is not None:
        found.append(request.redirect_record.owner.email)
    if request.plan is not None:
        found += [item.owner.email for item in request.plan.items]
    return tuple(dict.fromkeys(e.lower() for e in found))


def next_step(request: TrainingRequest) -> tuple[str, list[str]]:
    """The next action on the main path and what its guard still misses today."""
    state = request.state
    if state == State.RECEIVED:
        return "diagnose", guards.diagnose(request, Diagnosis())
    if state == State.DIAGNOSED:
        if request.plan is None or request.plan_approved_by is None:
            unapproved = [m for m in guards.redirect(request, Redirect()) if m.startswith("an approved")]
            verb = "draft" if request.plan is None else "approve"
            return f"{verb} the measurement plan", unapproved
        wants_redirect = bool(request.recommendations) and all(r.path != "design" for r in request.recommendations)
        if wants_redirect:
            return "redirect", guards.redirect(request, Redirect())
        return "design", guards.design(request, DesignBrief())
    if state in (State.DESIGNED, State.REDIRECTED):
        return "deliver", guards.deliver(request, Delivery())
    if state == State.DELIVERED:
        return "measure", guards.measure(request)
    if state == State.MEASURED:
        return "acknowledge", guards.acknowledge(request, Acknowledgement())
    return "", []


def facts(request: TrainingRequest) -> CardFacts:
    action, missing = next_step(request)
    return CardFacts(owners=owners(request), next_action=action, missing=tuple(missing))
