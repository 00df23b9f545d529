"""No silent stalls: a checkpoint that cannot close by itself goes to a person (``needs_review``).

One rule for every way a checkpoint can stall. The pipeline closes a survey by itself only with
answers; otherwise it flags the checkpoint ``needs_review`` with the reason, and a person decides —
records the result (``ldflow record``, the owner's link) or closes it as missed with a reason
(``--missed``). Until then it is on the attention list (``ldflow attention``, the board, the daily
digest) and the request is not measured.

* **Too late to send** (``Request.send_checkpoint``): due more than ``LDFLOW_LATENESS_DAYS`` ago
  when the pipeline first sees it — no late survey goes out (``CheckpointFlagged``).
* **At the end of its response window** (:func:`flag_unanswered`, called by the service's
  follow-ups): the window ends at the item's ``survey.window`` after the due date (default 14 days),
  and never before ``LDFLOW_CLOSE_AFTER_DAYS`` after its last reminder. Then a survey with answers
  closes with what they give (``SurveyClosed``, :mod:`states.surveys`), or as missed when below the
  item's minimum n or response rate (``CheckpointMissed``, the owner and the sponsor told by
  ``checkpoint_missed``); with no answer at all it is flagged (``CheckpointStalled`` with the
  reason; the owner and the sponsor told once by ``checkpoint_needs_review``).

The results report lists the checkpoints closed as missed with their reasons (:mod:`states.report`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from states import events as ev
from states import lifecycle, surveys, wording
from states.checkpoints import CheckpointStatus
from states.lifecycle import Command
from states.notifications import Recipient, recipient, recipients

if TYPE_CHECKING:
    from states.checkpoints import Checkpoint
    from states.models import PlanItem
    from states.request import TrainingRequest

CHECKPOINT_NEEDS_REVIEW: Final = "checkpoint_needs_review"  # the templates
CHECKPOINT_MISSED: Final = "checkpoint_missed"


def flag_unanswered(request: TrainingRequest, key: str, at: datetime, window: timedelta,
                    max_reminders: int) -> bool:
    """At the end of the checkpoint's response window (``window`` after its last reminder at the
    earliest, ``max_reminders`` sent): closed with its answers, missed below the item's minimum, or
    flagged ``needs_review`` without any answer. Returns True when it was settled one of these ways
    (once: it is no longer ``sent``)."""
    c = request.checkpoint(key)
    if not c.may_close_unanswered(at, window, max_reminders) or \
            not lifecycle.allows(Command.FLAG_UNANSWERED, request.state):
        return False
    assert request.plan is not None
    item = next(i for i in request.plan.items if i.id == c.item_id)
    if at < surveys.window_end(c, item):
        return False
    last = c.last_reminder_at or c.sent_at
    assert last is not None
    short = surveys.close_at_window(request, c, item, at)
    request.updated_at = at
    if short is None:
        return True  # closed with what the answers give
    if short != "no answer":
        _missed(request, c, item, at, f"{short} by the end of its response window")
        return True
    reason = (f"no answer after the survey of {c.due_at:%Y-%m-%d} and "
              f"{wording.plural(c.reminders_sent, 'reminder')} (the last on {last:%Y-%m-%d})")
    c.status, c.review_reason = CheckpointStatus.NEEDS_REVIEW, reason
    notification = request.notification(
        f"{CHECKPOINT_NEEDS_REVIEW}:{c.item_id}:{c.offset}", CHECKPOINT_NEEDS_REVIEW, _told(request, item),
        f"No answer: the {wording.offset_adjective(c.offset)} result on {item.metric} needs a decision",
        {**c.context(item), "reason": reason})
    request._record([ev.CheckpointStalled(checkpoint=c.key, reason=reason)], [notification])
    return True


def _told(request: TrainingRequest, item: PlanItem) -> list[Recipient]:
    """The item's owner and the sponsor (once when they are the same person)."""
    if item.owner.email == request.intake.sponsor.email:
        return recipients([item.owner])
    return [recipient(item.owner), recipient(request.intake.sponsor)]


def _missed(request: TrainingRequest, c: Checkpoint, item: PlanItem, at: datetime, reason: str) -> None:
    c.status, c.missed_reason, c.closed_at = CheckpointStatus.MISSED, reason, at
    open_left = sum(1 for x in request.checkpoints if not x.closed)
    notification = request.notification(
        f"{CHECKPOINT_MISSED}:{c.item_id}:{c.offset}", CHECKPOINT_MISSED, _told(request, item),
        f"Too few answers: the {wording.offset_adjective(c.offset)} result on {item.metric}",
        {**c.context(item), "reason": reason, "open_checkpoints": open_left})
    request._record([ev.CheckpointMissed(checkpoint=c.key, reason=reason)], [notification])
