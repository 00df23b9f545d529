"""The training request aggregate.

Every change goes through a method here: it checks the lifecycle table (which
command the state allows) and the guard, changes the request, and records what
happened as events and the messages it causes as notifications. Nothing is
written until a store commits all of it in one transaction; a refused change
leaves the request exactly as it was. Follow-up rules live in
:mod:`states.checkpoints`, results and ROI in :mod:`states.results`, the
results report in :mod:`states.report`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from states import companions as mix
from states import events as ev
from states import followups, guards, lifecycle, mails, results, revisions, surveys
from states.checkpoints import Checkpoint, CheckpointStatus, schedule
from states.diagnosis import recommend
from states.errors import FieldError, InvalidInput, NotFound, TransitionRefused
from states.lifecycle import Command, State
from states.models import (
    Acknowledgement,
    CheckpointResult,
    Delivery,
    DesignBrief,
    Diagnosis,
    Intake,
    MeasurementPlan,
    PlanApproval,
    PlanItem,
    Reason,
    Recommendation,
    Redirect,
    Roster,
    SessionPlan,
)
from states.notifications import CalendarItem, Notification, Recipient, recipient, recipients
from states.report import results_report
from states.results import ItemResult, RoiSummary
from states.validation import STORED

__all__ = ["Checkpoint", "CheckpointStatus", "Session", "TrainingRequest"]


class Session(BaseModel):
    """A scheduled delivery session; ``sequence`` grows with every reschedule (iCalendar SEQUENCE)."""

    model_config = ConfigDict(extra="forbid")

    plan: SessionPlan
    sequence: int = 0
    cancelled: bool = False


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
    plan: MeasurementPlan | None = None  # the plan in force (version plan_version); states.revisions
    plan_version: int = 0
    plan_draft: revisions.PlanRevision | None = None  # a new version waiting for the sponsor
    plan_approved_by: str | None = None
    plan_approved_at: datetime | None = None
    plan_approval_recorded_by: str | None = None  # an admin who recorded the approval on the sponsor's behalf
    plan_approval_reason: str | None = None  # and why
    plan_review: list[str] = Field(default_factory=list)  # the last drafted version's warnings (states.plan_review)
    brief: DesignBrief | None = None
    redirect_record: Redirect | None = None
    companions: list[mix.Companion] = Field(default_factory=list)  # a solution mix (states/companions.py)
    delivery: Delivery | None = None
    roster: Roster | None = None  # the learners surveyed and their managers (states.groups)
    sessions: list[Session] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    results: list[ItemResult] = Field(default_factory=list)
    roi: RoiSummary | None = None
    acknowledgement: Acknowledgement | None = None
    step_reminders: list[followups.StepReminder] = Field(default_factory=list)  # owed to action-step owners
    closing_reason: str = ""
    reopened: int = 0  # how many times the request was re-opened (states/reopening.py)

    _events: list[ev.DomainEvent] = PrivateAttr(default_factory=list)
    _outgoing: list[Notification] = PrivateAttr(default_factory=list)

    @classmethod
    def from_stored(cls, document: str) -> TrainingRequest:
        """A stored document read back: the input bounds (numbers, header text) are not re-applied, so
        what was stored stays readable (states/validation.py)."""
        return cls.model_validate_json(document, context=STORED)

    @field_validator("roi", mode="before")
    @classmethod
    def _unreadable_roi(cls, value: Any) -> Any:
        # an ROI that overflowed before numbers were bounded was stored with nulls: drop it
        if isinstance(value, dict) and any(value.get(k) is None for k in ("benefits", "benefit_cost_ratio",
                                                                         "roi_percent")):
            return None
        return value

    @model_validator(mode="after")
    def _number_the_plan(self) -> TrainingRequest:
        if self.plan is not None and not self.plan_version:
            self.plan_version = 1  # a document stored before plan versions
        return self

    # --- bookkeeping -------------------------------------------------------------------------------

    def pending_events(self) -> list[ev.DomainEvent]:
        return list(self._events)

    def pending_notifications(self) -> list[Notification]:
        """Notifications with their final keys (``<request id>:<suffix>``; ``<request id>:r<N>:<suffix>``
        once re-opened N times, so that the new pass's mails are not taken for the earlier ones)."""
        assert self.id is not None, "the store assigns the id before collecting notifications"
        prefix = f"{self.id}:r{self.reopened}" if self.reopened else str(self.id)
        return [replace(n, key=f"{prefix}:{n.key}", request_id=self.id) for n in self._outgoing]

    def clear_pending(self) -> None:
        self._events.clear()
        self._outgoing.clear()

    def allowed_commands(self) -> tuple[Command, ...]:
        """What the lifecycle table allows now (guards aside)."""
        return lifecycle.allowed_commands(self.state)

    def notification(self, suffix: str, template: str, to: list[Recipient], subject: str,
                     context: dict[str, Any] | None = None, calendar: CalendarItem | None = None) -> Notification:
        """A notification about this request: ``context`` on top of the request and its people."""
        base = {"request": {"id": self.id, "title": self.intake.title, "state": self.state.value},
                "requester": {"name": self.intake.requester.name, "email": self.intake.requester.email},
                "sponsor": {"name": self.intake.sponsor.name, "email": self.intake.sponsor.email}}
        base.update(context or {})
        return Notification(key=suffix, request_id=self.id or 0, template=template, to=tuple(to), subject=subject,
                            context=base, calendar=calendar)

    def _notify(self, suffix: str, template: str, to: list[Recipient], subject: str,
                context: dict[str, Any] | None = None, calendar: CalendarItem | None = None) -> None:
        self._outgoing.append(self.notification(suffix, template, to, subject, context, calendar))

    def _require(self, command: Command) -> None:
        """The one check against the lifecycle table (raises when the state does not allow ``command``)."""
        lifecycle.require(command, self.state)

    def _move(self, event: ev.TransitionEvent, missing: list[str], at: datetime) -> None:
        """After ``_require``: refuse when the guard found anything ``missing``, else fire the event's trigger
        from the current state and record the event."""
        if missing:
            raise TransitionRefused(event.trigger.value, self.state.value, missing)
        self.state = lifecycle.fire(self.state, event.trigger)
        self.updated_at = at
        self._events.append(event)

    def _stakeholders(self) -> list[Recipient]:
        return recipients([self.intake.sponsor, self.intake.requester, *self.intake.stakeholders])

    # --- commands ----------------------------------------------------------------------------------

    @classmethod
    def submit(cls, intake: Intake, at: datetime, thread: tuple[str, ...] = (),
               acknowledge: bool = True) -> TrainingRequest:
        """A new request, received as the requester put it; ``thread`` (a mailed-in request: its
        References and its Message-ID) threads the acknowledgement under the requester's mail;
        ``acknowledge=False`` queues no acknowledgement (a mailed-in request from a sender who is
        neither authenticated nor trusted: the mail would deliver their text to whoever they named)."""
        request = cls(intake=intake, created_at=at, updated_at=at)
        request._events.append(ev.Submitted(intake=intake.model_dump(mode="json")))
        context: dict[str, Any] = {"requested_solution": intake.requested_solution}
        goal = intake.business_goal
        answered = [name for name, given in (
            ("business_result", bool(goal.metric) and goal.target_value is not None),
            ("behaviour_change", intake.behaviour_change),
            ("audience", intake.audience.description), ("tried", intake.tried_already),
            ("success", intake.success_signs)) if given]
        if answered:
            context["questions_answered"] = answered
        if thread:
            context.update(in_reply_to=thread[-1], references=list(thread))
        if acknowledge:
            request._notify("intake_acknowledgement", "intake_acknowledgement", [recipient(intake.requester)],
                            f"We've got your request: {intake.title}", context)
        return request

    def diagnose(self, diagnosis: Diagnosis, at: datetime) -> None:
        self._require(Command.DIAGNOSE)
        recommendations = recommend(diagnosis)
        recs = [r.model_dump() for r in recommendations]
        self._move(ev.Diagnosed(from_state=self.state, diagnosis=diagnosis.model_dump(mode="json"),
                                recommendations=tuple(recs)), guards.diagnose(self, diagnosis), at)
        goal = self.intake.business_goal.merged(diagnosis.business_goal)
        self.intake = self.intake.model_copy(update={"business_goal": goal})
        self.diagnosis = diagnosis
        self.recommendations = recommendations
        self._notify(f"diagnosis_summary:v{self.version + 1}", "diagnosis_summary", self._stakeholders(),
                     f"Diagnosis: {self.intake.title}",
                     {"recommendations": recs, "observable_actions": list(diagnosis.observable_actions),
                      "business_goal": goal.model_dump(mode="json"), "summary": diagnosis.summary})

    def rediagnose(self, diagnosis: Diagnosis, reason: Reason, at: datetime) -> None:
        """Diagnose a diagnosed request again, with a reason (states.revisions)."""
        self._record(*revisions.rediagnose(self, diagnosis, reason, at))

    def draft_plan(self, plan: MeasurementPlan, at: datetime) -> None:
        """Draft the plan, or a new version of the approved one; either needs the sponsor's approval."""
        self._record(*revisions.draft(self, plan, at))

    def approve_plan(self, approval: PlanApproval, at: datetime, actor: str | None = None,
                     admin: bool = False) -> None:
        """The sponsor approves the drafted plan or the waiting revision (every missing item at once);
        ``actor``, when given, must be the sponsor or an admin recording it on their behalf with a reason."""
        self._record(*revisions.approve(self, approval, at, actor, admin))

    def stamp_via(self, via: str) -> None:
        """Mark the pending events as having come through ``via`` (web, cli, link, reply…)."""
        self._events[:] = [e if e.via else replace(e, via=via) for e in self._events]

    def ask_for_approval_again(self, at: datetime, why: str) -> None:
        """The approval request of the plan waiting for the sponsor, sent again (states.revisions)."""
        self._record(*revisions.ask_again(self, at, why))

    def _record(self, events: list[ev.DomainEvent], notifications: list[Notification]) -> None:
        self._events.extend(events)
        self._outgoing.extend(notifications)

    def design(self, brief: DesignBrief, at: datetime) -> None:
        self._require(Command.DESIGN)
        self._move(ev.Designed(from_state=self.state, brief=brief.model_dump(mode="json")),
                   guards.design(self, brief), at)
        self.brief = brief

    def redirect(self, redirect: Redirect, at: datetime) -> None:
        self._require(Command.REDIRECT)
        self._move(ev.Redirected(from_state=self.state, redirect=redirect.model_dump(mode="json")),
                   guards.redirect(self, redirect), at)
        self.redirect_record = redirect
        self._outgoing.extend(n for n in [mails.redirect_assigned(self, redirect)] if n is not None)

    def schedule_session(self, plan: SessionPlan, at: datetime) -> Session:
        """Schedule (or reschedule) a delivery session and invite its attendees (iMIP REQUEST)."""
        self._require(Command.SCHEDULE_SESSION)
        session_id = plan.id or f"s{len(self.sessions) + 1}"
        plan = plan.model_copy(update={"id": session_id})
        existing = next((x for x in self.sessions if x.plan.id == session_id), None)
        if existing is not None and existing.cancelled:
            raise TransitionRefused("reschedule", self.state.value,
                                    [f"session '{session_id}' was cancelled; schedule it under a new id"])
        event: ev.SessionScheduled | ev.SessionRescheduled
        if existing is None:
            session = Session(plan=plan)
            self.sessions.append(session)
            event = ev.SessionScheduled(session=plan.model_dump(mode="json"), sequence=session.sequence)
        else:
            existing.plan, existing.sequence = plan, existing.sequence + 1
            session = existing
            event = ev.SessionRescheduled(session=plan.model_dump(mode="json"), sequence=session.sequence)
        self.updated_at = at
        self._events.append(event)
        self._invite(session, "REQUEST")
        return session

    def _invite(self, session: Session, method: str, reason: str = "") -> None:
        plan = session.plan
        attendees = [recipient(p) for p in
                     plan.attendees or [self.intake.audience.contact or self.intake.requester]]
        item = CalendarItem(uid=f"ldflow-{self.id}-session-{plan.id}@ldflow", kind="event", summary=plan.title,
                            start=plan.start.isoformat(), end=plan.end.isoformat(),
                            description=plan.preparation, location=plan.location,
                            organizer=recipient(plan.organizer) if plan.organizer else None,
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
        self._require(Command.DELIVER)
        self._move(ev.Delivered(from_state=self.state, delivery=delivery.model_dump(mode="json", exclude={"roster"})),
                   guards.deliver(self, delivery), at)
        self.delivery = delivery.model_copy(update={"roster": None})
        if delivery.roster is not None:
            self.set_roster(delivery.roster, at)
        assert self.plan is not None and delivery.end_date is not None and self.id is not None
        for c in schedule(self.id, self.plan, delivery.end_date):
            self.checkpoints.append(c)
            self._events.append(ev.CheckpointScheduled(checkpoint=c.key, item=c.item_id, offset=c.offset,
                                                       due_at=c.due_at.isoformat()))
        self._outgoing.append(mails.request_delivered(self))

    def checkpoint(self, key: str) -> Checkpoint:
        for c in self.checkpoints:
            if c.key == key or c.key == f"{self.id}:{key}":
                return c
        known = ", ".join(c.key for c in self.checkpoints) or "none scheduled yet"
        raise NotFound(f"checkpoint {key!r} of request {self.id} (known: {known})")

    def record_result(self, key: str, result: CheckpointResult, at: datetime) -> None:
        """Record a checkpoint's result, or close it as missed with a reason."""
        checkpoint = self.checkpoint(key)
        self._require(Command.RECORD_RESULT)
        if checkpoint.closed:
            lifecycle.refuse(Command.RECORD_RESULT, self.state,
                             [f"an open checkpoint ({checkpoint.key} is already {checkpoint.status.value})"])
        if result.value is not None and checkpoint.early(at) and not result.early_reason.strip():
            lifecycle.refuse(Command.RECORD_RESULT, self.state, [
                f"a checkpoint that is due ({checkpoint.key} is due on {checkpoint.due_at.date().isoformat()}; "
                "to correct it before then, give early_reason (--early REASON)"])
        checkpoint.closed_at = at
        checkpoint.note = result.note
        if result.value is not None:
            checkpoint.status = CheckpointStatus.CLOSED
            checkpoint.value = result.value
            checkpoint.comparison_value = result.comparison_value
            early = result.early_reason.strip() if checkpoint.early(at) else ""
            checkpoint.early_reason = early
            self._events.append(ev.ResultRecorded(checkpoint=checkpoint.key, value=result.value, note=result.note,
                                                  comparison_value=result.comparison_value, early_reason=early,
                                                  due_at=checkpoint.due_at.isoformat() if early else ""))
        else:
            checkpoint.status = CheckpointStatus.MISSED
            checkpoint.missed_reason = result.missed_reason
            self._events.append(ev.CheckpointMissed(checkpoint=checkpoint.key, reason=result.missed_reason))
        self.updated_at = at

    def measure(self, at: datetime) -> None:
        """Close measurement: compare each plan item's latest result with its target."""
        self._require(Command.MEASURE)
        compared, roi = results.compare(self.plan, self.checkpoints)
        self._move(ev.Measured(from_state=self.state, results=tuple(r.model_dump(mode="json") for r in compared),
                               roi=roi.model_dump(mode="json") if roi else None), guards.measure(self), at)
        self.results = compared
        self.roi = roi

    def acknowledge(self, ack: Acknowledgement, at: datetime) -> None:
        """Close the loop: recap, action plan, contributions; the report goes to the stakeholders."""
        self._require(Command.ACKNOWLEDGE)
        self._move(ev.Acknowledged(from_state=self.state, acknowledgement=ack.model_dump(mode="json")),
                   guards.acknowledge(self, ack), at)
        self.acknowledgement = ack
        self._outgoing.extend([results_report(self), *followups.steps_assigned(self)])

    def decline(self, reason: Reason, at: datetime) -> None:
        self._require(Command.DECLINE)
        self._move(ev.Declined(from_state=self.state, reason=reason.reason), guards.reason("decline", reason), at)
        self.closing_reason = reason.reason
        self._outgoing.append(mails.request_declined(self, reason.reason))

    def cancel(self, reason: Reason, at: datetime) -> None:
        self._require(Command.CANCEL)
        self._move(ev.Cancelled(from_state=self.state, reason=reason.reason), guards.reason("cancel", reason), at)
        self.closing_reason = reason.reason
        mix.close_all(self, reason.reason, at)
        self._notify("request_cancelled", "request_cancelled", self._stakeholders(),
                     f"Cancelled: {self.intake.title}", {"reason": reason.reason})
        for session in self.sessions:
            if not session.cancelled:
                session.cancelled, session.sequence = True, session.sequence + 1
                self._events.append(ev.SessionCancelled(session=session.plan.id, sequence=session.sequence))
                self._invite(session, "CANCEL", reason.reason)
        for c in self.checkpoints:
            if not c.closed:
                c.status = CheckpointStatus.MISSED
                c.missed_reason = f"request cancelled: {reason.reason}"
                c.closed_at = at

    def add_note(self, text: str, at: datetime, source: str = "") -> None:
        self._require(Command.ADD_NOTE)
        if not text.strip():
            raise InvalidInput([FieldError("text", "a note cannot be empty")])
        self.updated_at = at
        self._events.append(ev.NoteAdded(text=text.strip(), source=source))

    # --- follow-ups (driven by the pipeline; the rules are in states.checkpoints) --------------------

    def due_checkpoints(self, now: datetime) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.is_due(now)]

    def send_checkpoint(self, key: str, at: datetime, lateness: timedelta) -> bool:
        """Queue the survey for a due checkpoint (once); flag it for review when far too late. Returns
        True when a survey was queued. ``send_checkpoints`` sends several due ones in one mail per person."""
        return self.send_checkpoints([key], at, lateness) == 1

    def send_checkpoints(self, keys: list[str], at: datetime, lateness: timedelta) -> int:
        return surveys.send_due(self, keys, at, lateness)

    def remind_checkpoint(self, key: str, at: datetime, after: timedelta, max_reminders: int) -> bool:
        """Remind who has not answered a survey (``after`` since the last reminder, at most ``max_reminders``)."""
        return surveys.remind_due(self, [key], at, after, max_reminders) == 1

    def answer(self, key: str, email: str, value: float, note: str, at: datetime, via: str = "") -> None:
        """A respondent's answer to a group survey (states.surveys)."""
        surveys.answer(self, key, email, value, note, at, via)

    def set_roster(self, roster: Roster, at: datetime) -> None:
        """Give or change the delivery's roster; the event says what changed."""
        self._require(Command.SET_ROSTER)
        empty = Roster.model_construct(learners=[], teams=[])
        changes = (self.roster or empty).changes(roster)
        if self.roster is not None and roster == self.roster:
            return
        self.roster, self.updated_at = roster, at
        self._events.append(ev.RosterSet(learners=len(roster.learners), added=tuple(changes["added"]),
                                         removed=tuple(changes["removed"]), changed=tuple(changes["changed"])))

    def _item(self, c: Checkpoint) -> PlanItem:
        assert self.plan is not None
        return next(i for i in self.plan.items if i.id == c.item_id)
