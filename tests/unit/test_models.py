"""Input validation: shape errors name their field (InvalidInput, exit 2) and nothing is written."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.service import Service
from states.durations import parse_duration
from states.errors import InvalidInput
from states.models import (
    VAGUE_VERBS,
    BusinessGoal,
    Diagnosis,
    Intake,
    MeasurementPlan,
    Person,
    PlanApproval,
    PlanItem,
)
from states.validation import parse
from tests.builders import (
    ACTOR,
    SPONSOR,
    approval_data,
    diagnosis_data,
    intake_data,
    person,
    plan_data,
    plan_item,
)


def fields(exc: InvalidInput) -> list[str]:
    return [e.field for e in exc.errors]


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


# --- intake ------------------------------------------------------------------------------------------

BAD_INTAKES = [
    ("missing-title", _without(intake_data(), "title"), "title", "is required"),
    ("missing-sponsor", _without(intake_data(), "sponsor"), "sponsor", "is required"),
    ("short-title", intake_data(title="ab"), "title", "at least 3"),
    ("title-with-crlf", intake_data(title="Course\r\nBcc: eve@example.com"), "title", "single line"),
    ("name-with-lf", intake_data(requester=person("Rita\nBcc: eve@example.com", "rita@example.org")),
     "requester.name", "single line"),
    ("name-with-cr", intake_data(sponsor=person("Sam\rSponsor", "sam@example.org")), "sponsor.name", "single line"),
    ("email-comment-trick", intake_data(requester=person("Alice", "alice@example.org(<bob@example.com>")),
     "requester.email", "not a plain e-mail"),
    ("email-display-name", intake_data(sponsor=person("Sam", "Sam <sam@example.org>")), "sponsor.email",
     "not a plain e-mail"),
    ("email-no-domain", intake_data(sponsor=person("Sam", "sam@localhost")), "sponsor.email", "not a plain e-mail"),
    ("email-two-addresses", intake_data(sponsor=person("Sam", "a@example.org,b@example.org")), "sponsor.email",
     "not a plain e-mail"),
    ("email-double-dot", intake_data(sponsor=person("Sam", "sam..x@example.org")), "sponsor.email",
     "not a plain e-mail"),
    ("email-header-injection", intake_data(sponsor=person("Sam", "sam@example.org\r\nBcc: eve@example.com")),
     "sponsor.email", "not a plain e-mail"),
    ("stakeholder-email", intake_data(stakeholders=[person("Hana", "hana@example.org"), person("X", "nope")]),
     "stakeholders[1].email", "not a plain e-mail"),
    ("unknown-field", intake_data(colour="blue"), "colour", "is not a known field"),
    ("unknown-nested-field", intake_data(audience={"size": 3, "region": "EU"}), "audience.region",
     "is not a known field"),
    ("wrong-type-size", intake_data(audience={"size": "forty"}), "audience.size", "integer"),
    ("negative-size", intake_data(audience={"size": -1}), "audience.size", "between 0 and 1,000,000,000"),
    ("wrong-type-goal", intake_data(business_goal={"current_value": "sixty"}), "business_goal.current_value",
     "number"),
    ("bad-date", intake_data(business_goal={"target_date": "next spring"}), "business_goal.target_date", "date"),
    ("requester-not-a-mapping", intake_data(requester="rita@example.org"), "requester", ""),
]


@pytest.mark.parametrize(("data", "field", "message"), [c[1:] for c in BAD_INTAKES], ids=[c[0] for c in BAD_INTAKES])
def test_bad_intake_names_the_field_and_submits_nothing(memory_service: Service, data: dict[str, Any], field: str,
                                                        message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        memory_service.submit(data, ACTOR)
    assert field in fields(info.value), info.value.errors
    error = next(e for e in info.value.errors if e.field == field)
    assert message in error.message
    assert info.value.exit_code == 2 and field in str(info.value)
    assert memory_service.store.counts_by_state() == {}  # type: ignore[attr-defined]
    assert memory_service.store.outbox == {}  # type: ignore[attr-defined]


def test_every_bad_field_is_listed_at_once() -> None:
    data = intake_data(title="", colour="blue", requester=person("R\nX", "bad"))
    with pytest.raises(InvalidInput) as info:
        parse(Intake, data)
    assert set(fields(info.value)) == {"title", "colour", "requester.name", "requester.email"}


@pytest.mark.parametrize("data", [None, [], "title: x", 3])
def test_non_mapping_input_is_refused_clearly(data: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(Intake, data, source="intake.yaml")
    assert fields(info.value) == [""]
    assert "expected a mapping" in str(info.value) and "intake.yaml" in str(info.value)


@pytest.mark.parametrize("address", ["alice@example.org", "a.b+tag@sub.example.co.uk", "O'Neil@example.ie"])
def test_plain_addresses_are_accepted_and_lower_cased(address: str) -> None:
    assert Person(name="x", email=f"  {address} ").email == address.lower()


# Generated addresses: dot-separated atoms of the characters RFC 5322 allows unquoted, an
# at sign, two or more DNS labels.
_ATOM = st.text(string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
_LABEL = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
PLAIN_ADDRESSES = st.builds(lambda local, labels: ".".join(local) + "@" + ".".join(labels),
                            st.lists(_ATOM, min_size=1, max_size=3), st.lists(_LABEL, min_size=2, max_size=3))
# What would change an address's meaning in a header: display names, comments, quoting, lists,
# groups, domain literals, line breaks, a second address.
HEADER_SYNTAX = "<>()[],;:\"\\ \t\r\n\x00@"


def _email_of(text: str) -> str:
    return parse(Person, {"name": "x", "email": text}).email


@given(PLAIN_ADDRESSES, st.sampled_from(["", " ", "\t", "  "]))
def test_generated_plain_addresses_are_accepted_and_lower_cased(address: str, padding: str) -> None:
    assert _email_of(padding + address + padding) == address.lower()


@given(PLAIN_ADDRESSES, st.sampled_from(HEADER_SYNTAX), st.data())
def test_header_syntax_inside_an_address_is_refused_naming_the_field(address: str, char: str,
                                                                     data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=1, max_value=len(address) - 1), label="position")
    damaged = address[:at] + char + address[at:]
    with pytest.raises(InvalidInput) as info:
        _email_of(damaged)
    assert fields(info.value) == ["email"]
    assert "not a plain e-mail" in info.value.errors[0].message


@given(st.one_of(st.text(min_size=1, max_size=40), PLAIN_ADDRESSES,
                 st.builds(lambda a, b: a + b, PLAIN_ADDRESSES, st.text(max_size=5))))
def test_any_text_is_a_plain_address_or_refused_naming_the_field(text: str) -> None:
    # Anything but InvalidInput (a pydantic error, a TypeError ...) escapes and fails the test.
    try:
        email = _email_of(text)
    except InvalidInput as exc:
        assert fields(exc) == ["email"], exc.errors
        return
    assert email == text.strip().lower()
    assert not any(ch in email for ch in HEADER_SYNTAX.replace("@", ""))
    assert email.count("@") == 1 and ".." not in email and len(email) <= 254


# --- diagnosis ------------------------------------------------------------------------------------------

VAGUE = [*VAGUE_VERBS, "Understand our pricing", "learners will understand pricing",
         "Participants should be able to know the policy", "be aware of the escalation rules",
         "staff must appreciate the customer's view", "to learn about the new CRM"]


@pytest.mark.parametrize("action", VAGUE)
def test_vague_verbs_are_refused(memory_service: Service, action: str) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    before = memory_service.show(rid)
    data = diagnosis_data(observable_actions=["quote the price within 2 minutes", action + " in depth"])
    with pytest.raises(InvalidInput) as info:
        memory_service.diagnose(rid, data, ACTOR)
    assert fields(info.value) == ["observable_actions[1]"]
    assert "vague verb" in info.value.errors[0].message
    assert memory_service.show(rid).model_dump() == before.model_dump()
    assert len(memory_service.history(rid)) == 1


@pytest.mark.parametrize("action", ["ask three discovery questions", "log every call in the CRM within 5 minutes",
                                    "agents will escalate billing disputes to tier 2",
                                    "knowledgeably explain the price"])
def test_observable_actions_are_accepted(action: str) -> None:
    assert parse(Diagnosis, diagnosis_data(observable_actions=[action])).observable_actions == [action]


def test_unknown_cause_check_is_named() -> None:
    data = diagnosis_data()
    data["cause_checks"]["moon_phase"] = {"answer": "no"}
    with pytest.raises(InvalidInput) as info:
        parse(Diagnosis, data)
    assert fields(info.value) == ["cause_checks"] and "moon_phase" in str(info.value)


def test_cause_check_answer_must_be_yes_no_or_unknown() -> None:
    data = diagnosis_data()
    data["cause_checks"]["tools_adequate"] = {"answer": "maybe"}
    with pytest.raises(InvalidInput) as info:
        parse(Diagnosis, data)
    assert fields(info.value) == ["cause_checks.tools_adequate.answer"]


# --- measurement plan ----------------------------------------------------------------------------------

@pytest.mark.parametrize("offset", ["30 days", "P", "PT", "P30", "30D", "P-1D", "P0D", "PT0S", "P1.5D", "", "P1DT",
                                    "P99999Y", "P999999999999999999999D", "PT99999999999999999999S",
                                    "P" + "9" * 400 + "D", "P101Y"])
def test_bad_iso_durations_are_refused(memory_service: Service, offset: str) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    with pytest.raises(InvalidInput) as info:
        memory_service.draft_plan(rid, plan_data(items=[plan_item("m1", checkpoints=["P1D", offset])]), ACTOR)
    assert fields(info.value) == ["items[0].checkpoints[1]"]
    assert memory_service.show(rid).plan is None and len(memory_service.history(rid)) == 1


@pytest.mark.parametrize(("text", "days"), [("P1D", 1), ("P2W", 14), ("PT12H", 0.5), ("p30d", 30), ("P1DT12H", 1.5)])
def test_durations_parse(text: str, days: float) -> None:
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert parse_duration(text).after(start) == start + timedelta(days=days)


def test_a_far_but_allowed_checkpoint_is_scheduled(memory_service: Service) -> None:
    from tests.builders import brief_data, delivery_data

    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.diagnose(rid, diagnosis_data(), ACTOR)
    memory_service.draft_plan(rid, plan_data(items=[plan_item("m1", checkpoints=["P100Y"])]), ACTOR)
    memory_service.approve_plan(rid, approval_data(), SPONSOR)
    memory_service.design(rid, brief_data(), ACTOR)
    request = memory_service.deliver(rid, delivery_data(), ACTOR)
    assert request.checkpoints[0].due_at.year == 2126


def test_calendar_months_clip_to_the_end_of_the_month() -> None:
    assert parse_duration("P1M").after(datetime(2026, 1, 31, 9, tzinfo=UTC)) == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert parse_duration("P1Y").after(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2029, 2, 28, tzinfo=UTC)


@given(st.integers(min_value=1, max_value=3650))
def test_day_durations_add_exact_days(days: int) -> None:
    start = datetime(2026, 1, 31, 9, tzinfo=UTC)
    assert parse_duration(f"P{days}D").after(start) == start + timedelta(days=days)


BAD_PLANS = [
    ("level-too-high", {"items": [plan_item("m1", level=5)]}, "items[0]", "does not exist in kirkpatrick"),
    ("ltem-level-9", {"items": [plan_item("m1", framework="ltem", level=9)]}, "items[0]", "ltem"),
    ("level-zero", {"items": [plan_item("m1", level=0)]}, "items[0].level", "greater than or equal"),
    ("unknown-framework", {"items": [plan_item("m1", framework="bloom")]}, "items[0].framework", ""),
    ("unknown-instrument", {"items": [plan_item("m1", instrument="vibes")]}, "items[0].instrument", ""),
    ("no-checkpoints", {"items": [plan_item("m1", checkpoints=[])]}, "items[0].checkpoints", ""),
    ("duplicate-checkpoint", {"items": [plan_item("m1", checkpoints=["P30D", "p30d"])]}, "items[0]", "twice"),
    ("bad-id", {"items": [plan_item("M 1")]}, "items[0].id", "lower-case"),
    ("duplicate-ids", {"items": [plan_item("a"), plan_item("a")]}, "", "share an id"),
    ("no-items", {"items": []}, "items", ""),
    ("missing-target", {"items": [{k: v for k, v in plan_item("m1").items() if k != "target"}]},
     "items[0].target", "is required"),
    ("owner-email", {"items": [plan_item("m1", owner=person("O", "o@"))]}, "items[0].owner.email", "e-mail"),
    ("baseline-without-source", {"items": [{**plan_item("m1"), "baseline": {"value": 1, "date": "2026-01-01"}}]},
     "items[0].baseline.source", "is required"),
    ("costs-zero", {**plan_data(), "costs": {"program_cost": 0}}, "costs.program_cost", "between 0.01 and"),
    ("unknown-item-field", {"items": [plan_item("m1", weight=3)]}, "items[0].weight", "not a known field"),
]


@pytest.mark.parametrize(("data", "field", "message"), [c[1:] for c in BAD_PLANS], ids=[c[0] for c in BAD_PLANS])
def test_bad_plans_name_the_field(data: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(MeasurementPlan, data)
    assert field in fields(info.value), info.value.errors
    assert message in next(e.message for e in info.value.errors if e.field == field)


def test_plan_items_get_ids_in_order() -> None:
    plan = parse(MeasurementPlan, {"items": [plan_item(), plan_item("kept"), plan_item()]})
    assert [i.id for i in plan.items] == ["m1", "kept", "m3"]


def test_behaviour_or_results_levels() -> None:
    def item(framework: str, level: int) -> PlanItem:
        return PlanItem.model_validate(plan_item("x", framework=framework, level=level))

    assert [item("kirkpatrick", n).behaviour_or_results for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert [item("ltem", n).behaviour_or_results for n in range(1, 9)] == [False] * 6 + [True] * 2
    assert [item("phillips", n).behaviour_or_results for n in range(1, 6)] == [False, False, True, True, True]


def test_approver_must_be_a_plain_address(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.draft_plan(rid, plan_data(), ACTOR)
    for bad in ("sam.sponsor@example.org(<bob@example.com>", "Sam Sponsor", ""):
        with pytest.raises(InvalidInput) as info:
            memory_service.approve_plan(rid, approval_data(bad), ACTOR)
        assert fields(info.value) == ["approver"]
    assert memory_service.show(rid).plan_approved_by is None
    with pytest.raises(InvalidInput) as info:
        parse(PlanApproval, {})
    assert fields(info.value) == ["approver"]


# --- other commands ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "data", "field"), [
    ("deliver", {"start_date": "2026-04-10", "end_date": "2026-04-01"}, ""),
    ("deliver", {"audience_reached": "many"}, "audience_reached"),
    ("deliver", {"start_date": "tomorrow"}, "start_date"),
    ("deliver", {"start_date": "9999-12-01", "end_date": "9999-12-30"}, "end_date"),
    ("acknowledge", {"action_plan": [{"owner": "x"}]}, "action_plan[0].step"),
    ("acknowledge", {"recap": ["line one\nline two"]}, "recap[0]"),
    ("acknowledge", {"contributions": [{"stakeholder": "Sam"}]}, "contributions[0].contribution"),
    ("redirect", {"kind": "hope", "rationale": "x"}, "kind"),
    ("design", {"objectives": ["understand the CRM"]}, "objectives[0]"),
    ("cancel", {"why": "x"}, "why"),
    ("decline", {"reason": 42}, "reason"),
    ("record", {}, ""),
    ("record", {"value": 3, "missed_reason": "both"}, ""),
    ("record", {"value": "high"}, "value"),
])
def test_other_commands_name_the_bad_field_and_write_nothing(memory_service: Service, command: str,
                                                             data: dict[str, Any], field: str) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    before = memory_service.show(rid)
    with pytest.raises(InvalidInput) as info:
        if command == "record":
            memory_service.record(rid, "m1:P30D", data, ACTOR)
        else:
            getattr(memory_service, command)(rid, data, ACTOR)
    assert field in fields(info.value), info.value.errors
    after = memory_service.show(rid)
    assert after.model_dump() == before.model_dump() and after.version == before.version
    assert len(memory_service.history(rid)) == 1


@pytest.mark.parametrize("actor", ["", "   ", "ops\nBcc: eve", "ops\rBcc: eve", "x" * 321])
def test_actor_must_be_one_line(memory_service: Service, actor: str) -> None:
    with pytest.raises(InvalidInput) as info:
        memory_service.submit(intake_data(), actor)
    assert fields(info.value) == ["actor"]
    rid = memory_service.submit(intake_data(), ACTOR).id
    with pytest.raises(InvalidInput) as info:
        memory_service.diagnose(rid, diagnosis_data(), actor)
    assert fields(info.value) == ["actor"]
    assert memory_service.show(rid).version == 1


def test_business_goal_missing_and_merged() -> None:
    goal = BusinessGoal(metric="FCR", current_value=0.0)
    assert goal.missing() == ["target_value", "target_date", "data_source"]  # 0.0 counts as given
    merged = goal.merged(BusinessGoal(metric="AHT", target_value=5))
    assert (merged.metric, merged.current_value, merged.target_value) == ("AHT", 0.0, 5)
    assert goal.merged(None) is goal


# --- fuzzing: whatever arrives, the answer is an LdflowError, never a traceback ---------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    | st.sampled_from(["P30D", "P", "2026-01-01", "9999-12-31", "alice@example.org", "yes", "understand it",
                       float("nan"), float("inf"), 10**400, "a\r\nBcc: eve@example.com"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    return [_replace(v, rest, new) if i == head else v for i, v in enumerate(value)]


@given(data=st.data())
def test_any_damaged_input_gets_a_clear_error(data: st.DataObject) -> None:
    from connectors.db.store import ListFilter
    from connectors.testing import InMemoryStore
    from flows.clock import FixedClock
    from states.errors import LdflowError
    from tests.builders import T0, ack_data, brief_data, delivery_data, redirect_data, result_data

    service = Service(InMemoryStore(), FixedClock(T0))
    command, valid = data.draw(st.sampled_from([
        ("submit", intake_data()), ("diagnose", diagnosis_data()), ("draft_plan", plan_data()),
        ("approve_plan", approval_data()), ("design", brief_data()), ("redirect", redirect_data()),
        ("deliver", delivery_data()), ("record", result_data()), ("acknowledge", ack_data()),
        ("cancel", {"reason": "x"}),
    ]))
    path = data.draw(st.sampled_from(_paths(valid)))
    damaged = _replace(valid, path, data.draw(JSON))
    rid = service.submit(intake_data(), ACTOR).id
    try:
        if command == "submit":
            service.submit(damaged, ACTOR)
        elif command == "record":
            service.record(rid, "m1:P30D", damaged, ACTOR)
        else:
            getattr(service, command)(rid, damaged, ACTOR)
    except LdflowError as exc:
        assert str(exc)
    # whatever was accepted can be read back (the store keeps documents as JSON)
    for summary in service.list(ListFilter())[0]:
        service.show(summary.id)
        service.history(summary.id)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_numbers_must_be_finite(memory_service: Service, number: float) -> None:
    with pytest.raises(InvalidInput) as info:
        memory_service.submit(intake_data(business_goal={"current_value": number}), ACTOR)
    assert fields(info.value) == ["business_goal.current_value"]
    rid = memory_service.submit(intake_data(), ACTOR).id
    plan = plan_data()
    plan["items"][0]["target"]["value"] = number
    with pytest.raises(InvalidInput) as info:
        memory_service.draft_plan(rid, plan, ACTOR)
    assert fields(info.value) == ["items[0].target.value"]
    assert memory_service.show(rid).plan is None  # and the request stays readable
