"""Owners followed up: the action plan's owners told their step, and every owner reminded before a due date.

* On acknowledgement, each action step whose owner has an address (``ActionStep.email``) is mailed
  their step and its date (``action_step_assigned``, key ``action_step_assigned:<n>``, n from 1), and,
  for a step with a due date, a reminder is owed (``TrainingRequest.step_reminders``).
* ``remind`` (the pipeline's follow-ups, ``Service.remind_owners``): the companion pieces due within
  ``before`` (``states.companions.remind``) and the action steps due within it get one reminder each
  (``action_step_reminder:<n>``: one outbox key, so a retried pass sends it once).

A reminder owed is ``"reminder":"pending"`` in the stored document (``companions.REMINDER_PENDING``):
the store finds the requests to look at by it, without loading the others.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from states import companions, lifecycle, wording
from states import events as ev
from states.lifecycle import Command
from states.models import ActionStep, Model
from states.notifications import Notification, Recipient

if TYPE_CHECKING:
    from states.request import TrainingRequest

ACTION_STEP_ASSIGNED: Final = "action_step_assigned"
ACTION_STEP_REMINDER: Final = "action_step_reminder"


class StepReminder(Model):
    """The reminder owed to the owner of action step ``step`` (1-based) of the acknowledgement."""

    step: int
    due: date
    reminder: Literal["pending", "sent"] = "pending"


def _owner(step: ActionStep) -> Recipient:
    assert step.email is not None
    return Recipient(name=step.owner or step.email, email=step.email)


def _context(request: TrainingRequest, number: int, step: ActionStep) -> dict[str, Any]:
    return {"step": {"number": number, "step": step.step, "owner": step.owner,
                     "due": step.due.isoformat() if step.due else None},
            "due": step.due.isoformat() if step.due else None,
            "others": [{"step": s.step, "owner": s.owner} for i, s in enumerate(_steps(request), 1) if i != number]}


def _steps(request: TrainingRequest) -> list[ActionStep]:
    return list(request.acknowledgement.action_plan) if request.acknowledgement is not None else []


def steps_assigned(request: TrainingRequest) -> list[Notification]:
    """On acknowledgement: each step owner with an address told their step; reminders owed for dated ones."""
    out = []
    for number, step in enumerate(_steps(request), 1):
        if step.email is None:
            continue
        out.append(request.notification(f"{ACTION_STEP_ASSIGNED}:{number}", ACTION_STEP_ASSIGNED, [_owner(step)],
                                        f"Your next step: {step.step}", _context(request, number, step)))
        if step.due is not None:
            request.step_reminders = [*request.step_reminders, StepReminder(step=number, due=step.due)]
    return out


def remind(request: TrainingRequest, at: datetime, before: timedelta) -> int:
    """Every reminder due by ``at`` (``before`` ahead of the date), once; how many were queued."""
    sent = companions.remind(request, at, before)
    if not lifecycle.allows(Command.REMIND_OWNER, request.state):
        return sent
    steps = _steps(request)
    kept = []
    for owed in request.step_reminders:
        if owed.reminder != "pending" or at.date() < owed.due - before or owed.step > len(steps):
            kept.append(owed)
            continue
        step = steps[owed.step - 1]
        overdue = owed.due < at.date()
        request._outgoing.append(request.notification(
            f"{ACTION_STEP_REMINDER}:{owed.step}", ACTION_STEP_REMINDER, [_owner(step)],
            f"{'Overdue' if overdue else 'Reminder'}: {step.step}, due {wording.day(owed.due)}",
            {**_context(request, owed.step, step), "overdue": overdue}))
        request._events.append(ev.ActionStepReminded(step=owed.step, due=owed.due.isoformat()))
        kept.append(owed.model_copy(update={"reminder": "sent"}))
        sent += 1
    request.step_reminders = kept
    if sent:
        request.updated_at = at
    return sent
