"""Plurals and articles in what people read: "1 request checked", "an acknowledged request"."""

from __future__ import annotations

import pytest

from flows.cli import report_error
from flows.service import Service
from states.errors import InvalidTransition, TransitionRefused
from states.wording import plural, with_article
from tests.builders import ACTOR, drive_to, reason_data


@pytest.mark.parametrize(("count", "noun", "many", "expected"), [
    (0, "request", None, "0 requests"),
    (1, "request", None, "1 request"),
    (2, "request", None, "2 requests"),
    (1, "reply", "replies", "1 reply"),
    (3, "reply", "replies", "3 replies"),
    (1200, "event", None, "1,200 events"),
])
def test_plural(count: int, noun: str, many: str | None, expected: str) -> None:
    assert plural(count, noun, many) == expected


@pytest.mark.parametrize(("word", "expected"), [
    ("acknowledged", "an acknowledged"), ("received", "a received"), ("e-mail", "an e-mail"),
    ("open", "an open"), ("user", "a user"), ("one-off", "a one-off"), ("Idle", "an Idle"),
    ("measured", "a measured"), ("unit", "a unit"), ("euro", "a euro"),
])
def test_with_article(word: str, expected: str) -> None:
    assert with_article(word) == expected


def test_a_refusal_on_an_acknowledged_request_reads_an(memory_service: Service,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rid = drive_to(memory_service, "acknowledged").id
    with pytest.raises(InvalidTransition) as info:
        memory_service.cancel(rid, reason_data(), ACTOR)
    assert str(info.value).startswith("cannot cancel an acknowledged request: allowed from acknowledged: none")
    refused = TransitionRefused("measure", "acknowledged", ["something"])
    assert str(refused) == "cannot measure an acknowledged request; missing: something"
    with pytest.raises(SystemExit):
        report_error(refused)
    assert capsys.readouterr().err.startswith("refused: cannot measure an acknowledged request; missing:")
