"""Every file in examples/ parses with the model its command uses, through the CLI's own loader,
and the CLI's loader reads YAML the way a person means it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from connectors.loader import load_file
from connectors.rosters import load_roster
from states.amendments import Amendment
from states.companions import CompanionPiece
from states.errors import InvalidInput
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
from states.validation import parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MODELS: dict[str, type[BaseModel]] = {
    "intake.yaml": Intake,
    "intake-crm.json": Intake,
    "diagnosis.yaml": Diagnosis,
    "diagnosis-crm.yaml": Diagnosis,
    "plan.yaml": MeasurementPlan,
    "plan-crm.yaml": MeasurementPlan,
    "plan-evidence.yaml": MeasurementPlan,
    "plan-survey.yaml": MeasurementPlan,
    "roster.csv": Roster,
    "approval.yaml": PlanApproval,
    "design.yaml": DesignBrief,
    "redirect.yaml": Redirect,
    "delivery.yaml": Delivery,
    "session.yaml": SessionPlan,
    "result.yaml": CheckpointResult,
    "acknowledgement.yaml": Acknowledgement,
    "decline.yaml": Reason,
    "cancel.yaml": Reason,
    "reopen.yaml": Reason,
    "amendment.yaml": Amendment,
    "companion.yaml": CompanionPiece,
}


def test_every_example_has_a_model() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_file()) == sorted(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_example_parses_with_its_model(name: str) -> None:
    data, source = load_roster(str(EXAMPLES / name)) if name == "roster.csv" else load_file(str(EXAMPLES / name))
    if name == "result.yaml":
        assert data.pop("checkpoint") == "discovery:P30D"  # the CLI takes the checkpoint key from the file
    parsed = parse(MODELS[name], data, source)
    # Complete, not just well-formed: the fields the guards ask for are present.
    if isinstance(parsed, Diagnosis):
        assert len(parsed.cause_checks) == 9 and parsed.observable_actions
    if isinstance(parsed, MeasurementPlan):
        assert all(item.baseline for item in parsed.items if item.behaviour_or_results)
    if isinstance(parsed, Acknowledgement):
        assert parsed.recap and parsed.contributions and all(step.owner for step in parsed.action_plan)
    if isinstance(parsed, Redirect):
        assert parsed.kind is not None and parsed.rationale
    if isinstance(parsed, Reason | Amendment):
        assert parsed.reason


def _load(tmp_path: Path, text: str, name: str = "input.yaml") -> dict[str, Any]:
    path = tmp_path / name
    path.write_text(text)
    return load_file(str(path))[0]


def test_yes_and_no_stay_answers_not_booleans(tmp_path: Path) -> None:
    data = _load(tmp_path, "a: yes\nb: no\nc: on\nd: true\ne: 2026-11-10\n")
    assert data == {"a": "yes", "b": "no", "c": "on", "d": True, "e": "2026-11-10"}


@pytest.mark.parametrize(("text", "name", "expected"), [
    ("reason: a\nreason: b\n", "twice.yaml", "line 2, column 1: malformed YAML: the key 'reason' is given twice"),
    ("a: [1, 2\n", "open.yaml", "malformed YAML"),
    ("- just\n- a list\n", "list.yaml", "expected a mapping of fields at the top level, got list"),
    ('{"a": 1,}', "bad.json", "line 1, column 9: malformed JSON"),
    ("a: &x [1, 2]\nb: *x\n", "alias.yaml", "line 2, column 4: malformed YAML: aliases"),
])
def test_malformed_files_name_the_file_and_line(tmp_path: Path, text: str, name: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _load(tmp_path, text, name)
    assert caught.value.source.endswith(name)
    assert expected in str(caught.value)


def test_an_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    assert _load(tmp_path, "# nothing yet\n") == {}


def test_a_file_that_is_not_utf8_or_too_big_is_refused(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("reason: Gr\u00fc\u00dfe\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="latin1.yaml is not UTF-8 text"):
        load_file(str(latin1))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * 5_000_000 + b"\n")
    with pytest.raises(InvalidInput, match="big.yaml is larger than 5 MB"):
        load_file(str(big))
