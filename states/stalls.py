"""No silent stalls: a survey closes at the end of its response window, as missed when unanswered.

``close_unanswered`` (called by the service for the pipeline's follow-ups, like
:mod:`states.amendments` a function over the aggregate) closes the checkpoint as ``missed`` with the
reason in the history (``CheckpointMissed``), and tells the item's owner and the sponsor
(``checkpoint_missed``). Once every checkpoint is closed the request can be measured, and the
results report lists the missed checkpoints (:mod:`states.report`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from states import events as ev
from states import lifecycle, surveys, wording
from states.checkpoints import CheckpointStatus
from states.lifecycle import Command
from states.notifications import recipient, recipients

if TYPE_CHECKING:
    from states.request import TrainingRequest

CHECKPOINT_MISSED: Final = "checkpoint_missed"  # the template


def close_unanswered(request: TrainingRequest, key: str, at: datetime, window: timedelta,
                     max_reminders: int) -> bool:
    """Close a survey at the end of its response window: one rule for every survey. The window ends at
    the item's ``survey.window`` after the due date (default 14 days), and never before ``window``
    after its last reminder (``max_reminders`` sent). A group survey then closes with what its answers
    give, or as missed when below the item's minimum n or response rate; without an answer, missed.
    Returns True when it was closed (either way)."""
    c = request.checkpoint(key)
    if not c.may_close_unanswered(at, window, max_reminders) or \
            not lifecycle.allows(Command.CLOSE_UNANSWERED, request.state):
        return False
    assert request.plan is not None
    item = next(i for i in request.plan.items if i.id == c.item_id)
    if at < surveys.window_end(c, item):
        return False
    last = c.last_reminder_at or c.sent_at
    assert last is not None
    short = surveys.close_at_window(request, c, item, at)
    if short is None:
        request.updated_at = at
        return True
    reason = (f"no answer after the survey of {c.due_at:%Y-%m-%d} and "
              f"{wording.plural(c.reminders_sent, 'reminder')} (the last on {last:%Y-%m-%d})"
              if short == "no answer" else f"{short} by the end of its response window")
    c.status, c.missed_reason, c.closed_at = CheckpointStatus.MISSED, reason, at
    request.updated_at = at
    people = recipients([item.owner]) if item.owner.email == request.intake.sponsor.email else \
        [recipient(item.owner), recipient(request.intake.sponsor)]
    open_left = sum(1 for x in request.checkpoints if not x.closed)
    notification = request.notification(
        f"{CHECKPOINT_MISSED}:{c.item_id}:{c.offset}", CHECKPOINT_MISSED, people,
        f"No answer: the {wording.offset_adjective(c.offset)} result on {item.metric}",
        {**c.context(item), "reason": reason, "open_checkpoints": open_left})
    request._record([ev.CheckpointMissed(checkpoint=c.key, reason=reason)], [notification])
    return True
