"""Vague verbs anywhere in an action are flagged with the observable alternative; observable actions pass."""

from __future__ import annotations

import pytest

from flows.service import Service
from states.errors import InvalidInput
from states.observable import vague_phrase
from tests.builders import ACTOR, brief_data, diagnosis_data, drive_to, intake_data

# (action, the phrase named, a word of the suggested alternative)
FLAGGED = [
    ("Understand objections", "understand", "explain"),
    ("demonstrate an understanding of objections", "demonstrate an understanding", "explain"),
    ("Demonstrate a clear understanding of the pricing tiers", "demonstrate a clear understanding", "explain"),
    ("Gain awareness of phishing risks", "gain awareness", "flag"),
    ("Feel confident handling price objections", "feel confident", "unaided"),
    ("Feel more comfortable escalating billing disputes", "feel more comfortable", "unaided"),
    ("Be familiar with the returns policy", "be familiar with", "find"),
    ("Become familiar with the new CRM screens", "become familiar", "find"),
    ("Appreciate the customer's point of view", "appreciate", "restate"),
    ("Learners will appreciate the customer's view", "appreciate", "restate"),
    ("Ask three questions and appreciate the answers", "appreciate", "restate"),
    ("Show knowledge of the escalation rules", "show knowledge", "find"),
    ("Develop a deeper understanding of the product", "develop a deeper understanding", "explain"),
    ("Handle objections and understand the customer's needs", "understand", "explain"),
    ("Attend the webinar to learn about the new CRM", "learn about", "afterwards"),
    ("Reps should know the three escalation criteria", "know", "state"),
    ("Participants will be able to grasp the pricing model", "grasp", "explain"),
]

PASSES = [
    "Ask three discovery questions",
    "ask three discovery questions before proposing a fix",
    "Ask three questions to understand the customer's need",  # the purpose, not the action
    "Explain the bill so customers understand it",
    "Let the customer know the delivery date before hanging up",
    "Use product knowledge to answer tier-1 questions without escalating",
    "knowledgeably explain the price",
    "Restate the customer's objection in their words",
    "Log every call in the CRM within 5 minutes",
]


@pytest.mark.parametrize(("action", "phrase", "instead"), FLAGGED, ids=[a for a, _, _ in FLAGGED])
def test_vague_phrases_anywhere_are_flagged_with_an_alternative(action: str, phrase: str, instead: str) -> None:
    found = vague_phrase(action)
    assert found is not None, action
    assert " ".join(found[0].lower().split()) == phrase and instead in found[1], found


@pytest.mark.parametrize("action", PASSES)
def test_observable_actions_pass(action: str) -> None:
    assert vague_phrase(action) is None


def test_a_vague_observable_action_is_refused_naming_the_field_the_phrase_and_the_alternative(
        memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    data = diagnosis_data(observable_actions=["Ask three discovery questions",
                                              "demonstrate an understanding of objections"])
    with pytest.raises(InvalidInput) as info:
        memory_service.diagnose(rid, data, ACTOR)
    (error,) = info.value.errors
    assert error.field == "observable_actions[1]"
    assert "uses the vague verb 'demonstrate an understanding'" in error.message
    assert "explain it in their own words" in error.message
    assert memory_service.show(rid).state.value == "received" and len(memory_service.history(rid)) == 1


def test_a_design_objective_is_checked_the_same_way(memory_service: Service) -> None:
    rid = drive_to(memory_service, "diagnosed").id
    with pytest.raises(InvalidInput) as info:
        memory_service.design(rid, brief_data(objectives=["Feel confident handling objections"]), ACTOR)
    assert [e.field for e in info.value.errors] == ["objectives[0]"]
    assert "'feel confident'" in info.value.errors[0].message
