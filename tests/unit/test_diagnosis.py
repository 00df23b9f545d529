"""Diagnosis rules: environment first, then the individual; the result is a list of paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.diagnosis import DESIGN, has_skill_gap, recommend
from states.models import CAUSE_CHECKS, Diagnosis, RedirectKind

# Every check answered so that the environment is fine and they can do it.
HEALTHY = {"expectations_clear": "yes", "tools_adequate": "yes", "process_adequate": "yes",
           "consequences_aligned": "yes", "simpler_way": "no", "could_do_if_life_depended": "yes",
           "used_to_do_it": "yes", "used_often": "yes", "job_aid_possible": "no"}


def diagnose(**answers: str) -> Diagnosis:
    checks = {**HEALTHY, **answers}
    return Diagnosis.model_validate({"observable_actions": ["log each call"],
                                     "cause_checks": {k: {"answer": v, "evidence": f"saw {k}"}
                                                      for k, v in checks.items()}})


def paths(diagnosis: Diagnosis) -> list[str]:
    return [r.path for r in recommend(diagnosis)]


@pytest.mark.parametrize(("check", "answer", "path"), [
    ("expectations_clear", "no", "expectations_feedback"),
    ("tools_adequate", "no", "tool_fix"),
    ("process_adequate", "no", "process_change"),
    ("consequences_aligned", "no", "incentive_change"),
    ("simpler_way", "yes", "task_simplification"),
    ("job_aid_possible", "yes", "job_aid"),
])
def test_each_environment_obstacle_recommends_its_redirect(check: str, answer: str, path: str) -> None:
    recs = recommend(diagnose(**{check: answer}))
    assert [r.path for r in recs] == [path]
    assert f"saw {check}" in recs[0].reasons[0]  # the evidence travels with the reason


def test_can_do_it_and_nothing_in_the_way_points_at_expectations_not_training() -> None:
    recs = recommend(diagnose())
    assert [r.path for r in recs] == ["expectations_feedback"]
    assert "not training" in recs[0].reasons[0]


def test_never_could_do_it_means_formal_training() -> None:
    recs = recommend(diagnose(could_do_if_life_depended="no", used_to_do_it="no", used_often="no"))
    assert [r.path for r in recs] == [DESIGN]
    assert "formal training" in recs[0].reasons[0]


def test_used_to_but_rarely_means_practice() -> None:
    recs = recommend(diagnose(could_do_if_life_depended="no", used_to_do_it="yes", used_often="no"))
    assert [r.path for r in recs] == [DESIGN]
    assert "practice" in recs[0].reasons[0]


def test_used_to_and_often_means_feedback_and_coaching() -> None:
    assert paths(diagnose(could_do_if_life_depended="no", used_to_do_it="yes", used_often="yes")) == ["coaching"]


def test_one_request_can_need_a_redirect_and_a_designed_piece() -> None:
    found = paths(diagnose(tools_adequate="no", job_aid_possible="yes", could_do_if_life_depended="no",
                           used_to_do_it="no"))
    assert found == ["tool_fix", "job_aid", DESIGN]  # environment first


def test_skill_gap_is_could_not_even_if_their_life_depended_on_it() -> None:
    assert has_skill_gap(diagnose(could_do_if_life_depended="no"))
    assert not has_skill_gap(diagnose(could_do_if_life_depended="yes"))
    assert not has_skill_gap(diagnose(could_do_if_life_depended="unknown"))
    assert not has_skill_gap(Diagnosis())


def test_no_answers_no_recommendation() -> None:
    assert recommend(Diagnosis()) == []


ANSWERS = st.sampled_from(["yes", "no", "unknown"])


@given(st.fixed_dictionaries({k: ANSWERS for k in CAUSE_CHECKS}))
def test_recommendations_are_known_unique_paths_with_reasons(answers: dict[str, str]) -> None:
    diagnosis = diagnose(**answers)
    recs = recommend(diagnosis)
    found = [r.path for r in recs]
    assert len(found) == len(set(found))
    assert set(found) <= {DESIGN} | {k.value for k in RedirectKind}
    assert all(r.reasons for r in recs)
    # design is recommended exactly when there is a skill gap that is not merely lack of use
    expect_design = answers["could_do_if_life_depended"] == "no" and not (
        answers["used_to_do_it"] == "yes" and answers["used_often"] == "yes")
    assert (DESIGN in found) == expect_design
    assert (DESIGN in found) <= has_skill_gap(diagnosis)
