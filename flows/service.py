"""The application service: one method per user command.

Each command validates its input (InvalidInput, exit 2), loads the request,
lets the aggregate decide (TransitionRefused, exit 3), and commits the result
through the store in one transaction (Conflict, exit 5). Nothing is written
when any step refuses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any, Protocol

from connectors.audit_checkpoints import SignedCheckpoint
from connectors.audit_checkpoints import heads_of as cps_heads
from connectors.ports import (
    AuditRecord,
    BoardPage,
    BoardQuery,
    FollowupClaim,
    ListFilter,
    RequestStore,
    RequestSummary,
    VerifyReport,
)
from flows import attribution
from flows.clock import Clock, SystemClock
from states import amendments, companions, followups, reopening, responses, stalls, surveys
from states.amendments import Amendment
from states.checkpoints import CheckpointStatus
from states.errors import FieldError, InvalidInput, NotFound
from states.events import CheckpointFlagged
from states.models import (
    Acknowledgement,
    CheckpointResult,
    Delivery,
    DesignBrief,
    Diagnosis,
    Intake,
    MeasurementPlan,
    PlanApproval,
    Reason,
    Redirect,
    Roster,
    SessionPlan,
)
from states.request import TrainingRequest
from states.validation import MAX_INT64, parse


class _Writes(Protocol):
    """What a command writes through: the store (a transaction per command) or an open
    :class:`connectors.ports.Transaction` (see :meth:`Service.within`)."""

    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest: ...
    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest: ...
    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest: ...
    def get(self, request_id: int) -> TrainingRequest: ...


Data = dict[str, Any]


def _actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor or any(ch in actor for ch in "\r\n\x00") or len(actor) > 320:
        raise InvalidInput([FieldError("actor", "give who is acting (a name or e-mail, one line)")])
    return actor


def valid_actor(actor: str) -> str:
    """``actor`` trimmed; InvalidInput unless it names someone on one line."""
    return _actor(actor)


#: How far from today a delivery may be dated (years either way), unless configured otherwise.
DELIVERY_WINDOW_YEARS = 5


def _years_from(day: date, years: int) -> date:
    year = min(9999, max(1, day.year + years))
    return day.replace(year=year, day=28) if (day.month, day.day) == (2, 29) else day.replace(year=year)


def _known(request_id: int) -> int:
    """The id, or NotFound (exit 4) for one no 64-bit id column can hold (never an OverflowError)."""
    if not 1 <= request_id <= MAX_INT64:
        raise NotFound(f"request {request_id}")
    return request_id


class Service:
    """The request commands and queries every entry point calls (CLI, Prefect flows, web app)."""

    def __init__(self, store: RequestStore, clock: Clock | None = None, *,
                 delivery_window_years: int = DELIVERY_WINDOW_YEARS) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.delivery_window_years = delivery_window_years
        self._tx: _Writes | None = None
        self._via = ""

    def via(self, channel: str) -> Service:
        """This service with every event it records marked as having come through ``channel``
        (``web``, ``cli`` …): the history says who acted and how."""
        bound = copy.copy(self)
        bound._via = channel
        return bound

    def within(self, tx: _Writes) -> Service:
        """This service with its commands running in the open transaction ``tx`` (a
        :class:`connectors.ports.Transaction`): they commit together with whatever else ``tx``
        records, e.g. the inbound mail that caused them, or not at all."""
        bound = copy.copy(self)
        bound._tx = tx
        return bound

    @property
    def _writes(self) -> _Writes:
        return self._tx if self._tx is not None else self.store

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def _change(self, request_id: int, actor: str, expect_version: int | None,
                apply: Callable[[TrainingRequest, datetime], object]) -> TrainingRequest:
        actor = _actor(actor)
        _known(request_id)

        def mutate(request: TrainingRequest) -> None:
            apply(request, self._now())
            if self._via:
                request.stamp_via(self._via)

        return self._writes.update(request_id, actor, mutate, expect_version)

    # --- commands ----------------------------------------------------------------------------------

    def submit(self, intake: Data | Intake, actor: str, source: str = "", *, note: str | None = None,
               note_source: str = "", thread: tuple[str, ...] = (), acknowledge: bool = True) -> TrainingRequest:
        """A new request (version 1); ``note`` (e.g. where a mailed-in request came from) goes into its
        first history entry's version; ``thread`` (the Message-IDs of a mailed-in request) threads the
        acknowledgement under that mail; ``acknowledge=False`` sends none."""
        parsed = parse(Intake, intake, source)
        now = self._now()
        request = TrainingRequest.submit(parsed, now, thread, acknowledge)
        if note is not None:
            request.add_note(note, now, source=note_source)
        if self._via:
            request.stamp_via(self._via)
        return self._writes.add(request, _actor(actor))

    def diagnose(self, request_id: int, data: Data | Diagnosis, actor: str,
                 expect_version: int | None = None, source: str = "") -> TrainingRequest:
        diagnosis = parse(Diagnosis, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.diagnose(diagnosis, at))

    def rediagnose(self, request_id: int, data: Data | Diagnosis, reason: Data | Reason, actor: str,
                   expect_version: int | None = None, source: str = "") -> TrainingRequest:
        """Diagnose a diagnosed request again (before design or redirect), with a reason."""
        diagnosis = parse(Diagnosis, data, source)
        why = parse(Reason, reason, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.rediagnose(diagnosis, why, at))

    def draft_plan(self, request_id: int, data: Data | MeasurementPlan, actor: str,
                   expect_version: int | None = None, source: str = "") -> TrainingRequest:
        plan = parse(MeasurementPlan, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.draft_plan(plan, at))

    def approve_plan(self, request_id: int, data: Data | PlanApproval, actor: str,
                     expect_version: int | None = None, source: str = "", *, admin: bool = False) -> TrainingRequest:
        """The approver's approval, recorded by the approver (``actor``) themselves, or by an admin
        (``admin``: the entry point has checked the actor's role) with ``reason``, shown as such."""
        approval = parse(PlanApproval, data, source)
        who = _actor(actor)
        person = attribution.person(who)  # the channel is the events' via; an old-style "Ann (via api)" is Ann
        return self._change(request_id, who, expect_version,
                            lambda r, at: r.approve_plan(approval, at, person, admin))

    def ask_for_approval_again(self, request_id: int, actor: str, why: str) -> TrainingRequest:
        """Send the sponsor the approval request of the plan waiting for them again, noting ``why``."""
        return self._change(request_id, actor, None, lambda r, at: r.ask_for_approval_again(at, why))

    def request_plan_changes(self, request_id: int, version: int, comment: str, by: str, actor: str,
                             expect_version: int | None = None) -> TrainingRequest:
        """The sponsor ``by`` asks for changes to plan ``version`` (the one waiting for approval); the
        plan's owners are told (``states.responses``)."""
        return self._change(request_id, actor, expect_version,
                            lambda r, at: responses.request_plan_changes(r, version, by, comment, at))

    def change_answer(self, request_id: int, checkpoint: str, data: Data | CheckpointResult, actor: str,
                      expect_version: int | None = None, source: str = "") -> TrainingRequest:
        """Change an answered checkpoint's value (a respondent correcting a survey answer)."""
        result = parse(CheckpointResult, data, source)
        if result.value is None:
            raise InvalidInput([FieldError("value", "give the new answer as a number")])
        value = result.value
        return self._change(request_id, actor, expect_version,
                            lambda r, at: responses.change_answer(r, checkpoint, value, result.note, at))

    def design(self, request_id: int, data: Data | DesignBrief, actor: str,
               expect_version: int | None = None, source: str = "") -> TrainingRequest:
        brief = parse(DesignBrief, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.design(brief, at))

    def redirect(self, request_id: int, data: Data | Redirect, actor: str,
                 expect_version: int | None = None, source: str = "") -> TrainingRequest:
        redirect = parse(Redirect, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.redirect(redirect, at))

    def schedule_session(self, request_id: int, data: Data | SessionPlan, actor: str,
                         expect_version: int | None = None, source: str = "") -> TrainingRequest:
        plan = parse(SessionPlan, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.schedule_session(plan, at))

    def deliver(self, request_id: int, data: Data | Delivery, actor: str,
                expect_version: int | None = None, source: str = "") -> TrainingRequest:
        delivery = parse(Delivery, data, source)
        self._check_delivery_dates(delivery, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.deliver(delivery, at))

    def _check_delivery_dates(self, delivery: Delivery, source: str) -> None:
        """Delivery dates within ``delivery_window_years`` of the clock's today (LDFLOW_DELIVERY_WINDOW_YEARS)."""
        today = self._now().date()
        years = self.delivery_window_years
        low, high = _years_from(today, -years), _years_from(today, years)
        errors = [FieldError(name, f"{value} is not within {years} years of today ({today}): {low} to {high}")
                  for name, value in (("start_date", delivery.start_date), ("end_date", delivery.end_date))
                  if value is not None and not low <= value <= high]
        if errors:
            raise InvalidInput(errors, source)

    def record(self, request_id: int, checkpoint: str, data: Data | CheckpointResult, actor: str,
               expect_version: int | None = None, source: str = "") -> TrainingRequest:
        result = parse(CheckpointResult, data, source)
        return self._change(request_id, actor, expect_version,
                            lambda r, at: r.record_result(checkpoint, result, at))

    def answer(self, request_id: int, checkpoint: str, respondent: str, data: Data | CheckpointResult, actor: str,
               via: str = "", source: str = "") -> TrainingRequest:
        """A respondent's survey answer (by reply or link). A group survey keeps one answer per respondent
        (a second replaces the first) and closes when everyone asked answered (states.surveys); a survey
        sent before groups is recorded as its result, or changes it, as then."""
        result = parse(CheckpointResult, data, source)
        if result.value is None:
            raise InvalidInput([FieldError("value", "give the answer as a number")])
        value = result.value

        def apply(r: TrainingRequest, at: datetime) -> None:
            c = r.checkpoint(checkpoint)
            if surveys.is_group_survey(c):
                r.answer(checkpoint, respondent, value, result.note, at, via)
            elif c.status == CheckpointStatus.CLOSED and c.value is not None:
                responses.change_answer(r, checkpoint, value, result.note, at)
            else:
                r.record_result(checkpoint, result, at)
        return self._change(request_id, actor, None, apply)

    def set_roster(self, request_id: int, data: Data | Roster, actor: str,
                   expect_version: int | None = None, source: str = "") -> TrainingRequest:
        """Give or change the delivery's roster (``ldflow roster ID -f roster.csv``)."""
        roster = parse(Roster, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.set_roster(roster, at))

    def measure(self, request_id: int, actor: str, expect_version: int | None = None) -> TrainingRequest:
        return self._change(request_id, actor, expect_version, lambda r, at: r.measure(at))

    def acknowledge(self, request_id: int, data: Data | Acknowledgement, actor: str,
                    expect_version: int | None = None, source: str = "") -> TrainingRequest:
        ack = parse(Acknowledgement, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.acknowledge(ack, at))

    def decline(self, request_id: int, data: Data | Reason, actor: str,
                expect_version: int | None = None, source: str = "") -> TrainingRequest:
        reason = parse(Reason, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.decline(reason, at))

    def cancel(self, request_id: int, data: Data | Reason, actor: str,
               expect_version: int | None = None, source: str = "") -> TrainingRequest:
        reason = parse(Reason, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: r.cancel(reason, at))

    def reopen(self, request_id: int, data: Data | Reason, actor: str,
               expect_version: int | None = None, source: str = "") -> TrainingRequest:
        reason = parse(Reason, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: reopening.reopen(r, reason, at))

    def amend(self, request_id: int, data: Data | Amendment, actor: str,
              expect_version: int | None = None, source: str = "") -> TrainingRequest:
        amendment = parse(Amendment, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: amendments.amend(r, amendment, at))

    def add_companion(self, request_id: int, data: Data | companions.CompanionPiece, actor: str,
                      expect_version: int | None = None, source: str = "") -> TrainingRequest:
        """A companion piece next to the main path (kind, what, owner, due); its owner is told."""
        piece = parse(companions.CompanionPiece, data, source)
        return self._change(request_id, actor, expect_version, lambda r, at: companions.add(r, piece, at))

    def complete_companion(self, request_id: int, piece: str, outcome: str, actor: str,
                           expect_version: int | None = None) -> TrainingRequest:
        return self._change(request_id, actor, expect_version, lambda r, at: companions.done(r, piece, outcome, at))

    def drop_companion(self, request_id: int, piece: str, data: Data | Reason, actor: str,
                       expect_version: int | None = None, source: str = "") -> TrainingRequest:
        why = parse(Reason, data, source)
        return self._change(request_id, actor, expect_version,
                            lambda r, at: companions.drop(r, piece, why.reason, at))

    def add_note(self, request_id: int, text: str, actor: str, source: str = "",
                 expect_version: int | None = None) -> TrainingRequest:
        return self._change(request_id, actor, expect_version, lambda r, at: r.add_note(text, at, source))

    # --- follow-ups ----------------------------------------------------------------------------------

    def send_due_checkpoints(self, actor: str, lateness: timedelta, limit: int = 1000) -> dict[str, int]:
        """Queue surveys for up to ``limit`` checkpoints due now (each once); flag the far-too-late ones.

        The store claims the requests with due checkpoints in batches (``RequestStore.claim_followups``):
        one load and one write per request, however many of its checkpoints are due, under its row
        lock, so concurrent ``followups`` runs take disjoint requests and the checkpoint's own status
        decides; a request being written meanwhile (a person recording a result) is left for the next
        run. ``checked`` counts the due rows looked at: fewer than ``limit`` means none are left;
        ``conflicts`` is kept for the callers' summaries (a claim never conflicts).
        """
        now = self._now()

        def fire(request: TrainingRequest, keys: list[str]) -> dict[str, int]:
            sent = request.send_checkpoints(keys, now, lateness)  # one mail per respondent (states.surveys)
            flagged = sum(1 for e in request.pending_events() if isinstance(e, CheckpointFlagged))
            return {"sent": sent, "flagged": flagged}

        counts = {"sent": 0, "flagged": 0, "conflicts": 0}
        counts.update(self.store.claim_followups(FollowupClaim("due", now), actor, fire, limit))
        return counts

    def send_reminders(self, actor: str, after: timedelta, max_reminders: int, limit: int = 1000) -> int:
        """Remind respondents of unanswered surveys (``after`` since the last one, at most ``max_reminders``)."""
        now = self._now()

        def remind(request: TrainingRequest, keys: list[str]) -> dict[str, int]:
            return {"reminded": surveys.remind_due(request, keys, now, after, max_reminders)}

        claim = FollowupClaim("unanswered", now - after, max_reminders=max_reminders)
        return self.store.claim_followups(claim, actor, remind, limit).get("reminded", 0)

    def flag_unanswered(self, actor: str, window: timedelta, max_reminders: int, limit: int = 1000) -> int:
        """Flag ``needs_review`` the surveys still unanswered ``window`` after their last reminder (every one
        of ``max_reminders`` sent), telling the owner and the sponsor (states.stalls); a person then records
        the result or closes it as missed."""
        now = self._now()

        def flag(request: TrainingRequest, keys: list[str]) -> dict[str, int]:
            return {"flagged": sum(1 for key in keys
                                   if stalls.flag_unanswered(request, key, now, window, max_reminders))}

        claim = FollowupClaim("unanswered", now - window, min_reminders=max_reminders)
        return self.store.claim_followups(claim, actor, flag, limit).get("flagged", 0)

    def remind_owners(self, actor: str, before: timedelta, limit: int = 500) -> dict[str, int]:
        """Remind the owners of companion pieces and action steps due within ``before`` (each once,
        states.followups); the store claims the requests with a reminder still pending."""
        now = self._now()

        def remind(request: TrainingRequest, _keys: list[str]) -> dict[str, int]:
            return {"reminded": followups.remind(request, now, before)}

        counts = {"reminded": 0, "conflicts": 0}
        while True:
            done = self.store.claim_followups(FollowupClaim("owing_reminders"), actor, remind, limit)
            counts["reminded"] += done.get("reminded", 0)
            if done["checked"] < limit or not done.get("reminded"):
                return counts

    # --- reading -----------------------------------------------------------------------------------

    def show(self, request_id: int) -> TrainingRequest:
        return self.store.get(_known(request_id))

    def history(self, request_id: int) -> list[AuditRecord]:
        return self.store.history(_known(request_id))

    def recent_history(self, request_id: int, limit: int) -> tuple[list[AuditRecord], int]:
        """The newest ``limit`` events (oldest first) and the length of the whole history."""
        return self.store.recent_history(_known(request_id), limit)

    def board(self, query: BoardQuery) -> BoardPage:
        return self.store.board(query)

    def list(self, flt: ListFilter) -> tuple[list[RequestSummary], int]:
        return self.store.list(flt)

    def verify(self) -> VerifyReport:
        return self.store.verify()

    def checkpoint(self) -> SignedCheckpoint | None:
        """Sign the heads of every audit chain (None: nothing changed since the latest checkpoint)."""
        return self.store.checkpoint(self._now())

    def export_audit(self, stream: IO[str]) -> tuple[int, int]:
        """The audit bundle (``connectors.audit_bundle``) after a fresh checkpoint: (events, checkpoints)."""
        from connectors import audit_bundle

        self.checkpoint()
        checkpoints = self.store.checkpoints()
        key = self.store.public_key() or ""
        n_events = sum(c for _, c, _ in cps_heads(checkpoints[-1])) if checkpoints else 0
        written = audit_bundle.write(stream, key, checkpoints, self.store.iter_history(), n_events)
        return written, len(checkpoints)
