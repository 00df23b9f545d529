"""The CLI's views and export writers on requests built by the real service (in-memory store)."""

from __future__ import annotations

import csv
import io
import json

from rich.console import Console

from flows import render
from flows.service import Service
from tests.builders import ACTOR, drive_to, intake_data


def _text(renderable: object) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_every_event_of_a_full_lifecycle_gets_a_readable_summary(memory_service: Service) -> None:
    request = drive_to(memory_service, "acknowledged", intake=intake_data(title="Objections [urgent]"))
    memory_service.add_note(request.id, "Sponsor asked for the report in German.", ACTOR)
    records = memory_service.history(request.id)
    assert {r.type for r in records} >= {"submitted", "diagnosed", "plan_drafted", "plan_approved", "designed",
                                         "delivered", "checkpoint_scheduled", "result_recorded", "measured",
                                         "acknowledged", "note_added"}
    for record in records:
        summary = render.summarize(record)
        assert summary and not summary.startswith("{"), (record.type, summary)
        assert f"{request.id}:m1" not in summary  # checkpoint keys are shown without the request id
    text = _text(render.timeline(request.id, records))
    assert "diagnosed (received → diagnosed)" in text and "Sponsor asked for the report in German." in text
    # User text is shown as typed, never read as Rich markup.
    assert "Objections [urgent]" in _text(render.request_view(memory_service.show(request.id)))


def test_csv_export_neutralises_spreadsheet_formulas(memory_service: Service) -> None:
    formula = '=HYPERLINK("http://evil.example","click")'
    request = drive_to(memory_service, "acknowledged", intake=intake_data(title=formula))
    out = io.StringIO()
    assert render.export_csv(out, [memory_service.show(request.id)]) == 1
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["title"] == "'" + formula
    assert row["state"] == "acknowledged" and row["chosen_path"] == "design"


def test_json_export_streams_a_valid_list(memory_service: Service) -> None:
    for _ in range(3):
        drive_to(memory_service, "diagnosed")
    out = io.StringIO()
    requests = [memory_service.show(i) for i in (1, 2, 3)]
    assert render.export_json(out, requests, memory_service.history) == 3
    data = json.loads(out.getvalue())
    assert [d["request"]["id"] for d in data] == [1, 2, 3] and data[0]["history"][0]["type"] == "submitted"
    empty = io.StringIO()
    assert render.export_json(empty, [], memory_service.history) == 0 and json.loads(empty.getvalue()) == []
