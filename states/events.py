"""Domain events: what happened to a request, recorded in past tense.

The aggregate appends events as it changes; the store turns each into one
hash-chained audit row in the same transaction as the new state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Non-transition events. Transition events are named by lifecycle.EVENT_OF.
SUBMITTED = "submitted"
PLAN_DRAFTED = "plan_drafted"
PLAN_APPROVED = "plan_approved"
NOTE_ADDED = "note_added"
SESSION_SCHEDULED = "session_scheduled"
SESSION_RESCHEDULED = "session_rescheduled"
SESSION_CANCELLED = "session_cancelled"
CHECKPOINT_SCHEDULED = "checkpoint_scheduled"
SURVEY_SENT = "survey_sent"
REMINDER_SENT = "reminder_sent"
CHECKPOINT_FLAGGED = "checkpoint_flagged"
RESULT_RECORDED = "result_recorded"
CHECKPOINT_MISSED = "checkpoint_missed"
EMAIL_SENT = "email_sent"
EMAIL_BOUNCED = "email_bounced"
INVITE_SENT = "invite_sent"
REPLY_RECEIVED = "reply_received"


@dataclass(frozen=True)
class DomainEvent:
    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    trigger: str | None = None
    from_state: str | None = None
    to_state: str | None = None
