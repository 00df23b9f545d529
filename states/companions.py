"""A solution mix: the main path (design or redirect) plus companion pieces next to it.

A companion piece is a smaller fix that goes with the main path — "a decision card AND a 30-minute
practice", "fix the bonus scheme AND clarify expectations" — each with a ``kind`` (any redirect kind,
or ``design`` for a small designed piece), what it is, an owner (a name and an address), a due date
and a status: ``open``, then ``done`` (with an optional note) or ``dropped`` (with a reason).

* ``add`` (diagnosed up to measured): the piece is stored open and its owner is told what they own
  and by when (``companion_assigned``, key ``companion_assigned:<piece>``).
* ``done`` / ``drop`` (also once acknowledged: a piece may finish after the report): the piece closes.
* ``remind`` (the pipeline's follow-ups): an open piece due within ``before`` gets one reminder
  (``companion_reminder``, key ``companion_reminder:<piece>``, so a retried pass sends it once); its
  ``reminder`` goes from ``pending`` to ``sent``. The store finds the requests to look at by that
  marker (``RequestStore.requests_owing_reminders``).
* ``close_all`` (a cancellation): every open piece is dropped with the cancellation's reason.

Companion pieces never hold up the main path: a request is delivered when its design or redirect is;
the pieces still open are listed in the results report.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import Field

from states import events as ev
from states import lifecycle, wording
from states.errors import FieldError, InvalidInput, NotFound
from states.kinds import CompanionKind
from states.lifecycle import Command
from states.models import Line, Model, Person, Slug, Text
from states.notifications import Notification, recipient

if TYPE_CHECKING:
    from states.request import TrainingRequest

COMPANION_ASSIGNED: Final = "companion_assigned"
COMPANION_REMINDER: Final = "companion_reminder"
#: What the store looks for in a document to find requests owing a reminder (compact JSON).
REMINDER_PENDING: Final = '"reminder":"pending"'


class CompanionStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    DROPPED = "dropped"


class CompanionPiece(Model):
    """A companion piece as it is given (``ldflow companion add -f``): the id is optional (``c1``, ``c2`` …)."""

    id: Slug = ""
    kind: CompanionKind
    what: Line = Field(min_length=1, description="the piece in a few words: 'a decision card for discounts'")
    owner: Person
    due: date
    note: Text = ""


class CompanionOutcome(Model):
    """What was done, when a piece is marked done (``ldflow companion done --note``; optional)."""

    note: Text = ""


class Companion(CompanionPiece):
    """A companion piece as stored: its status and how it closed, and whether its reminder went out."""

    status: CompanionStatus = CompanionStatus.OPEN
    reason: Text = ""  # why it was dropped
    outcome: Text = ""  # what was done, when it was marked done
    added_at: datetime | None = None
    closed_at: datetime | None = None
    reminder: Literal["pending", "sent", "none"] = "pending"


def _context(request: TrainingRequest, piece: Companion) -> dict[str, Any]:
    main = ("design" if request.brief is not None else
            (request.redirect_record.kind.value if request.redirect_record and request.redirect_record.kind else ""))
    return {"piece": {"id": piece.id, "kind": piece.kind.value, "kind_label": wording.piece_kind(piece.kind.value),
                      "what": piece.what, "due": piece.due.isoformat(), "note": piece.note},
            "kind_label": wording.piece_kind(piece.kind.value), "due": piece.due.isoformat(),
            "main_path": wording.path_label(main) if main else "",
            "business_goal": request.intake.business_goal.model_dump(mode="json"),
            "others": [{"what": c.what, "owner": c.owner.name, "due": c.due.isoformat()}
                       for c in request.companions if c.id != piece.id and c.status == CompanionStatus.OPEN]}


def assigned(request: TrainingRequest, piece: Companion) -> Notification:
    """The mail telling a piece's owner what they own and by when."""
    return request.notification(f"{COMPANION_ASSIGNED}:{piece.id}", COMPANION_ASSIGNED, [recipient(piece.owner)],
                                f"Over to you: {piece.what} for {request.intake.title}", _context(request, piece))


def _find(request: TrainingRequest, piece_id: str) -> Companion:
    for piece in request.companions:
        if piece.id == piece_id:
            return piece
    known = ", ".join(c.id for c in request.companions) or "none added yet"
    raise NotFound(f"companion piece {piece_id!r} of request {request.id} (known: {known})")


def _replace(request: TrainingRequest, piece: Companion) -> None:
    request.companions = [piece if c.id == piece.id else c for c in request.companions]


