"""Amending an open request: correcting who and what it is about after intake, with a reason.

What can be amended: the intake's title, requester, sponsor, stakeholders, audience and business
goal; a plan item's owner or respondent; the redirect's owner; an open companion piece's owner.
Every amendment is one ``amended`` event whose payload holds the reason and, for each field that
changed, its value before and after. A new owner of the redirect or of a companion piece is told
what they own (the ``redirect_assigned`` / ``companion_assigned`` mail again, keyed by the version).

The sponsor approves the measurement plan. Amending the sponsor **before the plan is approved**
makes the new sponsor the approver: the old one is refused, and when a plan is drafted the new
sponsor is sent the approval request (a fresh ``plan_approval_request`` mail). **After approval**
the approval stands: the plan itself did not change. An item's owner or respondent says who
collects or answers, not what is measured, so it does not ask for a new approval either.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from pydantic import Field, model_validator

from states import companions, lifecycle, mails
from states import events as ev
from states.errors import FieldError, InvalidInput
from states.lifecycle import Command
from states.models import Audience, BusinessGoal, Line, Model, Person, Respondent, Text
from states.notifications import recipient

if TYPE_CHECKING:
    from states.request import TrainingRequest

INTAKE_FIELDS: Final = ("title", "requester", "sponsor", "stakeholders", "audience", "business_goal")


class ItemChange(Model):
    """A plan item's people: who owns (collects) its result, who answers its survey."""

    owner: Person | None = None
    respondent: Respondent | None = None

    @model_validator(mode="after")
    def _something(self) -> ItemChange:
        if self.owner is None and self.respondent is None:
            raise ValueError("give the item's new owner and/or respondent")
        return self


class CompanionChange(Model):
    """A companion piece's new owner (only an open piece's: a done or dropped one is history)."""

    owner: Person


class Amendment(Model):
    """What to correct (every field optional, at least one given) and why (``reason``, required)."""

    reason: Text = ""
    title: Line | None = Field(default=None, min_length=3)
    requester: Person | None = None
    sponsor: Person | None = None
    stakeholders: list[Person] | None = Field(default=None, description="replaces the list")
    audience: Audience | None = Field(default=None, description="the fields given replace the request's")
    business_goal: BusinessGoal | None = Field(default=None, description="the fields given replace the request's")
    items: dict[str, ItemChange] = Field(default_factory=dict, description="plan item id -> owner/respondent")
    redirect_owner: Person | None = None
    companions: dict[str, CompanionChange] = Field(default_factory=dict,
                                                   description="companion piece id -> its new owner")

    @model_validator(mode="after")
    def _a_change(self) -> Amendment:
        given = [name for name in (*INTAKE_FIELDS, "redirect_owner") if getattr(self, name) is not None]
        if not given and not self.items and not self.companions:
            raise ValueError("nothing to amend: give at least one of " + ", ".join(
                (*INTAKE_FIELDS, "items", "redirect_owner", "companions")))
        return self


def _json(value: Any) -> Any:
    if isinstance(value, Model):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value.value if isinstance(value, Respondent) else value


def _merged(current: Audience | BusinessGoal, given: Audience | BusinessGoal) -> Any:
    """``current`` with the fields ``given`` sets (explicitly, even to null) replacing its own."""
    return current.model_copy(update={name: getattr(given, name) for name in given.model_fields_set})


def _intake_changes(request: TrainingRequest, amendment: Amendment) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the intake's new values, field → {before, after}) for every intake field that changes."""
    intake, update, changes = request.intake, {}, {}
    for name in INTAKE_FIELDS:
        given = getattr(amendment, name)
        if given is None:
            continue
        before = getattr(intake, name)
        after = _merged(before, given) if name in ("audience", "business_goal") else given
        if after != before:
            update[name] = after
            changes[name] = {"before": _json(before), "after": _json(after)}
    return update, changes


def _item_changes(request: TrainingRequest, amendment: Amendment) -> tuple[list[Any], dict[str, Any]]:
    """(the plan's new items, field → {before, after}); an unknown item id is invalid input naming it."""
    if not amendment.items:
        return [], {}
    if request.plan is None:
        raise InvalidInput([FieldError("items", "the request has no measurement plan yet")])
    known = {item.id: item for item in request.plan.items}
    unknown = [FieldError(f"items.{i}", f"no such plan item (known: {', '.join(known)})")
               for i in amendment.items if i not in known]
    if unknown:
        raise InvalidInput(unknown)
    items, changes = [], {}
    for item in request.plan.items:
        change = amendment.items.get(item.id)
        given = {} if change is None else {k: getattr(change, k) for k in ("owner", "respondent")}
        update = {k: v for k, v in given.items() if v is not None and v != getattr(item, k)}
        for k, after in update.items():
            changes[f"items.{item.id}.{k}"] = {"before": _json(getattr(item, k)), "after": _json(after)}
        items.append(item.model_copy(update=update) if update else item)
    return items, changes


