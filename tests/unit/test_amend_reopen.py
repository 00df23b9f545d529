"""Amending an open request and re-opening a declined or cancelled one, on the in-memory fakes:
the states each command is allowed in (table-driven), the before/after in the event, the sponsor
rule both ways, the new pass after a re-opening, and refusals that write nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from flows.timeline import summarize
from states import lifecycle
from states.errors import InvalidInput, InvalidTransition, TransitionRefused
from states.lifecycle import Command, State
from tests.builders import (
    ACTOR,
    SPONSOR,
    approval_data,
    brief_data,
    companion_data,
    delivery_data,
    diagnosis_data,
    drive_to,
    intake_data,
    plan_data,
    reason_data,
)

NEW_SPONSOR = {"name": "Lee Park", "email": "lee.park@example.org", "role": "VP Sales"}
AMEND_STATES = [State.RECEIVED, State.DIAGNOSED, State.DESIGNED, State.REDIRECTED, State.DELIVERED,
                State.MEASURED]
CLOSED = [State.ACKNOWLEDGED, State.DECLINED, State.CANCELLED]


def _in(service: Service, state: State) -> int:
    return int(drive_to(service, state.value, path="redirect" if state == State.REDIRECTED else "design").id)


def _unchanged(store: InMemoryStore, run: Callable[[], Any], error: type[Exception]) -> Exception:
    """Run a command that must be refused; the store (documents, events, timers, outbox) is as it was."""
    before = store.snapshot()
    with pytest.raises(error) as info:
        run()
    assert store.snapshot() == before
    return info.value


# --- the table ------------------------------------------------------------------------------------

def test_the_table_states_where_amend_and_reopen_run() -> None:
    assert {s for s in State if lifecycle.allows(Command.AMEND, s)} == set(AMEND_STATES)
    assert {s for s in State if lifecycle.allows(Command.REOPEN, s)} == {State.DECLINED, State.CANCELLED}
    assert lifecycle.DESTINATION[lifecycle.Trigger.REOPEN] == State.RECEIVED


@pytest.mark.parametrize("state", AMEND_STATES, ids=[s.value for s in AMEND_STATES])
def test_amend_runs_in_every_open_state(memory_service: Service, state: State) -> None:
    rid = _in(memory_service, state)
    before = memory_service.show(rid)
    after = memory_service.amend(rid, {"reason": "typo in the title", "title": "Discovery practice, EMEA"}, ACTOR)
    assert after.state == state and after.version == before.version + 1
    assert after.intake.title == "Discovery practice, EMEA"
    last = memory_service.history(rid)[-1]
    assert (last.type, last.trigger, last.from_state, last.to_state) == ("amended", None, None, None)
    assert last.payload == {"reason": "typo in the title", "changes": {
        "title": {"before": before.intake.title, "after": "Discovery practice, EMEA"}}}


@pytest.mark.parametrize("state", CLOSED, ids=[s.value for s in CLOSED])
def test_amend_is_refused_on_a_closed_request_and_writes_nothing(memory_service: Service, state: State) -> None:
    rid = _in(memory_service, state)
    refused = _unchanged(memory_service.store, lambda: memory_service.amend(  # type: ignore[arg-type]
        rid, {"reason": "Dana left", "sponsor": NEW_SPONSOR}, ACTOR), TransitionRefused)
    assert refused.exit_code == 3
    assert str(refused).startswith(f"cannot amend a{'n' if state == State.ACKNOWLEDGED else ''} {state.value} "
                                   "request; missing: an open request")


@pytest.mark.parametrize("state", list(State), ids=[s.value for s in State])
def test_reopen_runs_only_from_declined_or_cancelled(memory_service: Service, state: State) -> None:
    rid = _in(memory_service, state)
    if state not in (State.DECLINED, State.CANCELLED):
        refused = _unchanged(memory_service.store, lambda: memory_service.reopen(  # type: ignore[arg-type]
            rid, reason_data("budget back"), ACTOR), InvalidTransition)
        assert "reopen" not in refused.allowed and refused.exit_code == 3  # type: ignore[attr-defined]
        return
    after = memory_service.reopen(rid, reason_data("the budget came through"), ACTOR)
    assert after.state == State.RECEIVED and after.closing_reason == "" and after.reopened == 1
    types = [e.type for e in memory_service.history(rid)]
    assert types[-2:] == [state.value, "reopened"]  # the history keeps both
    last = memory_service.history(rid)[-1]
    assert (last.trigger, last.from_state, last.to_state) == ("reopen", state.value, "received")
    assert last.payload == {"reason": "the budget came through"}
    assert summarize(last) == "re-opened: the budget came through"


@pytest.mark.parametrize("data", [{}, {"reason": ""}, {"reason": "   "}])
def test_reopen_needs_a_reason(memory_service: Service, data: dict[str, Any]) -> None:
    rid = _in(memory_service, State.DECLINED)
    refused = _unchanged(memory_service.store, lambda: memory_service.reopen(  # type: ignore[arg-type]
        rid, data, ACTOR), TransitionRefused)
    assert refused.missing == ["a reason to reopen"]  # type: ignore[attr-defined]


# --- re-opening starts a new pass -------------------------------------------------------------------

def test_a_reopened_cancelled_request_goes_round_again_and_keeps_what_was_closed(memory_service: Service) -> None:
    rid = _in(memory_service, State.DELIVERED)
    memory_service.cancel(rid, reason_data("the region merged"), ACTOR)
    cancelled = memory_service.show(rid)
    timers = {k: t for k, t in memory_service.store._timers.items()}  # type: ignore[attr-defined]
    assert all(t.status == "missed" for t in timers.values())
    request = memory_service.reopen(rid, reason_data("the merged region wants it after all"), ACTOR)
    assert request.diagnosis is None and request.brief is None and request.delivery is None
    assert request.checkpoints == [] and request.plan == cancelled.plan  # the plan (and its approval) stay
    assert request.plan_approved_by == cancelled.plan_approved_by
    # the closed timers stay closed: nothing is due for the pipeline
    assert memory_service.store.due_checkpoints(cancelled.updated_at.replace(year=2030)) == []
    request = memory_service.diagnose(rid, diagnosis_data(), ACTOR)
    request = memory_service.design(rid, brief_data(), ACTOR)
    assert request.state == State.DESIGNED
    keys = set(memory_service.store.outbox)  # type: ignore[attr-defined]
    assert f"{rid}:r1:diagnosis_summary:v{request.version - 1}" in keys
    # delivered again: its own checkpoints (the same keys, scheduled anew) and surveys that go out
    request = memory_service.deliver(rid, delivery_data(), ACTOR)
    assert [c.status.value for c in request.checkpoints] == ["scheduled"] * len(request.checkpoints)
    memory_service.clock.set(max(c.due_at for c in request.checkpoints))  # type: ignore[attr-defined]
    assert memory_service.send_due_checkpoints(ACTOR, timedelta(days=400))["sent"] == len(request.checkpoints)
    surveys = [k for k in memory_service.store.outbox if ":survey:" in k]  # type: ignore[attr-defined]
    assert surveys and all(k.startswith(f"{rid}:r1:survey:") for k in surveys)


def test_a_survey_answer_to_a_reopened_requests_mail_finds_its_checkpoint() -> None:
    from flows.intake import checkpoint_of

    assert checkpoint_of(5, "5:survey:m1:P30D") == "5:m1:P30D"
    assert checkpoint_of(5, "5:r1:survey:m1:P30D") == "5:m1:P30D"
    assert checkpoint_of(5, "5:r2:survey_reminder:m1:P30D:1") == "5:m1:P30D"
    assert checkpoint_of(5, "5:r1:plan_approval_request:v3") is None


def test_a_second_decline_after_reopening_is_mailed_again(memory_service: Service) -> None:
    rid = _in(memory_service, State.DECLINED)
    memory_service.reopen(rid, reason_data("new budget"), ACTOR)
    memory_service.decline(rid, reason_data("still out of scope"), ACTOR)
    keys = [k for k in memory_service.store.outbox if "request_declined" in k]  # type: ignore[attr-defined]
    assert keys == [f"{rid}:request_declined", f"{rid}:r1:request_declined"]


# --- amend: what changes, before and after ----------------------------------------------------------

def test_amend_records_before_and_after_of_every_field_that_changed(memory_service: Service) -> None:
    rid = _in(memory_service, State.DIAGNOSED)
    before = memory_service.show(rid)
    after = memory_service.amend(rid, {
        "reason": "the kickoff moved; Lee owns the number now",
        "stakeholders": [{"name": "Ana Ortiz", "email": "ana@example.org"}],
        "business_goal": {"target_value": 80},
        "audience": {"size": 55},
        "items": {"m1": {"owner": {"name": "Olga Two", "email": "olga2@example.org"}, "respondent": "learner"}},
        "title": before.intake.title,  # unchanged: not recorded
    }, ACTOR)
    changes = memory_service.history(rid)[-1].payload["changes"]
    assert set(changes) == {"stakeholders", "business_goal", "audience", "items.m1.owner", "items.m1.respondent"}
    assert changes["business_goal"]["before"]["target_value"] == before.intake.business_goal.target_value
    assert changes["business_goal"]["after"] == {**changes["business_goal"]["before"], "target_value": 80.0}
    assert changes["audience"]["after"]["size"] == 55
    assert changes["audience"]["after"]["description"] == before.intake.audience.description
    assert changes["items.m1.respondent"] == {"before": "manager", "after": "learner"}
    assert changes["items.m1.owner"]["before"]["email"] == "olga.owner@example.org"
    assert after.plan is not None and after.plan.items[0].owner.email == "olga2@example.org"
    assert after.plan.items[1] == before.plan.items[1]  # type: ignore[union-attr]
    assert after.plan_approved_by == before.plan_approved_by  # who collects is not what is measured
    assert after.intake.business_goal.target_value == 80 and after.intake.business_goal.metric
    line = summarize(memory_service.history(rid)[-1])
    assert line.startswith("stakeholders: Hana HR, HR partner <hana.hr@example.org> → Ana Ortiz <ana@example.org>; "
                           "audience size: 40 → 55; business goal target value: 75 → 80; item m1 owner: Olga Owner "
                           "<olga.owner@example.org> → Olga Two <olga2@example.org>; "
                           "item m1 respondent: manager → learner")
    assert line.endswith("(because: the kickoff moved; Lee owns the number now)")


def test_amending_the_redirect_owner_tells_the_new_owner(memory_service: Service) -> None:
    rid = _in(memory_service, State.REDIRECTED)
    request = memory_service.amend(rid, {"reason": "Ivan moved teams",
                                         "redirect_owner": {"name": "Lena", "email": "lena@example.org"}}, ACTOR)
    assert request.redirect_record is not None and request.redirect_record.owner is not None
    assert request.redirect_record.owner.email == "lena@example.org"
    told = memory_service.store.outbox[f"{rid}:redirect_assigned:v{request.version}"]  # type: ignore[attr-defined]
    assert [r["email"] for r in told.notification["to"]] == ["lena@example.org"]


def test_amending_a_companion_piece_s_owner_tells_the_new_owner_and_the_history_says_it(
        memory_service: Service, clock: FixedClock) -> None:
    rid = _in(memory_service, State.DESIGNED)
    memory_service.add_companion(rid, companion_data(), ACTOR)
    memory_service.add_companion(rid, companion_data(what="a second card"), ACTOR)
    request = memory_service.amend(rid, {"reason": "Ana moved to marketing", "companions": {
        "c1": {"owner": {"name": "Lena", "email": "lena@example.org"}}}}, ACTOR)
    assert [c.owner.email for c in request.companions] == ["lena@example.org", "ana.lopez@example.org"]
    assert [c.status.value for c in request.companions] == ["open", "open"]
    told = memory_service.store.outbox[f"{rid}:companion_assigned:c1:v{request.version}"]  # type: ignore[attr-defined]
    assert [r["email"] for r in told.notification["to"]] == ["lena@example.org"]
    assert told.notification["context"]["piece"]["what"] == "a decision card for discounts"
    assert not [k for k in memory_service.store.outbox if k.startswith(f"{rid}:companion_assigned:c2:")]  # type: ignore[attr-defined]
    last = memory_service.history(rid)[-1]
    assert last.payload["changes"] == {"companions.c1.owner": {
        "before": {"name": "Ana Lopez", "email": "ana.lopez@example.org", "role": "Sales ops"},
        "after": {"name": "Lena", "email": "lena@example.org", "role": ""}}}
    assert summarize(last) == ("companion piece c1 owner: Ana Lopez, Sales ops <ana.lopez@example.org> → "
                               "Lena <lena@example.org> (because: Ana moved to marketing)")
    # the reminder still owed goes to the new owner
    clock.set(datetime(2027, 12, 29, 9, tzinfo=UTC))
    assert memory_service.remind_owners(ACTOR, timedelta(days=3))["reminded"] == 2  # both pieces
    reminder = memory_service.store.outbox[f"{rid}:companion_reminder:c1"]  # type: ignore[attr-defined]
    assert [r["email"] for r in reminder.notification["to"]] == ["lena@example.org"]


def test_only_an_open_companion_piece_s_owner_can_be_amended(memory_service: Service) -> None:
    rid = _in(memory_service, State.DESIGNED)
    memory_service.add_companion(rid, companion_data(), ACTOR)
    memory_service.drop_companion(rid, "c1", reason_data("not needed"), ACTOR)
    for data, named in (({"c1": {"owner": {"name": "Lena", "email": "lena@example.org"}}}, "companions.c1.owner"),
                        ({"c7": {"owner": {"name": "Lena", "email": "lena@example.org"}}}, "companions.c7"),
                        ({"c1": {"owner": {"name": "Lena", "email": "lena@"}}}, "companions.c1.owner.email"),
                        ({"c1": {}}, "companions.c1.owner")):
        refused = _unchanged(memory_service.store, lambda d=data: memory_service.amend(  # type: ignore[arg-type, misc]
            rid, {"reason": "x", "companions": d}, ACTOR), InvalidInput)
        assert any(e.field == named for e in refused.errors), (named, refused)  # type: ignore[attr-defined]


# --- the sponsor rule, both ways ----------------------------------------------------------------------

def test_a_new_sponsor_before_approval_is_the_approver_and_gets_the_request(memory_service: Service) -> None:
    rid = int(memory_service.submit(intake_data(), ACTOR).id)
    memory_service.diagnose(rid, diagnosis_data(), ACTOR)
    memory_service.draft_plan(rid, plan_data(), ACTOR)
    request = memory_service.amend(rid, {"reason": "Sam moved to finance", "sponsor": NEW_SPONSOR}, ACTOR)
    asked = memory_service.store.outbox[f"{rid}:plan_approval_request:v{request.version}"]  # type: ignore[attr-defined]
    assert [r["email"] for r in asked.notification["to"]] == ["lee.park@example.org"]
    assert asked.notification["context"]["sponsor"]["email"] == "lee.park@example.org"
    refused = _unchanged(memory_service.store, lambda: memory_service.approve_plan(  # type: ignore[arg-type]
        rid, approval_data(SPONSOR), ACTOR), TransitionRefused)
    assert "approval by the sponsor lee.park@example.org (not sam.sponsor@example.org)" in refused.missing  # type: ignore[attr-defined]
    approved = memory_service.approve_plan(rid, approval_data("lee.park@example.org"), "lee.park@example.org")
    assert approved.plan_approved_by == "lee.park@example.org"


def test_a_new_sponsor_without_a_plan_is_sent_nothing(memory_service: Service) -> None:
    rid = _in(memory_service, State.RECEIVED)
    memory_service.amend(rid, {"reason": "Sam moved to finance", "sponsor": NEW_SPONSOR}, ACTOR)
    assert not [k for k in memory_service.store.outbox if "plan_approval" in k]  # type: ignore[attr-defined]


def test_a_new_sponsor_after_approval_leaves_the_approval_standing(memory_service: Service) -> None:
    rid = _in(memory_service, State.DESIGNED)
    outbox = set(memory_service.store.outbox)  # type: ignore[attr-defined]
    request = memory_service.amend(rid, {"reason": "Sam moved to finance", "sponsor": NEW_SPONSOR}, ACTOR)
    assert request.plan_approved_by == SPONSOR and request.intake.sponsor.email == "lee.park@example.org"
    assert set(memory_service.store.outbox) == outbox  # type: ignore[attr-defined]  # no new approval asked
    change = memory_service.history(rid)[-1].payload["changes"]["sponsor"]
    assert change["before"]["email"] == SPONSOR and change["after"] == NEW_SPONSOR


# --- bad input: exit 2 naming the field, or 3 listing what is missing; nothing written ------------------

BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"reason": "x", "sponsor": {"name": "Lee", "email": "lee park"}}, InvalidInput, "sponsor.email"),
    ({"reason": "x", "items": {"m1": {"owner": {"name": "O", "email": "o@"}}}}, InvalidInput,
     "items.m1.owner.email"),
    ({"reason": "x", "items": {"m9": {"respondent": "manager"}}}, InvalidInput, "items.m9"),
    ({"reason": "x", "items": {"m1": {}}}, InvalidInput, "items.m1"),
    ({"reason": "x", "sponsors": NEW_SPONSOR}, InvalidInput, "sponsors"),
    ({"reason": "x", "redirect_owner": NEW_SPONSOR}, InvalidInput, "redirect_owner"),
    ({"reason": "x"}, InvalidInput, "nothing to amend"),
    ({"reason": "", "sponsor": NEW_SPONSOR}, TransitionRefused, "a reason to amend"),
    ({"reason": "   ", "sponsor": NEW_SPONSOR}, TransitionRefused, "a reason to amend"),
    ({"sponsor": NEW_SPONSOR}, TransitionRefused, "a reason to amend"),
    ({"reason": "same", "sponsor": {"name": "Sam Sponsor", "email": SPONSOR, "role": "VP Sales"}},
     TransitionRefused, "a change"),
]


@pytest.mark.parametrize(("data", "error", "named"), BAD, ids=[b[2] for b in BAD])
def test_bad_amendments_are_refused_naming_the_field_and_write_nothing(
        memory_service: Service, data: dict[str, Any], error: type[Exception], named: str) -> None:
    rid = _in(memory_service, State.DIAGNOSED)
    refused = _unchanged(memory_service.store, lambda: memory_service.amend(  # type: ignore[arg-type]
        rid, data, ACTOR), error)
    assert named in str(refused) or any(named in str(e) for e in getattr(refused, "errors", []))
    assert refused.exit_code == (2 if error is InvalidInput else 3)  # type: ignore[attr-defined]
