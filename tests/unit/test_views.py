"""The terminal views (flows.views) on requests built by the real service (in-memory store)."""

from __future__ import annotations

import io

from rich.console import Console

from connectors.db.audit import AuditRecord
from flows import views
from flows.service import Service
from states.lifecycle import State
from states.results import Outcome
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
        summary = views.summarize(record)
        assert summary and not summary.startswith("{"), (record.type, summary)
        assert f"{request.id}:m1" not in summary  # checkpoint keys are shown without the request id
    text = _text(views.timeline(request.id, records))
    assert "diagnosed (received → diagnosed)" in text and "Sponsor asked for the report in German." in text
    # User text is shown as typed, never read as Rich markup.
    assert "Objections [urgent]" in _text(views.request_view(memory_service.show(request.id)))


def test_every_state_and_outcome_has_a_style() -> None:
    assert set(views.STATE_STYLE) == set(State) and set(views.OUTCOME_STYLE) == set(Outcome)


def _record(type_: str, payload: dict[str, object], from_state: str | None = None) -> AuditRecord:
    return AuditRecord(seq=1, request_id=7, type=type_, trigger=None, from_state=from_state, to_state=None,
                       version=1, actor=ACTOR, at="2026-04-21T09:00:00.000000Z", payload=payload, prev_hash="",
                       hash="")


def test_mail_events_name_the_template_and_the_recipients() -> None:
    sent = _record("email_sent", {"key": "7:survey:m1:P30D", "template": "survey", "to": ["a@x.org", "b@x.org"]})
    assert views.summarize(sent) == "survey to a@x.org, b@x.org"
    marked = _record("email_sent", {"key": "7:results_report", "template": "results_report",
                                    "detail": "marked sent by an operator"})
    assert views.summarize(marked) == "results report to : marked sent by an operator"


def test_a_payload_that_does_not_fit_its_event_is_shown_as_is() -> None:
    assert views.summarize(_record("email_sent", {"to": ["a@x.org"]})) == '{"to": ["a@x.org"]}'
    assert views.summarize(_record("something_new", {"x": 1})) == '{"x": 1}'
    assert views.summarize(_record("session_cancelled", {"session": "s1", "sequence": 2})) == \
        '{"sequence": 2, "session": "s1"}'
    assert views.summarize(_record("note_added", {"text": "hello", "source": "email"})) == "hello (from email)"
