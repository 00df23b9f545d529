"""Re-opening a declined or cancelled request (the lifecycle table's one way out of a terminal state).

The request goes back to ``received`` with its intake, its measurement plan (and the plan's approval,
if it had one: a redraft needs approval again) and its whole history; the partner process starts
again from the diagnosis. What the earlier pass decided or did (the diagnosis and recommendations,
the design or redirect, the delivery, the results) is in the history, not in the re-opened request.
Cancelled sessions stay cancelled (an id is never scheduled again) and the checkpoints the
cancellation closed stay closed (their timers are never fired again; a new delivery schedules its own).
The mails of the new pass get keys of their own (``<id>:r<N>:…``), so a second decline, redirect
or survey is sent rather than taken for the first one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from states import events as ev
from states import guards
from states.lifecycle import Command
from states.models import Reason

if TYPE_CHECKING:
    from states.request import TrainingRequest


def reopen(request: TrainingRequest, reason: Reason, at: datetime) -> None:
    """Re-open ``request`` (declined or cancelled) with ``reason``: back to ``received``."""
    request._require(Command.REOPEN)
    request._move(ev.Reopened(from_state=request.state, reason=reason.reason), guards.reason("reopen", reason), at)
    request.reopened += 1
    request.closing_reason = ""
    request.diagnosis = None
    request.recommendations = []
    request.brief = None
    request.redirect_record = None
    request.companions = []  # the earlier pass's solution mix, like its redirect: in the history
    request.delivery = None
    request.checkpoints = []  # every one closed by the cancellation; their timers stay closed in the store
    request.results = []
    request.roi = None
