"""Hostile input is refused at the door: nesting depth before parsing, header text, numbers, dates, ids.

Each refusal names the field (exit 2; 4 for an unknown id) and writes nothing; what is stored
stays readable."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.loader import MAX_DEPTH, parse_mapping
from connectors.ports import ListFilter
from connectors.testing import InMemoryInbox, InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.queries import request_filter
from flows.settings import Settings
from flows.steps import take_in
from states.errors import InvalidInput, NotFound
from states.headers import address_problem, header_text_problem
from states.models import SessionPlan
from states.request import TrainingRequest
from states.results import compare
from states.validation import (
    MAX_MEASURE,
    MAX_VALUE_PER_UNIT,
    MIN_MONEY,
    parse,
)
from tests.builders import (
    ACTOR,
    SPONSOR,
    T0,
    approval_data,
    brief_data,
    delivery_data,
    diagnosis_data,
    drive_to,
    intake_data,
    plan_data,
    plan_item,
    result_data,
)

DOMAIN = "example.org"


@pytest.fixture
def inbox() -> InMemoryInbox:
    return InMemoryInbox()


@pytest.fixture
def app(tmp_path: Path, inbox: InMemoryInbox) -> Iterator[App]:
    uow = InMemoryUnitOfWork()
    yield bootstrap.compose(Settings(home=tmp_path, mail_from=f"ld@{DOMAIN}"), store=uow.store, uow=uow,
                            clock=FixedClock(T0), sender=InMemorySender(), sources=lambda: [inbox])


def _mail(subject: str, body: str, sender: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"ld@{DOMAIN}"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(body)
    return message.as_bytes()


# --- nesting depth, before parsing ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["yaml", "json"])
def test_depth_is_refused_at_the_first_level_too_deep_before_the_rest_is_read(kind: str) -> None:
    # For JSON the rest of the document is not even valid: the bracket scan comes before the parser.
    deep = "[" * (MAX_DEPTH + 5)
    text = f'{{"a": {deep} @@@ ' if kind == "json" else f"a: {deep}{']' * (MAX_DEPTH + 5)}\n"
    with pytest.raises(InvalidInput) as caught:
        parse_mapping(text, "deep." + kind, kind)  # type: ignore[arg-type]
    column = len('{"a": ') + MAX_DEPTH if kind == "json" else len("a: ") + MAX_DEPTH
    assert str(caught.value.errors[0]).endswith(
        f"line 1, column {column}: malformed {kind.upper()}: nested more than {MAX_DEPTH} levels deep")


def test_block_yaml_nested_too_deep_names_its_line() -> None:
    text = "a:\n" + "".join(" " * (i + 1) + "-\n" for i in range(MAX_DEPTH + 3))
    with pytest.raises(InvalidInput, match=f"line {MAX_DEPTH + 1}, column .*nested more than {MAX_DEPTH}"):
        parse_mapping(text, "deep.yaml", "yaml")


@pytest.mark.parametrize("kind", ["yaml", "json"])
def test_brackets_inside_strings_and_the_limit_itself_are_fine(kind: str) -> None:
    nested = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    text = (f'{{"t": "{"[" * 500}", "a": {nested}}}' if kind == "json"
            else f"t: '{'[' * 500}'\na: {nested}\n")
    data = parse_mapping(text, "ok", kind)  # type: ignore[arg-type]
    assert data["t"] == "[" * 500


def test_a_mailed_in_yaml_intake_nested_too_deep_is_quarantined_and_the_pass_goes_on(
        app: App, inbox: InMemoryInbox) -> None:
    deep = "title: Deep\nsponsor: " + "[" * 5000 + "]" * 5000 + "\n"
    inbox.add(_mail("Deep one", deep, "Dana <dana@example.org>", "<deep-1@example.org>"))
    inbox.add(_mail("Sales coaching", "Our reps lose deals at the pricing talk.", "Nora <nora@example.org>",
                    "<ok-1@example.org>"))
    summary = take_in(app)
    assert summary.counts == {"processed": 1, "quarantined": 1, "skipped": 0}
    assert f"nested more than {MAX_DEPTH} levels deep" in summary.errors[0]
    assert app.service.show(1).intake.title == "Sales coaching"


# --- text that reaches a mail header: one validator, at intake ----------------------------------------

def _intake(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "title": "Sales coaching", "requested_solution": "a workshop",
        "requester": {"name": "Rita Requester", "email": "rita@example.org"},
        "sponsor": {"name": "Sam Sponsor", "email": "sam@example.org"}}
    data.update(changes)
    return data


@pytest.mark.parametrize(("changes", "field"), [
    ({"title": "Sales\u2028Bcc: victim@example.com"}, "title"),
    ({"title": "Sales\u2029coaching"}, "title"),
    ({"title": "Sales\x85coaching"}, "title"),
    ({"title": "Sales\x9bcoaching"}, "title"),
    ({"requester": {"name": "Rita\x85Bcc: x@example.com", "email": "rita@example.org"}}, "requester.name"),
    ({"sponsor": {"name": "Sam", "email": "=?utf-8?q?victim=40evil.example?=@example.org"}}, "sponsor.email"),
    ({"stakeholders": [{"name": "Eve", "email": "=?iso-8859-1?b?Ym9i?=@example.org"}]}, "stakeholders[0].email"),
])
def test_text_that_would_break_a_header_is_refused_at_intake_with_the_field_named(
        app: App, changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        app.service.submit(_intake(**changes), "ops")
    assert caught.value.exit_code == 2
    assert [e.field for e in caught.value.errors] == [field]
    assert app.service.list(ListFilter())[1] == 0


def test_the_mail_layer_applies_the_same_rules_to_every_header_value() -> None:
    from connectors.email.addresses import HeaderValueError, validate_address, validate_header_text

    for bad in ("a\u2028b", "a\x85b", "a\x9bb", "a\u2029b"):
        with pytest.raises(HeaderValueError):
            validate_header_text("Subject", bad)
        assert header_text_problem(bad) is not None
    with pytest.raises(HeaderValueError, match="encoded-word"):
        validate_address("To", "=?utf-8?q?a?=@example.org")
    assert address_problem("=?utf-8?q?a?=@example.org") is not None
    assert validate_address("To", "a=b?c@example.org") == "a=b?c@example.org"  # no encoded-word: fine
    assert header_text_problem("Été\tà Zürich") is None


# --- numbers: finite and within a documented range; ROI without overflow; stored requests readable ----

@pytest.mark.parametrize(("data", "field"), [
    ({"value": 1e308}, "value"),
    ({"value": -1e13}, "value"),
])
def test_a_result_out_of_range_is_refused_with_the_field(app: App, data: dict[str, object], field: str) -> None:
    request = drive_to(app.service, "delivered")
    key = request.checkpoints[0].key
    with pytest.raises(InvalidInput) as caught:
        app.service.record(request.id, key, data, ACTOR)
    assert [e.field for e in caught.value.errors] == [field]
    assert "between -1,000,000,000,000 and 1,000,000,000,000" in str(caught.value)
    assert app.service.show(request.id).version == request.version


@pytest.mark.parametrize(("change", "field"), [
    ({"costs": {"program_cost": 1e-320}}, "costs.program_cost"),
    ({"costs": {"program_cost": 2e12}}, "costs.program_cost"),
    ({"items": [plan_item("m1", baseline=True, value_per_unit=1e300)]}, "items[0].value_per_unit"),
    ({"items": [plan_item("m1", target={"value": 1e200, "date": "2026-12-31"})]}, "items[0].target.value"),
])
def test_plan_numbers_out_of_range_are_refused(app: App, change: dict[str, object], field: str) -> None:
    request = drive_to(app.service, "received")
    app.service.diagnose(request.id, diagnosis_data(), ACTOR)
    data = plan_data() | change
    with pytest.raises(InvalidInput) as caught:
        app.service.draft_plan(request.id, data, ACTOR)
    assert [e.field for e in caught.value.errors] == [field]


def test_the_largest_allowed_numbers_give_a_finite_roi(app: App) -> None:
    plan = plan_data(costs=False) | {"costs": {"program_cost": MIN_MONEY}}
    plan["items"][0]["value_per_unit"] = MAX_VALUE_PER_UNIT
    plan["items"][0]["baseline"]["value"] = -MAX_MEASURE
    plan["items"][0]["target"]["value"] = MAX_MEASURE
    request = app.service.submit(intake_data(), ACTOR)
    app.service.diagnose(request.id, diagnosis_data(), ACTOR)
    app.service.draft_plan(request.id, plan, ACTOR)
    app.service.approve_plan(request.id, approval_data(), SPONSOR)
    app.service.design(request.id, brief_data(), ACTOR)
    request = app.service.deliver(request.id, delivery_data(), ACTOR)
    for c in request.checkpoints:
        request = app.service.record(request.id, c.key, result_data(MAX_MEASURE, early_reason="at once"), ACTOR)
    measured = app.service.measure(request.id, ACTOR)
    assert measured.roi is not None
    assert all(math.isfinite(x) for x in (measured.roi.benefits, measured.roi.benefit_cost_ratio,
                                           measured.roi.roi_percent))


def test_a_document_stored_before_the_bounds_stays_readable() -> None:
    # What an overflowed ROI left in the database (nulls) and a result and a title no longer accepted.
    data = json.loads((Path(__file__).parent / "data" / "stored_request_delivered.json").read_text())
    data["intake"]["title"] = "Sales\u2028coaching"
    data["checkpoints"][0]["value"] = 1e308
    data["plan"]["costs"]["program_cost"] = 1e-320
    data["roi"] = {"benefits": None, "costs": 1e-320, "currency": "EUR", "benefit_cost_ratio": None,
                   "roi_percent": None}
    request = TrainingRequest.from_stored(json.dumps(data))
    assert request.roi is None and request.checkpoints[0].value == 1e308
    assert request.intake.title == "Sales\u2028coaching"
    results, roi = compare(request.plan, request.checkpoints)
    assert roi is None or all(math.isfinite(x) for x in (roi.benefits, roi.benefit_cost_ratio, roi.roi_percent))


# --- dates and durations; ids and paging within 64 bits ----------------------------------------------

def test_a_target_dated_on_or_before_its_baseline_is_refused(app: App) -> None:
    request = drive_to(app.service, "received")
    app.service.diagnose(request.id, diagnosis_data(), ACTOR)
    early = plan_item("m1", target={"value": 75.0, "date": "2026-01-15"})  # baseline 2026-02-01
    with pytest.raises(InvalidInput, match=r"target.date \(2026-01-15\) must be after baseline.date") as caught:
        app.service.draft_plan(request.id, plan_data() | {"items": [early]}, ACTOR)
    assert [e.field for e in caught.value.errors] == ["items[0]"]


@pytest.mark.parametrize(("dates", "field"), [
    ({"start_date": "0001-01-01", "end_date": "0001-01-02"}, "start_date"),
    ({"start_date": "2026-04-06", "end_date": "2040-01-01"}, "end_date"),
])
def test_a_delivery_far_from_the_clocks_today_is_refused(app: App, dates: dict[str, str], field: str) -> None:
    request = drive_to(app.service, "designed")
    with pytest.raises(InvalidInput, match="within 5 years of today") as caught:
        app.service.deliver(request.id, delivery_data() | dates, ACTOR)
    assert field in [e.field for e in caught.value.errors]
    assert app.service.show(request.id).state.value == "designed"


def test_the_delivery_window_is_a_setting(tmp_path: Path) -> None:
    uow = InMemoryUnitOfWork()
    app = bootstrap.compose(Settings(home=tmp_path, delivery_window_years=20), store=uow.store, uow=uow,
                            clock=FixedClock(T0), sender=InMemorySender(), sources=lambda: [])
    request = drive_to(app.service, "designed")
    delivered = app.service.deliver(request.id, delivery_data() | {"end_date": "2040-01-01"}, ACTOR)
    assert delivered.state.value == "delivered"


@pytest.mark.parametrize(("start", "end"), [
    ("0001-01-01T00:30:00+01:00", "0001-01-01T02:00:00+01:00"),
    ("9999-12-31T22:00:00-05:00", "9999-12-31T23:00:00-05:00"),
])
def test_session_times_whose_utc_conversion_leaves_the_calendar_are_refused(start: str, end: str) -> None:
    with pytest.raises(InvalidInput, match="between the years 1 and 9999 in UTC"):
        parse(SessionPlan, {"title": "Practice", "start": start, "end": end})


@pytest.mark.parametrize("request_id", [2**63, 10**20, 0, -(10**20)])
def test_ids_beyond_64_bits_are_not_found(app: App, request_id: int) -> None:
    with pytest.raises(NotFound):
        app.service.show(request_id)
    with pytest.raises(NotFound):
        app.service.history(request_id)
    with pytest.raises(NotFound):
        app.service.cancel(request_id, {"reason": "x"}, ACTOR)


def test_an_offset_beyond_64_bits_is_invalid_input_naming_it() -> None:
    with pytest.raises(InvalidInput) as caught:
        request_filter(offset=2**63)
    assert [e.field for e in caught.value.errors] == ["offset"]
