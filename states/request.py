"""The training request aggregate.

Every change goes through a method here: it checks the lifecycle and the
guard, changes the request, and records what happened as events and the
messages it causes as notifications. Nothing is written until a store
commits all of it in one transaction; a refused change leaves the request
exactly as it was.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from states import events as ev
from states import guards, lifecycle
from states.diagnosis import recommend
from states.durations import parse_duration
from states.errors import FieldError, InvalidInput, NotFound, TransitionRefused
from states.lifecycle import EVENT_OF, State, Trigger
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
    Recommendation,
    Redirect,
    SessionPlan,
)
from states.notifications import CalendarItem, Notification, Recipient

# Follow-ups go out at this UTC time of day on the due date.
CHECKPOINT_TIME = time(9, 0, tzinfo=UTC)


class CheckpointStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENT = "sent"
    NEEDS_REVIEW = "needs_review"
    CLOSED = "closed"
    MISSED = "missed"


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

    @property
    def closed(self) -> bool:
        return self.status in (CheckpointStatus.CLOSED, CheckpointStatus.MISSED)


class Session(BaseModel):
    """A scheduled delivery session; ``sequence`` grows with every reschedule (iCalendar SEQUENCE)."""

    model_config = ConfigDict(extra="forbid")

    plan: SessionPlan
    sequence: int = 0
    cancelled: bool = False


class Outcome(StrEnum):
    MET = "met"
    PARTLY_MET = "partly_met"
    NOT_MET = "not_met"
    NO_DATA = "no_data"


class ItemResult(BaseModel):
    item_id: str
    metric: str
    unit: str
    baseline: float | None
    target: float
    result: float | None
    outcome: Outcome
    monetary_benefit: float | None = None


class RoiSummary(BaseModel):
    benefits: float
    costs: float
    currency: str
    benefit_cost_ratio: float
    roi_percent: float


def _person(p: Any) -> Recipient:
    return Recipient(name=p.name, email=p.email, role=getattr(p, "role", ""))


class TrainingRequest(BaseModel):
    """One training request and everything learned about it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: int | None = None
    state: State = State.RECEIVED
    version: int = 0
    created_at: datetime
    updated_at: datetime
    intake: Intake
    diagnosis: Diagnosis | None = None
    recommendations: list[Recommendation] = Field(default_factory=list)
    plan: MeasurementPlan | None = None
    plan_approved_by: str | None = None
    plan_approved_at: datetime | None = None
    brief: DesignBrief | None = None
    redirect_record: Redirect | None = None
    delivery: Delivery | None = None
    sessions: list[Session] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    results: list[ItemResult] = Field(default_factory=list)
    roi: RoiSummary | None = None
    acknowledgement: Acknowledgement | None = None
    closing_reason: str = ""

    _events: list[ev.DomainEvent] = PrivateAttr(default_factory=list)
    _outgoing: list[Notification] = PrivateAttr(default_factory=list)
    _touched: set[str] = PrivateAttr(default_factory=set)

    # --- bookkeeping -------------------------------------------------------------------------------

    def pending_events(self) -> list[ev.DomainEvent]:
        return list(self._events)

    def pending_notifications(self) -> list[Notification]:
        """Notifications with their final keys (``<request id>:<suffix>``)."""
        assert self.id is not None, "the store assigns the id before collecting notifications"
        return [replace(n, key=f"{self.id}:{n.key}", request_id=self.id) for n in self._outgoing]

    def touched_checkpoints(self) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.key in self._touched]

    def clear_pending(self) -> None:
        self._events.clear()
        self._outgoing.clear()
        self._touched.clear()

    def _record(self, type_: str, payload: dict[str, Any] | None = None, *, trigger: Trigger | None = None,
                from_state: State | None = None) -> None:
        self._events.append(ev.DomainEvent(
            type=type_, payload=payload or {}, trigger=trigger.value if trigger else None,
            from_state=from_state.value if from_state else None,
            to_state=self.state.value if trigger else None))

    def _notify(self, suffix: str, template: str, to: list[Recipient], subject: str,
                context: dict[str, Any] | None = None, calendar: CalendarItem | None = None) -> None:
        base = {"request": {"id": self.id, "title": self.intake.title, "state": self.state.value},
                "requester": {"name": self.intake.requester.name, "email": self.intake.requester.email},
                "sponsor": {"name": self.intake.sponsor.name, "email": self.intake.sponsor.email}}
        base.update(context or {})
        self._outgoing.append(Notification(key=suffix, request_id=self.id or 0, template=template,
                                           to=tuple(to), subject=subject, context=base, calendar=calendar))

    def _move(self, trigger: Trigger, missing: list[str], at: datetime, payload: dict[str, Any]) -> None:
        """Check the lifecycle, then the guard; on success change state and record the event."""
        if trigger not in lifecycle.allowed_triggers(self.state):
            lifecycle.fire(self.state, trigger)  # raises InvalidTransition listing the allowed triggers
        if missing:
            raise TransitionRefused(trigger.value, self.state.value, missing)
        before = self.state
        self.state = lifecycle.fire(before, trigger)
        self.updated_at = at
        self._record(EVENT_OF[trigger], payload, trigger=trigger, from_state=before)

    def _stakeholders(self) -> list[Recipient]:
        people = [self.intake.sponsor, self.intake.requester, *self.intake.stakeholders]
        seen: dict[str, Recipient] = {}
        for p in people:
            seen.setdefault(p.email, _person(p))
        return list(seen.values())

    # --- commands ----------------------------------------------------------------------------------

    @classmethod
    def submit(cls, intake: Intake, at: datetime) -> TrainingRequest:
        """A new request, received as the requester put it."""
        request = cls(intake=intake, created_at=at, updated_at=at)
        request._record(ev.SUBMITTED, {"intake": intake.model_dump(mode="json")})
        request._notify("intake_acknowledgement", "intake_acknowledgement", [_person(intake.requester)],
                        f"We've got your request: {intake.title}",
                        {"requested_solution": intake.requested_solution})
        return request

    def diagnose(self, diagnosis: Diagnosis, at: datetime) -> None:
        self._require_allowed(Trigger.DIAGNOSE)
        self._move(Trigger.DIAGNOSE, guards.diagnose(self, diagnosis), at, {})
        goal = self.intake.business_goal.merged(diagnosis.business_goal)
        self.intake = self.intake.model_copy(update={"business_goal": goal})
        self.diagnosis = diagnosis
        self.recommendations = recommend(diagnosis)
        recs = [r.model_dump() for r in self.recommendations]
        self._events[-1] = replace(self._events[-1], payload={
            "diagnosis": diagnosis.model_dump(mode="json"), "recommendations": recs})
        self._notify(f"diagnosis_summary:v{self.version + 1}", "diagnosis_summary", self._stakeholders(),
                     f"Diagnosis: {self.intake.title}",
                     {"recommendations": recs, "observable_actions": list(diagnosis.observable_actions),
                      "business_goal": goal.model_dump(mode="json"), "summary": diagnosis.summary})

    def draft_plan(self, plan: MeasurementPlan, at: datetime) -> None:
        """Draft (or redraft) the measurement plan; a redraft needs approval again."""
        if self.state not in (State.RECEIVED, State.DIAGNOSED):
            raise TransitionRefused("draft a measurement plan for", self.state.value,
                                    ["the plan is settled before design or redirect starts"])
        self.plan = plan
        self.plan_approved_by = None
        self.plan_approved_at = None
        self.updated_at = at
        self._record(ev.PLAN_DRAFTED, {"plan": plan.model_dump(mode="json")})
        self._notify(f"plan_approval_request:v{self.version + 1}", "plan_approval_request",
                     [_person(self.intake.sponsor)], f"Please approve the measurement plan: {self.intake.title}",
                     {"plan": plan.model_dump(mode="json")})

    def approve_plan(self, approval: PlanApproval, at: datetime) -> None:
        """The sponsor approves the drafted plan."""
        missing = []
        if self.state not in (State.RECEIVED, State.DIAGNOSED):
            missing.append("the plan can only be approved before design or redirect starts")
        if self.plan is None:
            missing.append("a drafted measurement plan")
        elif self.plan_approved_by is not None:
            missing.append(f"a plan awaiting approval (already approved by {self.plan_approved_by})")
        if approval.approver != self.intake.sponsor.email:
            missing.append(f"approval by the sponsor {self.intake.sponsor.email} (not {approval.approver})")
        if missing:
            raise TransitionRefused("approve the plan of", self.state.value, missing)
        self.plan_approved_by = approval.approver
        self.plan_approved_at = at
        self.updated_at = at
        self._record(ev.PLAN_APPROVED, {"approver": approval.approver, "comment": approval.comment})

    def design(self, brief: DesignBrief, at: datetime) -> None:
        self._require_allowed(Trigger.DESIGN)
        self._move(Trigger.DESIGN, guards.design(self, brief), at, {"brief": brief.model_dump(mode="json")})
        self.brief = brief

    def redirect(self, redirect: Redirect, at: datetime) -> None:
        self._require_allowed(Trigger.REDIRECT)
        self._move(Trigger.REDIRECT, guards.redirect(self, redirect), at,
                   {"redirect": redirect.model_dump(mode="json")})
        self.redirect_record = redirect

    def schedule_session(self, plan: SessionPlan, at: datetime) -> Session:
        """Schedule (or reschedule) a delivery session and invite its attendees (iMIP REQUEST)."""
        if self.state not in (State.DESIGNED, State.REDIRECTED):
            raise TransitionRefused("schedule a session for", self.state.value,
                                    ["sessions are scheduled once the request is designed or redirected"])
        session_id = plan.id or f"s{len(self.sessions) + 1}"
        plan = plan.model_copy(update={"id": session_id})
        existing = next((x for x in self.sessions if x.plan.id == session_id), None)
        if existing is not None and existing.cancelled:
            raise TransitionRefused("reschedule", self.state.value,
                                    [f"session '{session_id}' was cancelled; schedule it under a new id"])
        if existing is None:
            session = Session(plan=plan)
            self.sessions.append(session)
            kind = ev.SESSION_SCHEDULED
        else:
            existing.plan, existing.sequence = plan, existing.sequence + 1
            session, kind = existing, ev.SESSION_RESCHEDULED
        self.updated_at = at
        self._record(kind, {"session": plan.model_dump(mode="json"), "sequence": session.sequence})
        self._invite(session, "REQUEST")
        return session

    def _session_attendees(self, session: Session) -> list[Recipient]:
        people = session.plan.attendees or [self.intake.audience.contact or self.intake.requester]
        return [_person(p) for p in people]

    def _invite(self, session: Session, method: str, reason: str = "") -> None:
        plan = session.plan
        attendees = self._session_attendees(session)
        item = CalendarItem(uid=f"ldflow-{self.id}-session-{plan.id}@ldflow", kind="event", summary=plan.title,
                            start=plan.start.isoformat(), end=plan.end.isoformat(),
                            description=plan.preparation, organizer=_person(plan.organizer or self.intake.sponsor),
                            attendees=tuple(attendees), sequence=session.sequence, method=method)
        if method == "CANCEL":
            self._notify(f"session_cancelled:{plan.id}:{session.sequence}", "request_cancelled", attendees,
                         f"Cancelled: {plan.title}", {"reason": reason}, calendar=item)
            return
        self._notify(f"delivery_invite:{plan.id}:{session.sequence}", "delivery_invite", attendees,
                     f"{'Updated invitation' if session.sequence else 'Invitation'}: {plan.title}",
                     {"session_title": plan.title, "start": plan.start.isoformat(), "end": plan.end.isoformat(),
                      "location": plan.location, "agenda": list(plan.agenda), "preparation": plan.preparation},
                     calendar=item)

    def deliver(self, delivery: Delivery, at: datetime) -> None:
        """Record delivery; schedule every checkpoint of the plan from the end date."""
        self._require_allowed(Trigger.DELIVER)
        self._move(Trigger.DELIVER, guards.deliver(self, delivery), at,
                   {"delivery": delivery.model_dump(mode="json")})
        self.delivery = delivery
        assert self.plan is not None and delivery.end_date is not None and self.id is not None
        start = datetime.combine(delivery.end_date, CHECKPOINT_TIME)
        for item in self.plan.items:
            for offset in item.checkpoints:
                due = parse_duration(offset).after(start)
                checkpoint = Checkpoint(key=f"{self.id}:{item.id}:{offset}", item_id=item.id, offset=offset,
                                        due_at=due)
                self.checkpoints.append(checkpoint)
                self._touched.add(checkpoint.key)
                self._record(ev.CHECKPOINT_SCHEDULED, {"checkpoint": checkpoint.key, "item": item.id,
                                                       "offset": offset, "due_at": due.isoformat()})

    def checkpoint(self, key: str) -> Checkpoint:
        for c in self.checkpoints:
            if c.key == key or c.key == f"{self.id}:{key}":
                return c
        known = ", ".join(c.key for c in self.checkpoints) or "none scheduled yet"
        raise NotFound(f"checkpoint {key!r} of request {self.id} (known: {known})")

    def record_result(self, key: str, result: CheckpointResult, at: datetime) -> None:
        """Record a checkpoint's result, or close it as missed with a reason."""
        checkpoint = self.checkpoint(key)
        if self.state != State.DELIVERED:
            raise TransitionRefused("record a result for", self.state.value,
                                    ["results are recorded while the request is delivered"])
        if checkpoint.closed:
            raise TransitionRefused("record a result for", self.state.value,
                                    [f"an open checkpoint ({checkpoint.key} is already {checkpoint.status.value})"])
        checkpoint.closed_at = at
        checkpoint.note = result.note
        if result.value is not None:
            checkpoint.status = CheckpointStatus.CLOSED
            checkpoint.value = result.value
            self._record(ev.RESULT_RECORDED, {"checkpoint": checkpoint.key, "value": result.value,
                                              "note": result.note})
        else:
            checkpoint.status = CheckpointStatus.MISSED
            checkpoint.missed_reason = result.missed_reason
            self._record(ev.CHECKPOINT_MISSED, {"checkpoint": checkpoint.key, "reason": result.missed_reason})
        self._touched.add(checkpoint.key)
        self.updated_at = at

    def measure(self, at: datetime) -> None:
        """Close measurement: compare each plan item's latest result with its target."""
        self._require_allowed(Trigger.MEASURE)
        results, roi = self._compare_results()
        self._move(Trigger.MEASURE, guards.measure(self), at,
                   {"results": [r.model_dump(mode="json") for r in results],
                    "roi": roi.model_dump(mode="json") if roi else None})
        self.results = results
        self.roi = roi

    def acknowledge(self, ack: Acknowledgement, at: datetime) -> None:
        """Close the loop: recap, action plan, contributions; the report goes to the stakeholders."""
        self._require_allowed(Trigger.ACKNOWLEDGE)
        self._move(Trigger.ACKNOWLEDGE, guards.acknowledge(self, ack), at,
                   {"acknowledgement": ack.model_dump(mode="json")})
        self.acknowledgement = ack
        self._notify("results_report", "results_report", self._stakeholders(),
                     f"Results and thanks: {self.intake.title}",
                     {"acknowledgement": ack.model_dump(mode="json"),
                      "results": [r.model_dump(mode="json") for r in self.results],
                      "roi": self.roi.model_dump(mode="json") if self.roi else None})

    def decline(self, reason: Reason, at: datetime) -> None:
        self._require_allowed(Trigger.DECLINE)
        self._move(Trigger.DECLINE, guards.reason("decline", reason), at, {"reason": reason.reason})
        self.closing_reason = reason.reason

    def cancel(self, reason: Reason, at: datetime) -> None:
        self._require_allowed(Trigger.CANCEL)
        self._move(Trigger.CANCEL, guards.reason("cancel", reason), at, {"reason": reason.reason})
        self.closing_reason = reason.reason
        self._notify("request_cancelled", "request_cancelled", self._stakeholders(),
                     f"Cancelled: {self.intake.title}", {"reason": reason.reason})
        for session in self.sessions:
            if not session.cancelled:
                session.cancelled, session.sequence = True, session.sequence + 1
                self._record(ev.SESSION_CANCELLED, {"session": session.plan.id, "sequence": session.sequence})
                self._invite(session, "CANCEL", reason.reason)
        for c in self.checkpoints:
            if not c.closed:
                c.status = CheckpointStatus.MISSED
                c.missed_reason = f"request cancelled: {reason.reason}"
                c.closed_at = at
                self._touched.add(c.key)

    def add_note(self, text: str, at: datetime, source: str = "") -> None:
        if not text.strip():
            raise InvalidInput([FieldError("text", "a note cannot be empty")])
        self.updated_at = at
        self._record(ev.NOTE_ADDED, {"text": text.strip(), **({"source": source} if source else {})})

    # --- helpers ------------------------------------------------------------------------------------

    def _require_allowed(self, trigger: Trigger) -> None:
        if trigger not in lifecycle.allowed_triggers(self.state):
            lifecycle.fire(self.state, trigger)

    def _compare_results(self) -> tuple[list[ItemResult], RoiSummary | None]:
        results: list[ItemResult] = []
        if self.plan is None:
            return results, None
        benefits: float | None = None
        for item in self.plan.items:
            recorded = sorted((c for c in self.checkpoints if c.item_id == item.id and c.value is not None),
                              key=lambda c: c.due_at)
            value = recorded[-1].value if recorded else None
            baseline = item.baseline.value if item.baseline else None
            outcome = _outcome(baseline, item.target.value, value)
            benefit = None
            if value is not None and baseline is not None and item.value_per_unit is not None:
                direction = 1.0 if item.target.value >= baseline else -1.0
                benefit = (value - baseline) * direction * item.value_per_unit
                benefits = (benefits or 0.0) + benefit
            results.append(ItemResult(item_id=item.id, metric=item.metric, unit=item.unit, baseline=baseline,
                                      target=item.target.value, result=value, outcome=outcome,
                                      monetary_benefit=benefit))
        roi = None
        costs = self.plan.costs
        if costs is not None and benefits is not None:
            roi = RoiSummary(benefits=round(benefits, 2), costs=costs.program_cost, currency=costs.currency,
                             benefit_cost_ratio=round(benefits / costs.program_cost, 2),
                             roi_percent=round((benefits - costs.program_cost) / costs.program_cost * 100, 1))
        return results, roi

    # --- follow-ups (driven by the pipeline) ----------------------------------------------------------

    def due_checkpoints(self, now: datetime) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.status == CheckpointStatus.SCHEDULED and c.due_at <= now]

    def send_checkpoint(self, key: str, at: datetime, lateness: timedelta) -> bool:
        """Queue the survey for a due checkpoint (once); flag it for review when far too late.

        Returns True when a survey was queued.
        """
        c = self.checkpoint(key)
        if c.status != CheckpointStatus.SCHEDULED or c.due_at > at or self.state != State.DELIVERED:
            return False
        assert self.plan is not None
        item = next(i for i in self.plan.items if i.id == c.item_id)
        self._touched.add(c.key)
        self.updated_at = at
        if at - c.due_at > lateness:
            c.status = CheckpointStatus.NEEDS_REVIEW
            self._record(ev.CHECKPOINT_FLAGGED, {"checkpoint": c.key, "due_at": c.due_at.isoformat(),
                                                 "late_by_days": (at - c.due_at).days})
            return False
        c.status = CheckpointStatus.SENT
        c.sent_at = at
        respondents = self._respondents(item.respondent.value)
        context = {"checkpoint": {"key": c.key, "offset": c.offset, "due_at": c.due_at.isoformat()},
                   "item": item.model_dump(mode="json")}
        self._notify(f"survey:{c.item_id}:{c.offset}", "survey", respondents,
                     f"Quick check-in ({c.offset} after delivery): {item.metric}", context)
        self._notify(f"checkpoint_reminder:{c.item_id}:{c.offset}", "checkpoint_reminder",
                     [_person(item.owner)], f"Collect the {c.offset} result: {item.metric}", context,
                     calendar=CalendarItem(uid=f"ldflow-{self.id}-{c.item_id}-{c.offset}-todo@ldflow",
                                           kind="todo", summary=f"Collect {item.metric} ({c.offset})",
                                           start=at.isoformat(), end=(at + timedelta(days=3)).isoformat(),
                                           organizer=_person(self.intake.sponsor),
                                           attendees=(_person(item.owner),)))
        self._record(ev.SURVEY_SENT, {"checkpoint": c.key, "to": [r.email for r in respondents]})
        return True

    def remind_checkpoint(self, key: str, at: datetime, after: timedelta, max_reminders: int) -> bool:
        """Send a reminder for an unanswered survey (``after`` since the last one, at most ``max_reminders``)."""
        c = self.checkpoint(key)
        last = c.last_reminder_at or c.sent_at
        if (c.status != CheckpointStatus.SENT or last is None or at - last < after
                or c.reminders_sent >= max_reminders or self.state != State.DELIVERED):
            return False
        assert self.plan is not None
        item = next(i for i in self.plan.items if i.id == c.item_id)
        c.reminders_sent += 1
        c.last_reminder_at = at
        self._touched.add(c.key)
        self.updated_at = at
        respondents = self._respondents(item.respondent.value)
        self._notify(f"survey_reminder:{c.item_id}:{c.offset}:{c.reminders_sent}", "survey_reminder",
                     respondents, f"Reminder: quick check-in on {item.metric}",
                     {"checkpoint": {"key": c.key, "offset": c.offset, "due_at": c.due_at.isoformat()},
                      "item": item.model_dump(mode="json"), "reminder_number": c.reminders_sent})
        self._record(ev.REMINDER_SENT, {"checkpoint": c.key, "reminder": c.reminders_sent})
        return True

    def _respondents(self, respondent: str) -> list[Recipient]:
        if respondent == "manager":
            return [_person(self.intake.sponsor)]
        if respondent == "learner":
            return [_person(self.intake.audience.contact or self.intake.requester)]
        return self._stakeholders()


def _outcome(baseline: float | None, target: float, value: float | None) -> Outcome:
    if value is None:
        return Outcome.NO_DATA
    if baseline is None or baseline == target:
        return Outcome.MET if value >= target else Outcome.NOT_MET
    upward = target > baseline
    if (value >= target) if upward else (value <= target):
        return Outcome.MET
    if (value > baseline) if upward else (value < baseline):
        return Outcome.PARTLY_MET
    return Outcome.NOT_MET