def _redirect_change(request: TrainingRequest, amendment: Amendment) -> dict[str, Any]:
    owner = amendment.redirect_owner
    if owner is None:
        return {}
    if request.redirect_record is None:
        raise InvalidInput([FieldError("redirect_owner", "the request has not been redirected")])
    before = request.redirect_record.owner
    return {} if owner == before else {"redirect_owner": {"before": _json(before), "after": _json(owner)}}


def _companion_changes(request: TrainingRequest, amendment: Amendment) -> tuple[list[Any], dict[str, Any]]:
    """(the new companion pieces, field → {before, after}); an unknown or closed piece is invalid input
    naming it."""
    if not amendment.companions:
        return [], {}
    known = {piece.id: piece for piece in request.companions}
    errors = []
    for piece_id in amendment.companions:
        piece = known.get(piece_id)
        if piece is None:
            errors.append(FieldError(f"companions.{piece_id}", "no such companion piece (known: "
                                     f"{', '.join(known) or 'none added yet'})"))
        elif piece.status != companions.CompanionStatus.OPEN:
            errors.append(FieldError(f"companions.{piece_id}.owner", f"the piece is {piece.status.value}: only an "
                                     "open piece's owner can be amended"))
    if errors:
        raise InvalidInput(errors)
    pieces, changes = [], {}
    for piece in request.companions:
        change = amendment.companions.get(piece.id)
        if change is not None and change.owner != piece.owner:
            changes[f"companions.{piece.id}.owner"] = {"before": _json(piece.owner), "after": _json(change.owner)}
            piece = piece.model_copy(update={"owner": change.owner})
        pieces.append(piece)
    return pieces, changes


def amend(request: TrainingRequest, amendment: Amendment, at: datetime) -> None:
    """Apply ``amendment`` to the open ``request``: one ``amended`` event with the before/after of
    every field that changed, and the approval request to a new sponsor of an unapproved plan."""
    request._require(Command.AMEND)
    intake_update, changes = _intake_changes(request, amendment)
    items, item_changes = _item_changes(request, amendment)
    changes.update(item_changes)
    changes.update(_redirect_change(request, amendment))
    pieces, piece_changes = _companion_changes(request, amendment)
    changes.update(piece_changes)
    missing = [] if amendment.reason.strip() else ["a reason to amend"]
    if not changes:
        missing.append("a change (every value given is already the request's)")
    lifecycle.refuse(Command.AMEND, request.state, missing)

    sponsor_before = request.intake.sponsor.email
    request.intake = request.intake.model_copy(update=intake_update)
    if item_changes and request.plan is not None:
        request.plan = request.plan.model_copy(update={"items": items})
    if "redirect_owner" in changes and request.redirect_record is not None:
        request.redirect_record = request.redirect_record.model_copy(update={"owner": amendment.redirect_owner})
    if piece_changes:
        request.companions = pieces
    request.updated_at = at
    request._events.append(ev.Amended(reason=amendment.reason.strip(), changes=changes))
    if "redirect_owner" in changes:  # the new owner is told what they own (a mail of its own)
        told = mails.redirect_assigned(request, request.redirect_record) if request.redirect_record else None
        if told is not None:
            request._outgoing.append(replace(told, key=f"{told.key}:v{request.version + 1}"))
    for piece in request.companions:  # each new owner of a piece is told what they own and by when
        if f"companions.{piece.id}.owner" in changes:
            told = companions.assigned(request, piece)
            request._outgoing.append(replace(told, key=f"{told.key}:v{request.version + 1}"))
    new_approver = request.intake.sponsor.email != sponsor_before
    if new_approver and request.plan is not None and request.plan_approved_by is None:
        request._notify(f"plan_approval_request:v{request.version + 1}", "plan_approval_request",
                        [recipient(request.intake.sponsor)],
                        f"Please approve the measurement plan: {request.intake.title}",
                        {"plan": request.plan.model_dump(mode="json")})
