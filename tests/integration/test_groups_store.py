"""Respondent groups on the fake, SQLite and PostgreSQL: a roster's survey, answers per respondent (a second
replaces the first; someone not asked refused, nothing written), reminders counted for the non-responders,
and the window's close with the aggregate, all read back from the store with the audit chain intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.db.store import SqlStore
from flows.clock import FixedClock
from flows.service import Service
from states.checkpoints import CheckpointStatus
from states.errors import TransitionRefused
from tests.builders import ACTOR, delivery_data, drive_to, roster_data

END = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)  # delivery_data()'s end; m2:P1D (respondent "learner") due a day later


def test_a_rosters_survey_aggregates_its_answers_in_the_store(any_service: Service, clock: FixedClock) -> None:
    r = drive_to(any_service, "designed")
    any_service.deliver(r.id, delivery_data(roster=roster_data(5)), ACTOR)
    clock.set(END + timedelta(days=1, hours=1))
    assert any_service.send_due_checkpoints(ACTOR, timedelta(days=14))["sent"] == 1
    learners = [f"learner{i}@learners.example.org" for i in range(1, 6)]
    for who, value in ((learners[0], 2), (learners[1], 4), (learners[0], 5), (learners[2], 3)):
        any_service.answer(r.id, "m2:P1D", who, {"value": value}, who, via="reply")
    before = any_service.history(r.id)
    with pytest.raises(TransitionRefused, match="stranger@example.org is not among the 5 respondents"):
        any_service.answer(r.id, "m2:P1D", "stranger@example.org", {"value": 5}, "stranger@example.org")
    assert any_service.history(r.id) == before
    c = any_service.show(r.id).checkpoint("m2:P1D")
    assert c.status == CheckpointStatus.SENT and sorted((a.email, a.value) for a in c.answers) == [
        (learners[0], 5.0), (learners[1], 4.0), (learners[2], 3.0)]
    for _ in range(2):
        clock.advance(timedelta(days=3))
        assert any_service.send_reminders(ACTOR, timedelta(days=3), 2) == 1
    clock.set(END + timedelta(days=16))
    assert any_service.flag_unanswered(ACTOR, timedelta(days=7), 2) == 1
    c = any_service.show(r.id).checkpoint("m2:P1D")
    assert c.status == CheckpointStatus.CLOSED and c.tally is not None
    assert (c.tally.n, c.tally.asked, c.tally.response_rate, c.tally.mean, c.tally.median, c.value) == (
        3, 5, 60.0, 4.0, 4.0, 4.0)
    types = [h.type for h in any_service.history(r.id)]
    assert types.count("survey_answered") == 4 and types[-1] == "survey_closed" and "roster_set" in types
    if isinstance(any_service.store, SqlStore):
        assert any_service.verify().ok
        assert (r.id, c.key) not in any_service.store.unanswered_checkpoints(clock.now())
