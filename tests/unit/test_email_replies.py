"""Reply interpretation and request matching (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import pytest

from connectors.email.inbound import parse_message
from connectors.email.replies import first_meaningful_lines, interpret_reply, match_request


@pytest.mark.parametrize("body", [
    "approve", "Approved", "APPROVED.", "yes, approved", "Yes approved!", "I approve", "approve the plan",
    "ok, approved", "\n\n  approve  \n\nThanks, Sam", "Approved, thanks!", "approved - thank you Dana",
    "> Please approve the plan\n> thanks\napproved",
    "approve\n\nOn Mon, 2 Nov 2026 at 09:00, L&D wrote:\n> Please approve",
])
def test_approvals(body: str) -> None:
    assert interpret_reply(body).kind == "approve"


@pytest.mark.parametrize("body", [
    "I do not approve", "not approved", "approve?", "Can we talk before I approve?", "disapprove",
    "> approve\n", "", "Thanks!", "approved by whom?", "approved, thanks but change item 2 first",
])
def test_not_approvals(body: str) -> None:
    assert interpret_reply(body).kind != "approve"


@pytest.mark.parametrize("body,value,note", [
    ("4", Decimal("4"), ""),
    ("4.5", Decimal("4.5"), ""),
    ("3,5", Decimal("3.5"), ""),
    ("72%", Decimal("72"), ""),
    ("4 - much better than before", Decimal("4"), "much better than before"),
    ("4: fewer escalations", Decimal("4"), "fewer escalations"),
    ("5\nThe job aid helped a lot.\n\n-- \nSam", Decimal("5"), "The job aid helped a lot."),
    ("4/5", Decimal("4"), "(on a scale of 5)"),
    ("-2", Decimal("-2"), ""),
])
def test_survey_results(body: str, value: Decimal, note: str) -> None:
    intent = interpret_reply(body)
    assert intent.kind == "survey_result"
    assert intent.value == value
    assert intent.note == note


@pytest.mark.parametrize("body", ["about 4", "four", "2026-11-02 was the date", "4th time", "v2"])
def test_other_replies_are_notes(body: str) -> None:
    intent = interpret_reply(body)
    assert intent.kind == "note"
    assert intent.note.startswith(body.split("\n")[0])


def test_quoting_and_signatures_are_ignored() -> None:
    body = "Sounds good\nsee you then\n\n--\nSam Lee\n\n> original"
    assert first_meaningful_lines(body) == ["Sounds good", "see you then"]
    assert first_meaningful_lines("> only quoted\n> text") == []


def mail(headers: str) -> bytes:
    return (f"From: Sam <sam@example.org>\r\nMessage-ID: <r@example.org>\r\n{headers}\r\n\r\nok\r\n").encode()


def test_thread_wins_over_subject_tag() -> None:
    sent = {"<s1@ldflow>": (7, "7:plan_approval_request:v3"), "<s0@ldflow>": (7, "7:intake_acknowledgement")}

    def lookup(ids: Iterable[str]) -> dict[str, tuple[int, str]]:
        return {i: sent[i] for i in ids if i in sent}

    msg = parse_message(mail("Subject: Re: [ldflow #9] x\r\nIn-Reply-To: <s1@ldflow>\r\n"
                             "References: <s0@ldflow> <s1@ldflow>"))
    match = match_request(msg, lookup)
    assert match is not None and (match.request_id, match.by) == (7, "thread")
    assert match.in_reply_to_key == "7:plan_approval_request:v3"

    tagged = parse_message(mail("Subject: Re: [ldflow #9] x\r\nIn-Reply-To: <unknown@elsewhere>"))
    match = match_request(tagged, lookup)
    assert match is not None and (match.request_id, match.by) == (9, "subject_tag")

    assert match_request(parse_message(mail("Subject: hello")), lookup) is None
