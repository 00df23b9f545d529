"""Guards: each refusal lists every missing item at once and writes nothing (in-memory store)."""

from __future__ import annotations

from typing import Any

import pytest

from flows.service import Service
from states import guards
from states.errors import InvalidTransition, TransitionRefused
from states.lifecycle import State
from states.models import Acknowledgement, Delivery, Reason
from tests.builders import (
    ACTOR,
    REFUSALS,
    SPONSOR,
    Refusal,
    approval_data,
    brief_data,
    business_goal,
    diagnosis_data,
    drive_to,
    intake_data,
    plan_data,
    plan_item,
    record_when_due,
    result_data,
    run_step,
)


def snapshot(service: Service, request_id: int) -> tuple[Any, ...]:
    request = service.show(request_id)
    outbox = sorted(service.store.outbox)  # type: ignore[attr-defined]
    return request.model_dump(), request.version, service.history(request_id), outbox, service.verify()


def assert_lists_exactly(missing: list[str], expected: tuple[str, ...]) -> None:
    """Every expected item is listed, each by exactly one entry, and nothing else is."""
    for fragment in expected:
        hits = [m for m in missing if fragment in m]
        assert len(hits) == 1, f"{fragment!r} should be listed once in {missing}"
    assert len(missing) == len(expected), missing


@pytest.mark.parametrize("case", REFUSALS, ids=[c.name for c in REFUSALS])
def test_guard_refuses_listing_every_missing_item_and_writes_nothing(memory_service: Service,
                                                                     case: Refusal) -> None:
    rid = memory_service.submit(case.intake, ACTOR).id
    for command, data in case.setup:
        run_step(memory_service, rid, command, data)
    before = snapshot(memory_service, rid)
    with pytest.raises(TransitionRefused) as info:
        run_step(memory_service, rid, case.command, case.data)
    assert not isinstance(info.value, InvalidTransition)
    assert_lists_exactly(info.value.missing, case.missing)
    for fragment in case.missing:
        assert fragment in str(info.value)
    assert snapshot(memory_service, rid) == before


# --- the same guards let a complete request through -------------------------------------------------------

def test_design_without_skill_gap_passes_with_a_recorded_override(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.diagnose(rid, diagnosis_data(skill_gap=False), ACTOR)
    memory_service.draft_plan(rid, plan_data(), ACTOR)
    memory_service.approve_plan(rid, approval_data(), SPONSOR)
    override = "Sponsor wants a short refresher alongside the tool fix."
    request = memory_service.design(rid, brief_data(skill_gap_override=override), ACTOR)
    assert request.state == State.DESIGNED
    assert memory_service.history(rid)[-1].payload["brief"]["skill_gap_override"] == override


def test_design_needs_no_baseline_for_reaction_or_learning_items(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.diagnose(rid, diagnosis_data(), ACTOR)
    plan = {"items": [plan_item("react", level=1, baseline=False), plan_item("learn", level=2, baseline=False),
                      plan_item("ltem6", framework="ltem", level=6, baseline=False)]}
    memory_service.draft_plan(rid, plan, ACTOR)
    memory_service.approve_plan(rid, approval_data(), SPONSOR)
    assert memory_service.design(rid, brief_data(), ACTOR).state == State.DESIGNED


@pytest.mark.parametrize(("framework", "level"), [("kirkpatrick", 3), ("kirkpatrick", 4), ("ltem", 7),
                                                  ("ltem", 8), ("phillips", 3), ("phillips", 5)])
def test_behaviour_and_results_items_need_a_baseline(memory_service: Service, framework: str,
                                                     level: int) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.diagnose(rid, diagnosis_data(), ACTOR)
    memory_service.draft_plan(rid, {"items": [plan_item("x", framework=framework, level=level, baseline=False)]},
                              ACTOR)
    memory_service.approve_plan(rid, approval_data(), SPONSOR)
    with pytest.raises(TransitionRefused) as info:
        memory_service.design(rid, brief_data(), ACTOR)
    assert_lists_exactly(info.value.missing, ("a baseline for measurement item 'x'",))


def test_diagnosis_completes_the_business_goal_given_at_intake(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(business_goal={"metric": "FCR"}), ACTOR).id
    rest = business_goal()
    del rest["metric"]
    request = memory_service.diagnose(rid, diagnosis_data(business_goal=rest), ACTOR)
    assert request.state == State.DIAGNOSED
    goal = request.intake.business_goal
    assert (goal.metric, goal.current_value, goal.data_source) == ("FCR", 62.0, "CRM weekly report")
    assert memory_service.show(rid).intake.business_goal == goal


def test_measure_passes_when_checkpoints_are_closed_as_missed(memory_service: Service) -> None:
    request = drive_to(memory_service, "delivered")
    for c in request.checkpoints:
        record_when_due(memory_service, request.id, c.key, result_data(None, "survey tool was down"), ACTOR)
    measured = memory_service.measure(request.id, ACTOR)
    assert measured.state == State.MEASURED
    assert {r.outcome.value for r in measured.results} == {"no_data"}


def test_redraft_after_approval_is_a_new_version_and_the_approved_one_stays_in_force(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.diagnose(rid, diagnosis_data(), ACTOR)
    memory_service.draft_plan(rid, plan_data(baseline=False), ACTOR)
    memory_service.draft_plan(rid, plan_data(), ACTOR)  # before approval a redraft replaces the draft
    with pytest.raises(TransitionRefused) as info:
        memory_service.design(rid, brief_data(), ACTOR)
    assert_lists_exactly(info.value.missing, (f"awaits approval by the sponsor {SPONSOR}",))
    memory_service.approve_plan(rid, approval_data(SPONSOR.upper()), SPONSOR)  # addresses compare lower-cased
    revised = memory_service.draft_plan(rid, plan_data(costs=False), ACTOR)
    assert revised.plan_draft is not None and revised.plan_draft.version == 2
    designed = memory_service.design(rid, brief_data(), ACTOR)  # on version 1, approved
    assert designed.state == State.DESIGNED and designed.plan is not None and designed.plan.costs is not None
    approved = memory_service.approve_plan(rid, approval_data(SPONSOR.upper()), SPONSOR)
    assert approved.plan_version == 2 and approved.plan is not None and approved.plan.costs is None


# --- the guard functions themselves ---------------------------------------------------------------------

def test_guard_functions_return_nothing_missing_for_complete_input() -> None:
    assert guards.deliver(None, Delivery.model_validate(  # type: ignore[arg-type]
        {"start_date": "2026-04-01", "end_date": "2026-04-02", "audience_reached": 0, "format": "live"})) == []
    assert guards.acknowledge(None, Acknowledgement.model_validate({  # type: ignore[arg-type]
        "recap": ["a"], "action_plan": [{"step": "s", "owner": "o"}],
        "contributions": [{"stakeholder": "x", "contribution": "y"}]})) == []
    assert guards.reason("cancel", Reason(reason="merged with request 7")) == []
    assert guards.reason("cancel", Reason()) == ["a reason to cancel"]