def add(request: TrainingRequest, given: CompanionPiece, at: datetime) -> Companion:
    """Add an open companion piece and tell its owner; refused outside diagnosed..measured, for a
    due date before today (``due``, invalid input) or an id already taken."""
    request._require(Command.ADD_COMPANION)
    if given.due < at.date():
        raise InvalidInput([FieldError("due", f"{given.due.isoformat()} is before today ({at.date().isoformat()})")])
    piece_id = given.id or f"c{len(request.companions) + 1}"
    taken = {c.id for c in request.companions}
    if piece_id in taken:
        lifecycle.refuse(Command.ADD_COMPANION, request.state,
                         [f"a new piece id ({piece_id!r} is taken: {', '.join(sorted(taken))})"])
    piece = Companion(**{**given.model_dump(), "id": piece_id}, added_at=at)
    request.companions = [*request.companions, piece]
    request.updated_at = at
    request._events.append(ev.CompanionAdded(piece=piece.model_dump(mode="json", include={
        "id", "kind", "what", "owner", "due", "note"})))
    request._outgoing.append(assigned(request, piece))
    return piece


def _close(request: TrainingRequest, command: Command, piece_id: str, at: datetime, missing: list[str]) -> Companion:
    request._require(command)
    piece = _find(request, piece_id)
    if piece.status != CompanionStatus.OPEN:
        missing = [f"an open piece ({piece.id} is already {piece.status.value})", *missing]
    lifecycle.refuse(command, request.state, missing)
    request.updated_at = at
    return piece


def done(request: TrainingRequest, piece_id: str, outcome: str, at: datetime) -> None:
    """Mark an open piece done (``outcome``: what was done, optional)."""
    piece = _close(request, Command.COMPLETE_COMPANION, piece_id, at, [])
    _replace(request, piece.model_copy(update={"status": CompanionStatus.DONE, "outcome": outcome.strip(),
                                               "closed_at": at, "reminder": "none"}))
    request._events.append(ev.CompanionDone(piece=piece.id, outcome=outcome.strip()))


def drop(request: TrainingRequest, piece_id: str, reason: str, at: datetime) -> None:
    """Drop an open piece, with a reason (refused without one)."""
    piece = _close(request, Command.DROP_COMPANION, piece_id, at,
                   [] if reason.strip() else ["a reason to drop the piece"])
    _replace(request, piece.model_copy(update={"status": CompanionStatus.DROPPED, "reason": reason.strip(),
                                               "closed_at": at, "reminder": "none"}))
    request._events.append(ev.CompanionDropped(piece=piece.id, reason=reason.strip()))


def close_all(request: TrainingRequest, reason: str, at: datetime) -> None:
    """Drop every open piece of a request being cancelled (``request cancelled: <reason>``)."""
    for piece in request.companions:
        if piece.status == CompanionStatus.OPEN:
            why = f"request cancelled: {reason}"
            _replace(request, piece.model_copy(update={"status": CompanionStatus.DROPPED, "reason": why,
                                                       "closed_at": at, "reminder": "none"}))
            request._events.append(ev.CompanionDropped(piece=piece.id, reason=why))


def remind(request: TrainingRequest, at: datetime, before: timedelta) -> int:
    """One reminder to the owner of each open piece due within ``before`` (or overdue) whose reminder is
    still pending; returns how many were queued. Does nothing where the table does not allow it."""
    if not lifecycle.allows(Command.REMIND_OWNER, request.state):
        return 0
    sent = 0
    for piece in request.companions:
        if piece.status != CompanionStatus.OPEN or piece.reminder != "pending" or at.date() < piece.due - before:
            continue
        _replace(request, piece.model_copy(update={"reminder": "sent"}))
        overdue = piece.due < at.date()
        context = {**_context(request, piece), "overdue": overdue,
                   "days_left": (piece.due - at.date()).days}
        subject = (f"{'Overdue' if overdue else 'Reminder'}: {piece.what}, due {wording.day(piece.due)}")
        request._outgoing.append(request.notification(f"{COMPANION_REMINDER}:{piece.id}", COMPANION_REMINDER,
                                                      [recipient(piece.owner)], subject, context))
        request._events.append(ev.CompanionReminded(piece=piece.id, due=piece.due.isoformat()))
        sent += 1
    if sent:
        request.updated_at = at
    return sent


def open_pieces(request: TrainingRequest) -> list[Companion]:
    return [c for c in request.companions if c.status == CompanionStatus.OPEN]


def summary(piece: Companion) -> dict[str, Any]:
    """A piece for the report, the export and the API: its words and its status."""
    return {"id": piece.id, "kind": piece.kind.value, "kind_label": wording.piece_kind(piece.kind.value),
            "what": piece.what, "owner": {"name": piece.owner.name, "email": piece.owner.email},
            "due": piece.due.isoformat(), "status": piece.status.value,
            "reason": piece.reason, "outcome": piece.outcome}


__all__ = ["Companion", "CompanionKind", "CompanionPiece", "CompanionStatus", "add", "close_all", "done", "drop",
           "open_pieces", "remind", "summary"]
