"""The one input loader reads a mapping the same way for every channel (CLI file, drop folder, mail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.email.dropfolder import DropFolderSource
from connectors.loader import MAX_DEPTH, load_file, parse_mapping
from states.errors import InvalidInput


@pytest.mark.parametrize("kind", ["yaml", "json"])
def test_nesting_deeper_than_the_limit_is_invalid_input_not_a_recursion_error(kind: str) -> None:
    deep = "[" * 5000 + "]" * 5000
    text = f'{{"a": {deep}}}' if kind == "json" else f"a: {deep}\n"
    with pytest.raises(InvalidInput) as caught:
        parse_mapping(text, "deep." + kind, kind)  # type: ignore[arg-type]
    assert f"nested more than {MAX_DEPTH} levels deep" in str(caught.value)
    assert caught.value.source == "deep." + kind


def test_yaml_booleans_of_yaml_1_1_stay_strings_and_dates_become_iso_text() -> None:
    data = parse_mapping("a: no\nb: yes\nc: true\nd: 2026-05-01\n", "x.yaml", "yaml")
    assert data == {"a": "no", "b": "yes", "c": True, "d": "2026-05-01"}


def test_a_date_shaped_value_that_is_no_date_stays_text_for_the_model_to_name() -> None:
    data = parse_mapping("due: 2026-02-30\nat: 2026-05-01 25:00:00\nok: 2026-02-28\n", "x.yaml", "yaml")
    assert data == {"due": "2026-02-30", "at": "2026-05-01 25:00:00", "ok": "2026-02-28"}


@pytest.mark.parametrize(("text", "kind"), [("a: 1\na: 2\n", "yaml"), ('{"a": 1, "a": 2}', "json")])
def test_a_key_given_twice_is_refused_in_yaml_and_json(text: str, kind: str) -> None:
    with pytest.raises(InvalidInput, match="the key 'a' is given twice"):
        parse_mapping(text, "twice", kind)  # type: ignore[arg-type]


def test_the_drop_folder_reads_files_exactly_as_the_cli_does(tmp_path: Path) -> None:
    body = "title: Sales meeting\ncauses:\n  used_to: no\nwhen: 2026-05-01\n"
    (tmp_path / "a.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "b.yaml").write_text("title: x\ntitle: y\n", encoding="utf-8")
    items = {Path(i.path or "").name: i for i in DropFolderSource(tmp_path).fetch_new()}
    assert items["a.yaml"].intake == load_file(str(tmp_path / "a.yaml"))[0]
    assert items["a.yaml"].intake == {"title": "Sales meeting", "causes": {"used_to": "no"}, "when": "2026-05-01"}
    assert "given twice" in (items["b.yaml"].error or "")
