"""Re-diagnose and plan revisions (states/revisions.py), on the in-memory fakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.testing import InMemoryStore
from flows.service import Service
from flows.timeline import summarize
from states import events as ev
from states import lifecycle
from states.checkpoints import CheckpointStatus
from states.errors import TransitionRefused
from states.lifecycle import Command, State
from states.request import TrainingRequest
from tests.builders import (
    ACTOR,
    SPONSOR,
    approval_data,
    brief_data,
    diagnosis_data,
    drive_to,
    plan_data,
    plan_item,
    record_when_due,
    redirect_data,
    result_data,
)

WHY = {"reason": "the team lead's data shows the tool is the cause"}
_STATES = list(State)


def _in(service: Service, state: State) -> int:
    path = "redirect" if state == State.REDIRECTED else "design"
    return int(drive_to(service, state.value, path=path).id)


def _events(service: Service, rid: int) -> list[Any]:
    return [ev.read(r.type, r.payload, r.from_state) for r in service.history(rid)]


# --- re-diagnose ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", _STATES, ids=[s.value for s in _STATES])
def test_rediagnose_runs_only_on_a_diagnosed_request(memory_service: Service, memory_store: InMemoryStore,
                                                     state: State) -> None:
    rid = _in(memory_service, state)
    before = memory_store.snapshot()
    if state == State.DIAGNOSED:
        request = memory_service.rediagnose(rid, diagnosis_data(skill_gap=False), WHY, ACTOR)
        assert request.state == State.DIAGNOSED
        return
    with pytest.raises(TransitionRefused) as info:
        memory_service.rediagnose(rid, diagnosis_data(), WHY, ACTOR)
    assert info.value.exit_code == 3
    article = "an" if state == State.ACKNOWLEDGED else "a"
    assert str(info.value) == (f"cannot re-diagnose {article} {state.value} request; missing: a diagnosed request "
                               "not yet designed or redirected (re-diagnose before either)")
    assert memory_store.snapshot() == before  # nothing written


def test_rediagnose_replaces_the_diagnosis_and_sends_the_summary_again(memory_service: Service,
                                                                       memory_store: InMemoryStore) -> None:
    rid = _in(memory_service, State.DIAGNOSED)
    first = memory_service.show(rid)
    assert [r.path for r in first.recommendations] == ["design"]
    again = memory_service.rediagnose(rid, diagnosis_data(skill_gap=False, summary="The tool, not the skill."),
                                      WHY, ACTOR)
    assert again.diagnosis is not None and again.diagnosis.summary == "The tool, not the skill."
    assert "design" not in [r.path for r in again.recommendations]
    last = _events(memory_service, rid)[-1]
    assert isinstance(last, ev.Rediagnosed)
    assert last.reason == WHY["reason"]
    assert last.recommendations == tuple(r.model_dump() for r in again.recommendations)
    assert last.payload == {"diagnosis": again.diagnosis.model_dump(mode="json"),
                            "recommendations": [r.model_dump() for r in again.recommendations],
                            "reason": WHY["reason"]}
    summaries = sorted(k for k in memory_store.outbox if ":diagnosis_summary:" in k)
    assert summaries == [f"{rid}:diagnosis_summary:v2", f"{rid}:diagnosis_summary:v{again.version}"]
    mail = memory_store.outbox[f"{rid}:diagnosis_summary:v{again.version}"].notification  # the outbox JSON
    assert mail["subject"] == f"Revised diagnosis: {again.intake.title}"
    assert mail["context"]["reason"] == WHY["reason"]
    assert summarize(memory_service.history(rid)[-1]).endswith(f"why: {WHY['reason']}")
    # the old diagnose is refused on a diagnosed request exactly as before
    with pytest.raises(TransitionRefused, match="cannot diagnose a diagnosed request"):
        memory_service.diagnose(rid, diagnosis_data(), ACTOR)


def test_rediagnose_lists_every_missing_item_and_writes_nothing(memory_service: Service,
                                                                memory_store: InMemoryStore) -> None:
    rid = _in(memory_service, State.DIAGNOSED)
    before = memory_store.snapshot()
    with pytest.raises(TransitionRefused) as info:
        memory_service.rediagnose(rid, diagnosis_data(observable_actions=[]), {"reason": ""}, ACTOR)
    assert info.value.missing[-1] == "a reason to re-diagnose"
    assert any("observable action" in m for m in info.value.missing)
    assert memory_store.snapshot() == before


# --- plan revisions ------------------------------------------------------------------------------------

def _plan(*items: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(items), "costs": {"program_cost": 8000.0, "currency": "EUR"}}


V2 = _plan(plan_item("m1", value_per_unit=1000.0, checkpoints=["P30D"]),
           plan_item("m3", level=1, baseline=False, metric="confidence", unit="1-5",
                     target={"value": 4.0, "date": "2026-06-30"}, instrument="survey", respondent="learner",
                     checkpoints=["P7D"]))


def test_a_redraft_before_approval_replaces_the_draft_as_before(memory_service: Service) -> None:
    rid = memory_service.submit(drive_to(memory_service, "received").intake.model_dump(mode="json"), ACTOR).id
    memory_service.draft_plan(rid, plan_data(), ACTOR)
    request = memory_service.draft_plan(rid, V2, ACTOR)
    assert (request.plan_version, request.plan_draft, request.plan_approved_by) == (1, None, None)
    assert request.plan is not None and [i.id for i in request.plan.items] == ["m1", "m3"]
    assert [type(e) for e in _events(memory_service, rid)][-2:] == [ev.PlanDrafted, ev.PlanDrafted]


def test_a_revision_after_approval_waits_while_design_works_on_the_approved_version(
        memory_service: Service, memory_store: InMemoryStore) -> None:
    rid = _in(memory_service, State.DIAGNOSED)
    request = memory_service.draft_plan(rid, V2, ACTOR)
    assert request.plan_version == 1 and request.plan_approved_by == SPONSOR
    assert request.plan_draft is not None and request.plan_draft.version == 2
    assert request.plan is not None and [i.id for i in request.plan.items] == ["m1", "m2"]  # v1 in force
    assert summarize(memory_service.history(rid)[-1]).startswith("plan v2 drafted, 2 items: m1, m3")
    mail = memory_store.outbox[f"{rid}:plan_approval_request:v{request.version}"].notification  # the outbox JSON
    assert mail["subject"].startswith("Please approve version 2 of the measurement plan")
    designed = memory_service.design(rid, brief_data(), ACTOR)
    assert designed.state == State.DESIGNED and designed.plan_draft is not None
    with pytest.raises(TransitionRefused, match=r"approval by the sponsor .* \(not rita"):
        memory_service.approve_plan(rid, approval_data("rita.requester@example.org"), ACTOR)
    approved = memory_service.approve_plan(rid, approval_data(), SPONSOR)
    assert (approved.plan_version, approved.plan_draft) == (2, None)
    assert approved.plan is not None and [i.id for i in approved.plan.items] == ["m1", "m3"]
    last = _events(memory_service, rid)[-1]
    assert last == ev.PlanRevisionApproved(version=2, approver=SPONSOR, comment="Looks right.")
    with pytest.raises(TransitionRefused) as info:  # nothing waits now
        memory_service.approve_plan(rid, approval_data(), SPONSOR)
    assert info.value.missing == [f"a plan awaiting approval (already approved by {SPONSOR})"]


def test_redirect_works_on_the_approved_version_while_a_revision_waits(memory_service: Service) -> None:
    rid = int(drive_to(memory_service, "diagnosed", path="redirect").id)
    memory_service.draft_plan(rid, V2, ACTOR)
    request = memory_service.redirect(rid, redirect_data(), ACTOR)
    assert request.state == State.REDIRECTED and request.plan_version == 1 and request.plan_draft is not None


def test_a_revision_approved_on_a_delivered_request_reschedules_its_checkpoints(memory_service: Service,
                                                                                memory_store: InMemoryStore) -> None:
    rid = _in(memory_service, State.DELIVERED)
    record_when_due(memory_service, rid, "m1:P30D", result_data(70.0), ACTOR)
    record_when_due(memory_service, rid, "m2:P1D", result_data(4.4), ACTOR)
    waiting = memory_service.draft_plan(rid, V2, ACTOR)
    assert {c.key.split(":", 1)[1] for c in waiting.checkpoints} == {"m1:P30D", "m1:P90D", "m2:P1D"}  # untouched
    request = memory_service.approve_plan(rid, approval_data(), SPONSOR)
    status = {c.key.split(":", 1)[1]: c.status for c in request.checkpoints}
    assert status == {"m1:P30D": CheckpointStatus.CLOSED, "m1:P90D": CheckpointStatus.SUPERSEDED,
                      "m2:P1D": CheckpointStatus.CLOSED, "m3:P7D": CheckpointStatus.SCHEDULED}
    assert request.checkpoint("m1:P30D").value == 70.0 and request.checkpoint("m2:P1D").value == 4.4  # results stay
    new = request.checkpoint("m3:P7D")
    assert new.due_at.date().isoformat() == "2026-04-27"  # 7 days after the delivery's end (2026-04-20)
    tail = _events(memory_service, rid)[-3:]
    assert [type(e) for e in tail] == [ev.PlanRevisionApproved, ev.CheckpointSuperseded, ev.CheckpointScheduled]
    assert tail[1] == ev.CheckpointSuperseded(checkpoint=f"{rid}:m1:P90D", version=2)
    assert summarize(memory_service.history(rid)[-2]) == "m1:P90D superseded: plan v2 no longer has it"
    # the timers follow the document: the superseded one never fires, the new one does
    from datetime import UTC, datetime
    due = memory_store.due_checkpoints(datetime(2026, 12, 31, tzinfo=UTC))
    assert (rid, f"{rid}:m3:P7D") in due and (rid, f"{rid}:m1:P90D") not in due
    with pytest.raises(TransitionRefused, match="is not closed"):
        memory_service.measure(rid, ACTOR)
    record_when_due(memory_service, rid, "m3:P7D", result_data(4.1), ACTOR)
    measured = memory_service.measure(rid, ACTOR)  # the superseded checkpoint counts as closed
    assert measured.state == State.MEASURED
    assert [r.item_id for r in measured.results] == ["m1", "m3"]


def test_an_item_that_comes_back_gets_a_fresh_checkpoint(memory_service: Service) -> None:
    rid = _in(memory_service, State.DELIVERED)
    memory_service.draft_plan(rid, V2, ACTOR)
    memory_service.approve_plan(rid, approval_data(), SPONSOR)  # m1:P90D superseded
    memory_service.draft_plan(rid, plan_data(), ACTOR)
    request = memory_service.approve_plan(rid, approval_data(), SPONSOR)  # v3 has m1:P90D again
    assert request.plan_version == 3
    keys = {c.key: c.status for c in request.checkpoints}
    assert keys[f"{rid}:m1:P90D"] == CheckpointStatus.SUPERSEDED
    assert keys[f"{rid}:m1:P90D:v3"] == CheckpointStatus.SCHEDULED
    assert keys[f"{rid}:m3:P7D"] == CheckpointStatus.SUPERSEDED
    assert len(keys) == len(request.checkpoints)  # keys stay unique


@pytest.mark.parametrize("state", [State.MEASURED, State.ACKNOWLEDGED, State.DECLINED, State.CANCELLED],
                         ids=lambda s: s.value)
def test_no_plan_revision_once_measured_or_closed(memory_service: Service, state: State) -> None:
    rid = _in(memory_service, state)
    with pytest.raises(TransitionRefused) as info:
        memory_service.draft_plan(rid, V2, ACTOR)
    assert info.value.missing == [lifecycle.RULES[Command.DRAFT_PLAN].refusal]


# --- stored documents ----------------------------------------------------------------------------------

def test_a_document_stored_before_plan_versions_still_loads() -> None:
    # Saved by the code before this change (a delivered request, as SqlStore stores it: no id, no version).
    text = (Path(__file__).parent / "data" / "stored_request_delivered.json").read_text()
    assert "plan_version" not in json.loads(text)
    request = TrainingRequest.model_validate_json(text)
    assert request.state == State.DELIVERED and request.plan is not None
    assert (request.plan_version, request.plan_draft) == (1, None)
    assert len(request.checkpoints) == 3


# --- the mails, rendered and parsed back ---------------------------------------------------------------

def test_the_revised_diagnosis_and_the_plan_revision_mails_read_as_such(memory_service: Service) -> None:
    from email import message_from_bytes
    from email.policy import default as default_policy

    from states.models import Diagnosis, MeasurementPlan, Reason
    from states.validation import parse
    from tests.unit.test_email_render import bodies, do_render

    request = memory_service.show(_in(memory_service, State.DIAGNOSED))
    at = request.updated_at
    request.rediagnose(parse(Diagnosis, diagnosis_data(skill_gap=False)), Reason(reason="the tool is the cause"), at)
    request.draft_plan(parse(MeasurementPlan, V2), at)
    summary, approval = request.pending_notifications()
    for n, to in ((summary, {SPONSOR, "rita.requester@example.org"}), (approval, {SPONSOR})):
        msg = message_from_bytes(do_render(n).as_bytes(), policy=default_policy)
        assert {a.addr_spec for a in msg["To"].addresses} <= to | {s.email for s in request.intake.stakeholders}
        assert SPONSOR in {a.addr_spec for a in msg["To"].addresses}
    text, html = bodies(do_render(summary))
    assert "our diagnosis has changed: the tool is the cause. Here is what we found now" in text
    assert "our diagnosis has changed: the tool is the cause" in html and "We have finished" not in text
    text, html = bodies(do_render(approval))
    assert "this is version 2. Until you approve it, the version you approved before stays in force." in text
    assert "this is version 2" in html and "Before we start designing" not in text
    # a first draft still reads as it always did
    fresh = memory_service.show(memory_service.submit(request.intake.model_dump(mode="json"), ACTOR).id)
    fresh.draft_plan(parse(MeasurementPlan, V2), at)
    assert "Before we start designing anything" in bodies(do_render(fresh.pending_notifications()[0]))[0]
