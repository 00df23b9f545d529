"""A bounded fuzz pass (hypothesis) over what strangers can hand ldflow: the input loader (CLI files, drop
folder, mailed-in YAML), the MIME intake, the reply parser and the intake models. No crash other than a
clear refusal: ``InvalidInput`` naming a field, or a message quarantined with its defects.

Each property runs a bounded number of examples, each under a deadline, so the whole pass takes a few
seconds (``HYPOTHESIS_PROFILE=thorough`` digs deeper)."""

from __future__ import annotations

import json
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email.inbound import parse_message
from connectors.email.replies import first_meaningful_lines, interpret_reply, match_request
from connectors.loader import MAX_DEPTH, parse_mapping
from connectors.testing import InMemoryInbox, InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.clock import FixedClock
from flows.intake import intake_from_mail
from flows.settings import Settings
from flows.steps import take_in
from states.errors import InvalidInput
from states.headers import HEADER_FORBIDDEN
from states.models import Intake, MeasurementPlan
from states.validation import parse
from tests.builders import T0, intake_data, plan_data

FUZZ = settings(max_examples=150, deadline=timedelta(milliseconds=800),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Text with what attackers like: controls, separators, brackets, YAML and MIME syntax.
_nasty = st.text(alphabet=st.sampled_from(
    list("abc :-[]{}&*!|>'\"#%@=?\n\t\r\\,") + ["\x00", "\x1b", "\x85", "\u2028", "\u2029", "\ufeff", "é", "😀"]),
    max_size=300)
_scalars = st.none() | st.booleans() | st.integers() | st.floats() | _nasty
_json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(_nasty, inner, max_size=4), max_leaves=40)


def _refused_or_mapping(text: str, kind: str) -> None:
    try:
        data = parse_mapping(text, "fuzz", kind)  # type: ignore[arg-type]
    except InvalidInput as exc:
        assert exc.errors and exc.exit_code == 2
    else:
        assert isinstance(data, dict) and all(isinstance(k, str) for k in data)


@FUZZ
@given(text=_nasty, kind=st.sampled_from(["yaml", "json"]))
def test_the_loader_on_any_text_gives_a_mapping_or_a_clear_refusal(text: str, kind: str) -> None:
    _refused_or_mapping(text, kind)


@FUZZ
@given(value=_json_values, depth=st.integers(0, MAX_DEPTH * 3), kind=st.sampled_from(["yaml", "json"]))
def test_the_loader_on_any_nested_document_gives_a_mapping_or_a_clear_refusal(value: Any, depth: int,
                                                                             kind: str) -> None:
    for _ in range(depth):
        value = [value]
    _refused_or_mapping(json.dumps({"a": value}), kind)  # JSON is YAML too


_header_names = st.sampled_from(["From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Date",
                                 "Content-Type", "Content-Transfer-Encoding", "MIME-Version", "X-Evil"])
_raw_mail = st.builds(
    lambda headers, body: b"".join(f"{n}: {v}\r\n".encode("utf-8", "surrogatepass") for n, v in headers)
    + b"\r\n" + body,
    st.lists(st.tuples(_header_names, _nasty), max_size=8), st.binary(max_size=400))


@FUZZ
@given(raw=st.binary(max_size=2000) | _raw_mail)
def test_the_mime_intake_never_raises_and_the_reply_parser_reads_any_body(raw: bytes) -> None:
    message = parse_message(raw)
    assert message.message_id
    assert isinstance(message.reason, str)
    intent = interpret_reply(message.body_text or "")
    assert isinstance(intent.kind, str) and intent.kind
    first_meaningful_lines(message.body_text or "")
    match_request(message, lambda ids: {})


@FUZZ
@given(body=_nasty)
def test_the_reply_parser_reads_any_text(body: str) -> None:
    intent = interpret_reply(body)
    assert isinstance(intent.kind, str)
    assert intent.value is None or isinstance(intent.value, float)


@FUZZ
@given(subject=_nasty, body=_nasty | _nasty.map(lambda t: f"sponsor: {t}\ntitle: {t}\n"))
def test_a_mailed_in_request_becomes_data_or_is_quarantined(subject: str, body: str) -> None:
    from connectors.db.inbound import Quarantine

    message = EmailMessage()
    message["From"] = "Dana <dana@example.org>"
    message["Subject"] = HEADER_FORBIDDEN.sub(" ", subject)[:200]  # what the stdlib lets us build
    message["Message-ID"] = "<fuzz@example.org>"
    message.set_content(body)
    try:
        data, _ = intake_from_mail(parse_message(message.as_bytes()))
    except Quarantine:
        return
    try:
        parse(Intake, data)
    except InvalidInput as exc:
        assert exc.errors


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(["title", "requested_solution", "why_now", "business_goal",
                                                "audience", "sponsor", "stakeholders"]), _json_values, max_size=3))
def test_the_intake_model_accepts_or_names_the_field(changes: dict[str, Any]) -> None:
    try:
        parse(Intake, intake_data() | changes)
    except InvalidInput as exc:
        assert exc.errors and all(isinstance(e.field, str) for e in exc.errors)


@FUZZ
@given(number=st.floats() | st.integers(), where=st.sampled_from(["baseline", "target", "value_per_unit", "cost"]))
def test_the_plan_model_accepts_a_bounded_number_or_names_the_field(number: float, where: str) -> None:
    data = plan_data()
    item = data["items"][0]
    if where == "cost":
        data["costs"]["program_cost"] = number
    elif where == "value_per_unit":
        item["value_per_unit"] = number
    else:
        item[where]["value"] = number
    try:
        parse(MeasurementPlan, data)
    except InvalidInput as exc:
        assert exc.errors


@settings(max_examples=40, deadline=timedelta(seconds=2), suppress_health_check=list(HealthCheck))
@given(mails=st.lists(st.binary(max_size=1500) | _raw_mail, min_size=1, max_size=4))
def test_a_pass_over_any_mail_processes_or_quarantines_every_item(mails: list[bytes]) -> None:
    uow = InMemoryUnitOfWork()
    inbox = InMemoryInbox()
    app = bootstrap.compose(Settings(mail_from="ld@example.org"), store=uow.store, uow=uow, clock=FixedClock(T0),
                            sender=InMemorySender(), sources=lambda: [inbox])
    for raw in mails:
        inbox.add(raw)
    summary = take_in(app)
    counts = summary.counts
    # nothing vanishes: every distinct mail (a Message-ID with its content) is processed or quarantined
    distinct = {(m.message_id, m.content_digest) for m in map(parse_message, mails)}
    assert counts["processed"] + counts["quarantined"] + counts["skipped"] == len(distinct)
