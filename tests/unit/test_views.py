"""The terminal views (flows.views) on requests built by the real service (in-memory store)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from connectors.db.audit import AuditRecord
from flows import views
from flows.queries import request_filter
from flows.service import Service
from flows.timeline import _SUMMARIES, summarize, timeline
from states import events as ev
from states.lifecycle import State
from states.results import Outcome
from tests.builders import ACTOR, drive_to, intake_data

SESSION: dict[str, Any] = {
    "id": "lab-1", "title": "Discovery practice lab", "start": "2026-04-01T09:00:00+02:00",
    "end": "2026-04-01T12:00:00+02:00", "location": "Room 3",
    "attendees": [{"name": "Sales team", "email": "sales@example.org"}],
}


def _text(renderable: object, width: int = 200) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
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
        summary = summarize(record)
        assert summary and not summary.startswith("{"), (record.type, summary)
        assert f"{request.id}:m1" not in summary  # checkpoint keys are shown without the request id
    text = _text(timeline(request.id, records))
    assert "diagnosed (received → diagnosed)" in text and "Sponsor asked for the report in German." in text
    # User text is shown as typed, never read as Rich markup.
    assert "Objections [urgent]" in _text(views.request_view(memory_service.show(request.id)))


def test_every_state_and_outcome_has_a_style() -> None:
    assert set(views.STATE_STYLE) == set(State) and set(views.OUTCOME_STYLE) == set(Outcome)


def _record(type_: str, payload: dict[str, object], from_state: str | None = None) -> AuditRecord:
    return AuditRecord(seq=1, request_id=7, type=type_, trigger=None, from_state=from_state, to_state=None,
                       version=1, actor=ACTOR, at="2026-04-21T09:00:00.000000Z", payload=payload, prev_hash="",
                       hash="")


def test_every_event_class_has_a_summary_in_words() -> None:
    assert set(_SUMMARIES) == set(ev.EVENTS.values())


def test_mail_events_name_the_template_and_the_recipients() -> None:
    sent = _record("email_sent", {"key": "7:survey:m1:P30D", "template": "survey", "to": ["a@x.org", "b@x.org"]})
    assert summarize(sent) == "survey to a@x.org, b@x.org"
    marked = _record("email_sent", {"key": "7:results_report", "template": "results_report",
                                    "detail": "marked sent by an operator"})
    assert summarize(marked) == "results report: marked sent by an operator"


def test_a_payload_that_does_not_fit_its_event_is_shown_as_is() -> None:
    assert summarize(_record("email_sent", {"to": ["a@x.org"]})) == '{"to": ["a@x.org"]}'
    assert summarize(_record("something_new", {"x": 1})) == '{"x": 1}'
    assert summarize(_record("session_cancelled", {"session": "s1", "sequence": 2, "why": "x"})) == \
        '{"sequence": 2, "session": "s1", "why": "x"}'
    assert summarize(_record("note_added", {"text": "hello", "source": "email"})) == "hello (from email)"


def test_session_events_are_told_in_words(memory_service: Service) -> None:
    rid = drive_to(memory_service, "designed").id
    memory_service.schedule_session(rid, SESSION, ACTOR)
    memory_service.schedule_session(rid, {**SESSION, "start": "2026-04-02T09:00:00+02:00",
                                          "end": "2026-04-02T12:00:00+02:00", "attendees": []}, ACTOR)
    memory_service.cancel(rid, {"reason": "Budget frozen."}, ACTOR)
    by_type = {r.type: summarize(r) for r in memory_service.history(rid)}
    assert by_type["session_scheduled"] == ("lab-1 'Discovery practice lab', 2026-04-01 07:00Z – 10:00Z at Room 3; "
                                            "invited sales@example.org")
    assert by_type["session_rescheduled"] == (
        "lab-1 'Discovery practice lab', 2026-04-02 07:00Z – 10:00Z at Room 3; invited the audience contact or "
        "requester (update 1 of the invite)")
    assert by_type["session_cancelled"] == "lab-1 cancelled; the attendees are sent the cancellation"


def test_show_lists_the_sessions(memory_service: Service) -> None:
    rid = drive_to(memory_service, "designed").id
    memory_service.schedule_session(rid, SESSION, ACTOR)
    memory_service.schedule_session(rid, {**SESSION, "id": "lab-2", "attendees": []}, ACTOR)
    memory_service.schedule_session(rid, {**SESSION, "start": "2026-04-02T09:00:00+02:00",
                                          "end": "2026-04-02T12:00:00+02:00"}, ACTOR)
    text = _text(views.request_view(memory_service.show(rid)), width=120)
    assert "Sessions" in text
    words = " ".join(text.replace("│", " ").split())
    assert ("lab-1 updated 1 time 2026-04-02 07:00Z – 10:00Z Discovery practice lab at Room 3 "
            "attendees sales@example.org") in words
    # No attendees given: the invite went to the requester.
    assert "lab-2 scheduled 2026-04-01 07:00Z – 10:00Z Discovery practice lab at Room 3 attendees " \
           "rita.requester@example.org (default)" in words


def _listing(service: Service, width: int) -> list[str]:
    rows, total = service.list(request_filter())
    return _text(views.list_table(rows, 1, 1, total), width=width).splitlines()


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_list_shows_id_and_title_first_at_any_width(memory_service: Service, width: int) -> None:
    long_title = "Objection handling for the tier-1 support agents after the launch"
    drive_to(memory_service, "acknowledged", intake=intake_data(title=long_title))
    drive_to(memory_service, "received", intake=intake_data(title="Short one"))
    lines = _listing(memory_service, width)
    assert all(len(line.rstrip()) <= width for line in lines)
    header = lines[1].split()
    assert header[:3] == ["id", "title", "state"]
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("1 "))
    row = lines[first].split()
    assert row[0] == "1" and row[1] == "Objection" and "acknowledged" in row  # the state is never cut
    # The title folds onto the following lines, word by word: nothing of it is dropped.
    start, end = lines[1].index("title"), lines[1].index("state")
    folded = " ".join(line[start:end].strip() for line in lines[first:first + 4])
    assert folded.startswith(long_title), folded
    assert any(line.split()[:3] == ["2", "Short", "one"] for line in lines)
    # The other columns drop in order (created, then requester / sponsor, ...) as the width shrinks.
    shown = {name for name in ("requester", "created", "updated", "v") if name in lines[1].split()}
    expected = {60: set(), 80: {"v", "updated"}, 100: {"v", "updated"},
                160: {"v", "requester", "created", "updated"}}[width]
    assert shown == expected, lines[1]
