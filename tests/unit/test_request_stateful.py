"""A TrainingRequest driven through random commands, valid and invalid (hypothesis stateful testing).

Each step loads the request from the in-memory store, runs one aggregate
command and, when it succeeds, saves it. Invariants checked after every step:
no path skips a state, redirect and design exclude each other (within one
pass: a re-opened request starts a new one), terminal states stay terminal
unless re-opened by the documented transition (acknowledged never), the
sponsor of the moment (after any amendment) is the one who may approve a
pending plan, a successful command adds exactly 1 to the version, and a
refused one changes nothing at all; one approved plan version is in force at a time (approved
versions only grow; a revision waits beside it) and the open checkpoints follow the plan in force;
the pieces of a solution mix are unique, closed once (a dropped one with its reason), none open in a
cancelled request, each added and reminded at most once in its pass, and none in a received request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from connectors.testing import InMemoryStore
from states import amendments, companions, followups, lifecycle, reopening
from states.amendments import Amendment
from states.errors import InvalidInput, InvalidTransition, LdflowError, NotFound, TransitionRefused
from states.lifecycle import EVENT_OF, TERMINAL, TRANSITIONS, State, Trigger
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
)
from states.request import TrainingRequest
from states.validation import parse
from tests.builders import (
    ACTOR,
    REQUESTER,
    SPONSOR,
    T0,
    ack_data,
    brief_data,
    cause_checks,
    companion_data,
    delivery_data,
    diagnosis_data,
    emailed_steps,
    intake_data,
    plan_data,
    plan_item,
    redirect_data,
    result_data,
)

TABLE = {(source, dest) for _t, sources, dest in TRANSITIONS for source in sources}
TRANSITION_EVENTS = set(EVENT_OF.values())

DIAGNOSES = st.sampled_from([
    diagnosis_data(skill_gap=True), diagnosis_data(skill_gap=False), diagnosis_data(observable_actions=[]),
    diagnosis_data(cause_checks=cause_checks(answer_all=False)),
    diagnosis_data(observable_actions=["understand the product"]),  # invalid input: vague verb
])
PLANS = st.sampled_from([plan_data(), plan_data(baseline=False), plan_data(costs=False),
                         {"items": [{"metric": "x"}]}])  # the last one is invalid input
# Revisions: fewer offsets (checkpoints superseded), a new item (new checkpoints), the original back.
REVISIONS = st.sampled_from([
    {"items": [plan_item("m1", checkpoints=["P30D"])]},
    {"items": [plan_item("m1"), plan_item("m3", level=1, baseline=False, checkpoints=["P7D", "P60D"])]},
    plan_data(),
])
APPROVERS = st.sampled_from([SPONSOR, REQUESTER, "not an address"])
BRIEFS = st.sampled_from([brief_data(), {}, brief_data(skill_gap_override="sponsor insists on a refresher")])
REDIRECTS = st.sampled_from([redirect_data(), {}, redirect_data(kind="job_aid"), {"kind": "magic"}])
DELIVERIES = st.sampled_from([delivery_data(), {}, delivery_data(days=0), {"start_date": "soon"}])
RESULTS = st.sampled_from([result_data(70.0), result_data(55.5, note="manager estimate"),
                           result_data(None, "nobody answered", note="two reminders sent"), {}])
ACKS = st.sampled_from([ack_data(), {}, ack_data(recap=[]),
                        ack_data(action_plan=[{"step": "follow up in Q3"}]), emailed_steps()])
# Companion pieces: valid ones (an id given or not, a near due date), an unknown kind, an invalid owner address.
PIECES = st.sampled_from([
    companion_data(), companion_data(kind="design", what="a 30-minute practice", due="2026-03-10"),
    companion_data(id="card", kind="incentive_change", what="fix the bonus scheme"),
    companion_data(kind="webinar"),  # invalid input: unknown kind
    companion_data(owner={"name": "Ana", "email": "ana lopez"}),  # invalid input: the owner's address
])
PIECE_IDS = st.sampled_from(["c1", "c2", "card", "c9"])
REASONS = st.sampled_from([{"reason": "budget frozen"}, {"reason": "merged with another request"}, {},
                           {"reason": ""}, {"reason": "   "}, {"why": "x"}])
_NEW_SPONSOR = {"name": "Lee Park", "email": "lee.park@example.org"}
AMENDMENTS = st.sampled_from([
    {"reason": "Dana moved to finance", "sponsor": _NEW_SPONSOR},
    {"reason": "back to the original sponsor", "sponsor": {"name": "Sam Sponsor", "email": SPONSOR}},
    {"reason": "typo", "title": "Discovery practice for the sales team"},
    {"reason": "Olga took over", "items": {"m1": {"owner": {"name": "Olga", "email": "olga@example.org"}}}},
    {"reason": "ask the managers", "items": {"m1": {"respondent": "manager"}}},
    {"reason": "Lena owns it now", "redirect_owner": {"name": "Lena", "email": "lena@example.org"}},
    {"reason": "", "title": "A title nobody gave a reason for"},  # refused: no reason
    {"reason": "bad address", "sponsor": {"name": "Lee", "email": "lee park"}},  # invalid input
    {"reason": "nothing"},  # invalid input: nothing to amend
])


class RequestLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store: Any = self.make_store()
        self.now = T0
        request = TrainingRequest.submit(parse(Intake, intake_data()), self.now)
        self.rid = self.store.add(request, ACTOR).id
        assert self.rid is not None
        self.version = 1
        self.ever_terminal: State | None = None
        self.reopens = 0
        self.last_error: LdflowError | None = None

    def make_store(self) -> Any:
        """The store under test (a subclass runs the same machine on a real database)."""
        return InMemoryStore()

    def snapshot(self) -> Any:
        """Everything the store holds, to compare before and after a refused command."""
        return self.store.snapshot()

    # --- one command: load, run, save on success; a refusal must leave everything as it was --------------

    def run(self, apply: Callable[[TrainingRequest, datetime], Any], trigger: Trigger | None = None) -> bool:
        request = self.store.get(self.rid)
        state = request.state
        before = request.model_dump()
        stored = self.snapshot()
        try:
            outcome = apply(request, self.now)
        except (InvalidInput, TransitionRefused, NotFound) as exc:
            self.last_error = exc
            assert request.model_dump() == before
            assert request.pending_events() == [] and request.pending_notifications() == []
            assert self.snapshot() == stored  # document, version, events, timers, outbox
            if trigger is not None and trigger not in lifecycle.allowed_triggers(state) \
                    and not isinstance(exc, InvalidInput):  # input is parsed before the lifecycle is asked
                assert isinstance(exc, InvalidTransition)
                assert set(exc.allowed) == {t.value for t in lifecycle.allowed_triggers(state)}
            return False
        if trigger is not None:
            # The table decides: a trigger the state does not allow can never succeed.
            assert trigger in lifecycle.allowed_triggers(state)
            assert request.state == lifecycle.fire(state, trigger)
        if outcome is False and not request.pending_events():
            return False  # a follow-up that had nothing to do: nothing to save
        saved = self.store.save(request, ACTOR)
        assert saved.version == self.version + 1
        self.version += 1
        event(f"reached {saved.state.value}")
        return True

    # --- rules ------------------------------------------------------------------------------------------

    @rule(design=st.booleans())
    def next_step(self, design: bool) -> None:
        """The valid next command for the current state, so that runs get deep into the lifecycle."""
        request = self.store.get(self.rid)
        state = request.state
        if state == State.RECEIVED:
            self.diagnose(diagnosis_data(skill_gap=design))
        elif state == State.DIAGNOSED and request.plan is None:
            self.draft_plan(plan_data())
        elif state == State.DIAGNOSED and request.plan_approved_by is None:
            self.approve_plan(SPONSOR)
        elif state == State.DIAGNOSED:
            if design:
                self.design(brief_data(skill_gap_override="the sponsor asked for a refresher"))
            else:
                self.redirect(redirect_data())
        elif state in (State.DESIGNED, State.REDIRECTED):
            self.deliver(delivery_data())
        elif state == State.DELIVERED and request.plan_draft is not None:
            self.approve_plan(SPONSOR)
        elif state == State.DELIVERED and request.plan_version < 2 and design:  # a revision after delivery
            self.revise_plan({"items": [plan_item("m1", checkpoints=["P30D"]),
                                        plan_item("m3", level=1, baseline=False, checkpoints=["P7D"])]})
        elif state == State.DELIVERED:
            open_ = [c.key for c in request.checkpoints if not c.closed]
            if open_:
                self.record(0, result_data(72.0), key=open_[0])
            else:
                self.measure()
        elif state == State.MEASURED:
            self.acknowledge(ack_data())

    @rule(data=DIAGNOSES)
    def diagnose(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.diagnose(parse(Diagnosis, data), at), Trigger.DIAGNOSE)

    @rule(data=PLANS)
    def draft_plan(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.draft_plan(parse(MeasurementPlan, data), at))

    @rule(data=REVISIONS)
    def revise_plan(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.draft_plan(parse(MeasurementPlan, data), at))

    @rule(data=DIAGNOSES, why=REASONS)
    def rediagnose(self, data: dict[str, Any], why: dict[str, Any]) -> None:
        self.run(lambda r, at: r.rediagnose(parse(Diagnosis, data), parse(Reason, why), at))

    @rule(approver=APPROVERS)
    def approve_plan(self, approver: str) -> None:
        self.run(lambda r, at: r.approve_plan(parse(PlanApproval, {"approver": approver}), at))

    @rule(data=BRIEFS)
    def design(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.design(parse(DesignBrief, data), at), Trigger.DESIGN)

    @rule(data=REDIRECTS)
    def redirect(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.redirect(parse(Redirect, data), at), Trigger.REDIRECT)

    @rule(data=DELIVERIES)
    def deliver(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.deliver(parse(Delivery, data), at), Trigger.DELIVER)

    @rule(pick=st.integers(0, 5), data=RESULTS)
    def record(self, pick: int, data: dict[str, Any], key: str = "") -> None:
        keys = [c.key for c in self.store.get(self.rid).checkpoints] + ["m9:P7D"]
        key = key or keys[pick % len(keys)]
        self.run(lambda r, at: r.record_result(key, parse(CheckpointResult, data), at))

    @rule(days=st.integers(1, 120))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)

    @rule(days=st.integers(1, 6))
    def a_few_days_pass(self, days: int) -> None:  # so that a piece's reminder window is reached
        self.now += timedelta(days=days)

    @rule()
    def send_due_checkpoints(self) -> None:
        for c in self.store.get(self.rid).due_checkpoints(self.now):
            self.run(lambda r, at, key=c.key: r.send_checkpoint(key, at, timedelta(days=14)))

    @rule()
    def measure(self) -> None:
        self.run(lambda r, at: r.measure(at), Trigger.MEASURE)

    @rule(data=ACKS)
    def acknowledge(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.acknowledge(parse(Acknowledgement, data), at), Trigger.ACKNOWLEDGE)

    @rule(data=REASONS)
    def decline(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.decline(parse(Reason, data), at), Trigger.DECLINE)

    @rule(data=REASONS)
    def cancel(self, data: dict[str, Any]) -> None:
        self.run(lambda r, at: r.cancel(parse(Reason, data), at), Trigger.CANCEL)

    @rule(data=REASONS)
    def reopen(self, data: dict[str, Any]) -> None:
        if self.run(lambda r, at: reopening.reopen(r, parse(Reason, data), at), Trigger.REOPEN):
            event("re-opened")

    @rule(data=AMENDMENTS)
    def amend(self, data: dict[str, Any]) -> None:
        if self.run(lambda r, at: amendments.amend(r, parse(Amendment, data), at)):
            event("amended")

    @rule(data=PIECES)
    def add_companion(self, data: dict[str, Any]) -> None:
        if self.run(lambda r, at: companions.add(r, parse(companions.CompanionPiece, data), at)):
            event("companion piece added")

    @rule(piece=PIECE_IDS, outcome=st.sampled_from(["", "printed"]))
    def complete_companion(self, piece: str, outcome: str) -> None:
        self.run(lambda r, at: companions.done(r, piece, outcome, at))

    @rule(piece=PIECE_IDS, why=st.sampled_from(["not needed after all", "", "  "]))
    def drop_companion(self, piece: str, why: str) -> None:
        self.run(lambda r, at: companions.drop(r, piece, why, at))

    @rule()
    def remind_owners(self) -> None:
        if self.run(lambda r, at: followups.remind(r, at, timedelta(days=3)) > 0):
            event("an owner reminded")

    @rule(text=st.sampled_from(["Sponsor called: budget confirmed.", "   ", ""]))
    def add_note(self, text: str) -> None:
        self.run(lambda r, at: r.add_note(text, at))

    # The happy path twice more, so that most runs get past design into measurement.
    next_step_again = rule(design=st.booleans())(lambda self, design: self.next_step(design))
    next_step_once_more = rule(design=st.booleans())(lambda self, design: self.next_step(design))

    # --- invariants (one method: loading the request once per step keeps the suite fast) --------------

    @invariant()
    def invariants_hold(self) -> None:
        request = self.store.get(self.rid)
        history = self.store.history(self.rid)

        # version: exactly one per successful command
        assert request.version == self.version
        assert max(e.version for e in history) == self.version

        # no path skips a state: every move is a row of the table, and the moves connect
        state = State.RECEIVED
        for e in history:
            if e.type not in TRANSITION_EVENTS:
                assert e.from_state is None and e.to_state is None and e.trigger is None
                continue
            assert e.trigger is not None and EVENT_OF[Trigger(e.trigger)] == e.type
            assert (State(e.from_state), State(e.to_state)) in TABLE
            assert State(e.from_state) == state, "transitions must connect"
            state = State(e.to_state)
        assert state == request.state

        # redirect and design exclude each other, within each pass (a re-opening starts a new one)
        passes: list[set[str]] = [set()]
        for e in history:
            if e.type == "reopened":
                passes.append(set())
            passes[-1].add(e.type)
        assert all(not {"redirected", "designed"} <= types for types in passes)
        assert request.brief is None or request.redirect_record is None

        # terminal states stay terminal, unless re-opened by the documented transition (acknowledged never)
        for e in history:
            if e.from_state is not None and State(e.from_state) in TERMINAL:
                assert e.type == "reopened" and e.from_state != State.ACKNOWLEDGED
                assert State(e.to_state) == State.RECEIVED
        reopens = sum(1 for e in history if e.type == "reopened")
        if self.ever_terminal is not None and request.state != self.ever_terminal:
            assert self.ever_terminal != State.ACKNOWLEDGED
            assert reopens == self.reopens + 1 and request.state == State.RECEIVED
        self.reopens = reopens
        self.ever_terminal = request.state if request.state in TERMINAL else None

        # one approved plan version in force: approvals only go up, the last one is the plan's
        approved = [1 if e.type == "plan_approved" else e.payload["version"] for e in history
                    if e.type in ("plan_approved", "plan_revision_approved")]
        assert approved == sorted(set(approved))
        if request.plan_approved_by is not None:
            assert request.plan is not None and approved and approved[-1] == request.plan_version
        if request.plan_draft is not None:  # a revision waits only beside an approved version
            assert request.plan_approved_by is not None and request.plan_draft.version == request.plan_version + 1
        if request.plan_version > 1 and request.delivery is not None:
            event("a plan revision approved after delivery")
        if request.plan is not None:
            pairs = {(i.id, o) for i in request.plan.items for o in i.checkpoints}
            assert all((c.item_id, c.offset) in pairs for c in request.checkpoints if not c.closed)


        # a solution mix: pieces unique, closed once, none open once cancelled, none before the diagnosis
        pieces = request.companions
        assert len({c.id for c in pieces}) == len(pieces)
        for c in pieces:
            assert (c.status == companions.CompanionStatus.OPEN) == (c.closed_at is None)
            assert c.status != companions.CompanionStatus.DROPPED or c.reason
            assert c.reminder == "none" if c.status != companions.CompanionStatus.OPEN else c.reminder != "none"
        if request.state == State.CANCELLED:
            assert not companions.open_pieces(request)
        if request.state == State.RECEIVED:
            assert pieces == []
        this_pass = history[max((i for i, e in enumerate(history) if e.type == "reopened"), default=-1) + 1:]
        added = [e.payload["piece"]["id"] for e in this_pass if e.type == "companion_added"]
        assert sorted(added) == sorted(c.id for c in pieces)
        reminded = [e.payload["piece"] for e in this_pass if e.type == "companion_reminded"]
        assert len(reminded) == len(set(reminded)) and set(reminded) == {c.id for c in pieces if c.reminder == "sent"
                                                                             or (c.closed_at and c.id in reminded)}
        steps = [e.payload["step"] for e in this_pass if e.type == "action_step_reminded"]
        assert len(steps) == len(set(steps))

        # the one who may approve a pending plan is the sponsor of the moment, and nobody else
        if request.plan is not None and request.plan_approved_by is None and request.state in (
                State.RECEIVED, State.DIAGNOSED):
            others = {SPONSOR, "lee.park@example.org", REQUESTER} - {request.intake.sponsor.email}
            for other in sorted(others):
                with pytest.raises(TransitionRefused):
                    request.approve_plan(parse(PlanApproval, {"approver": other}), self.now)
            request.approve_plan(parse(PlanApproval, {"approver": request.intake.sponsor.email}), self.now)
            # (not saved: the request is loaded afresh at every step)

    def teardown(self) -> None:
        assert self.store.verify().ok


RequestLifecycle.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestRequestLifecycle = RequestLifecycle.TestCase
