"""What people read: plurals and articles ("1 request checked", "an acknowledged request") and a
conflict that says what it saw."""

from __future__ import annotations

import pytest

from connectors.testing import InMemoryStore
from flows.cli import report_error
from flows.service import Service
from states.errors import Conflict, InvalidTransition, TransitionRefused
from states.wording import plural, with_article
from tests.builders import ACTOR, T0, drive_to, intake_data, reason_data


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


def test_a_conflict_says_what_it_saw(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.add_note(rid, "first", ACTOR)  # version 2
    with pytest.raises(Conflict) as wrong:
        memory_service.add_note(rid, "x", ACTOR, expect_version=99)
    assert str(wrong.value) == ("conflict: request 1 is at version 2, not 99 (--if-version). "
                                "Reload it and try again.")
    with pytest.raises(Conflict) as stale:
        memory_service.add_note(rid, "x", ACTOR, expect_version=1)
    assert str(stale.value).startswith("conflict: request 1 changed concurrently; expected version 1 "
                                       "(now version 2)")


def test_a_real_race_is_told_as_a_concurrent_change(memory_store: InMemoryStore, memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    mine, theirs = memory_store.get(rid), memory_store.get(rid)
    theirs.add_note("theirs", T0)
    memory_store.save(theirs, ACTOR)
    mine.add_note("mine", T0)
    with pytest.raises(Conflict) as race:
        memory_store.save(mine, ACTOR)
    assert str(race.value).startswith("conflict: request 1 changed concurrently; expected version 1 (now version 2)")
