"""No silent stalls: a checkpoint that cannot close by itself goes to a person (``needs_review``).

One rule for both ways a checkpoint stalls: the pipeline never closes a checkpoint as missed on its
own; it flags it ``needs_review`` with the reason, and a person decides — records the result
(``ldflow record``, the owner's link) or closes it as missed with a reason (``--missed``). Until
then it is on the attention list (``ldflow attention``, the board, the daily digest) and the
request is not measured.

* **Too late to send** (``Request.send_checkpoint``): due more than ``LDFLOW_LATENESS_DAYS`` ago
  when the pipeline first sees it — no late survey goes out (``CheckpointFlagged``).
* **Unanswered** (:func:`flag_unanswered`, called by the service's follow-ups): sent, every
  reminder sent, and still no result ``LDFLOW_CLOSE_AFTER_DAYS`` after the last one
  (``CheckpointStalled`` with the reason); the item's owner and the sponsor are told once
  (``checkpoint_needs_review``).

The results report lists the checkpoints closed as missed with their reasons (:mod:`states.report`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from states import events as ev
from states import lifecycle, wording
from states.checkpoints import CheckpointStatus
from states.lifecycle import Command
from states.notifications import recipient, recipients

if TYPE_CHECKING:
    from states.request import TrainingRequest

CHECKPOINT_NEEDS_REVIEW: Final = "checkpoint_needs_review"  # the template


def flag_unanswered(request: TrainingRequest, key: str, at: datetime, window: timedelta,
                    max_reminders: int) -> bool:
    """Flag the checkpoint ``needs_review`` when it is still unanswered ``window`` after its last
    reminder (``max_reminders`` sent); returns True when it was flagged (once: a flagged checkpoint
    is no longer ``sent``)."""
    c = request.checkpoint(key)
    if not c.may_close_unanswered(at, window, max_reminders) or \
            not lifecycle.allows(Command.FLAG_UNANSWERED, request.state):
        return False
    assert request.plan is not None
    item = next(i for i in request.plan.items if i.id == c.item_id)
    last = c.last_reminder_at or c.sent_at
    assert last is not None
    reason = (f"no answer after the survey of {c.due_at:%Y-%m-%d} and "
              f"{wording.plural(c.reminders_sent, 'reminder')} (the last on {last:%Y-%m-%d})")
    c.status, c.review_reason = CheckpointStatus.NEEDS_REVIEW, reason
    request.updated_at = at
    people = recipients([item.owner]) if item.owner.email == request.intake.sponsor.email else \
        [recipient(item.owner), recipient(request.intake.sponsor)]
    notification = request.notification(
        f"{CHECKPOINT_NEEDS_REVIEW}:{c.item_id}:{c.offset}", CHECKPOINT_NEEDS_REVIEW, people,
        f"No answer: the {wording.offset_adjective(c.offset)} result on {item.metric} needs a decision",
        {**c.context(item), "reason": reason})
    request._record([ev.CheckpointStalled(checkpoint=c.key, reason=reason)], [notification])
    return True
