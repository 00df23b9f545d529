"""Measurement follow-ups: the checkpoints a delivery schedules and the rules that drive them.

A checkpoint is due ``offset`` after the delivery's end date (at ``CHECKPOINT_TIME``). The
pipeline sends its survey once it is due (or flags it for review when it is far too late),
reminds unanswered ones, and a person records its result or closes it as missed. The
aggregate (:mod:`states.request`) applies these rules; the store derives its timer rows from
the request's checkpoints on every save.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from states import wording
from states.durations import parse_duration
from states.groups import SurveyAnswer, Tally
from states.models import MeasurementPlan, PlanItem
from states.notifications import CalendarItem, Recipient

# Follow-ups go out at this UTC time of day on the due date.
CHECKPOINT_TIME: Final = time(9, 0, tzinfo=UTC)
# How long the owner's to-do for collecting a result stays open.
COLLECT_WITHIN: Final = timedelta(days=3)


class CheckpointStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENT = "sent"
    NEEDS_REVIEW = "needs_review"
    CLOSED = "closed"
    MISSED = "missed"
    SUPERSEDED = "superseded"  # its item/offset left the plan in a new plan version (states.revisions)


CLOSED_STATUSES: Final = frozenset({CheckpointStatus.CLOSED, CheckpointStatus.MISSED, CheckpointStatus.SUPERSEDED})


class Checkpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    item_id: str
    offset: str
    due_at: datetime
    status: CheckpointStatus = CheckpointStatus.SCHEDULED
    sent_at: datetime | None = None
    reminders_sent: int = 0
    last_reminder_at: datetime | None = None
    closed_at: datetime | None = None
    value: float | None = None
    note: str = ""
    missed_reason: str = ""
    review_reason: str = ""  # why it needs a person's decision (needs_review: too late, or unanswered)
    comparison_value: float | None = None  # the comparison group's value (isolation: control_group)
    early_reason: str = ""  # why the result was recorded before the checkpoint was due
    # a survey to a respondent group (states.surveys): who was asked, their answers, the aggregate at close
    asked: list[str] = Field(default_factory=list)
    answers: list[SurveyAnswer] = Field(default_factory=list)
    tally: Tally | None = None

    def early(self, at: datetime) -> bool:
        """Whether ``at`` is before the checkpoint is due (a result then needs a stated reason)."""
        return at < self.due_at

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    def is_due(self, now: datetime) -> bool:
        """Scheduled and due by ``now``: its survey may go out."""
        return self.status == CheckpointStatus.SCHEDULED and self.due_at <= now

    def too_late(self, at: datetime, lateness: timedelta) -> bool:
        """More than ``lateness`` past due: a person decides (``needs_review``) instead of a late survey."""
        return at - self.due_at > lateness

    def may_remind(self, at: datetime, after: timedelta, max_reminders: int) -> bool:
        """Sent, unanswered, ``after`` since the survey or the last reminder, fewer than ``max_reminders``."""
        last = self.last_reminder_at or self.sent_at
        return (self.status == CheckpointStatus.SENT and last is not None and at - last >= after
                and self.reminders_sent < max_reminders)

    def may_close_unanswered(self, at: datetime, window: timedelta, max_reminders: int) -> bool:
        """Sent, unanswered after every reminder, and ``window`` since the last one (or the survey):
        flagged ``needs_review`` instead of staying open for ever (states.stalls)."""
        last = self.last_reminder_at or self.sent_at
        return (self.status == CheckpointStatus.SENT and last is not None and self.reminders_sent >= max_reminders
                and at - last >= window)

    def context(self, item: PlanItem) -> dict[str, Any]:
        """What the survey, reminder and collection mails say about the checkpoint and its plan item."""
        return {"checkpoint": {"key": self.key, "offset": self.offset, "due_at": self.due_at.isoformat()},
                "item": item.model_dump(mode="json")}


def schedule(request_id: int, plan: MeasurementPlan, end_date: date) -> Iterator[Checkpoint]:
    """Every checkpoint of the plan, due its offset after ``end_date``, in plan order."""
    start = datetime.combine(end_date, CHECKPOINT_TIME)
    for item in plan.items:
        for offset in item.checkpoints:
            yield Checkpoint(key=f"{request_id}:{item.id}:{offset}", item_id=item.id, offset=offset,
                             due_at=parse_duration(offset).after(start))


def collect_todo(request_id: int, c: Checkpoint, item: PlanItem, at: datetime, owner: Recipient) -> CalendarItem:
    """The owner's calendar to-do for collecting the checkpoint's result (organised by the team's
    organizer, filled in when it is sent)."""
    return CalendarItem(uid=f"ldflow-{request_id}-{c.item_id}-{c.offset}-todo@ldflow", kind="todo",
                        summary=f"Collect {item.metric} ({wording.after_delivery(c.offset)})", start=at.isoformat(),
                        end=(at + COLLECT_WITHIN).isoformat(), attendees=(owner,))
