"""The export writers (flows.exports) on requests built by the real service (in-memory store)."""

from __future__ import annotations

import csv
import io
import json

from flows import exports
from flows.service import Service
from tests.builders import drive_to, intake_data


def test_csv_export_neutralises_spreadsheet_formulas(memory_service: Service) -> None:
    formula = '=HYPERLINK("http://evil.example","click")'
    request = drive_to(memory_service, "acknowledged", intake=intake_data(title=formula))
    out = io.StringIO()
    assert exports.export_csv(out, [memory_service.show(request.id)]) == 1
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["title"] == "'" + formula
    assert row["state"] == "acknowledged" and row["chosen_path"] == "design"


def test_json_export_streams_a_valid_list(memory_service: Service) -> None:
    for _ in range(3):
        drive_to(memory_service, "diagnosed")
    out = io.StringIO()
    requests = [memory_service.show(i) for i in (1, 2, 3)]
    assert exports.export_json(out, requests, memory_service.history) == 3
    data = json.loads(out.getvalue())
    assert [d["request"]["id"] for d in data] == [1, 2, 3] and data[0]["history"][0]["type"] == "submitted"
    empty = io.StringIO()
    assert exports.export_json(empty, [], memory_service.history) == 0 and json.loads(empty.getvalue()) == []
