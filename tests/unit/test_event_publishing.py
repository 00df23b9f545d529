"""Publishing the event outbox (``flows.events``) over the in-memory fakes: batches, coalesced
wake-ups, nothing marked published that Prefect did not accept."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.testing import InMemoryStore, InMemoryUnitOfWork
from flows import events
from flows.service import Service
from tests.builders import ACTOR, drive_to, intake_data


def test_a_batch_is_marked_published_only_once_accepted(memory_store: InMemoryStore,
                                                          memory_service: Service) -> None:
    log = InMemoryUnitOfWork(memory_store).events
    for _ in range(5):
        memory_service.submit(intake_data(), ACTOR)
    sent: list[list[dict[str, Any]]] = []
    calls = {"n": 0}

    def flaky(batch: list[dict[str, Any]]) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise TimeoutError("the API did not answer")
        sent.append(batch)

    first = events.publish(log, batch=4, send=flaky)
    assert (first.published, first.batches, first.pending) == (4, 1, 6)
    assert first.error is not None and "did not answer" in first.error
    second = events.publish(log, batch=4, send=flaky)
    assert (second.published, second.pending, second.error) == (6, 0, None)
    names = [e["event"] for batch in sent for e in batch]
    assert names.count("ldflow.request.submitted") == 5
    assert [len(b) for b in sent] == [3, 3, 2]  # each batch's wake-ups go as one event
    assert all(sum(e["event"] == "ldflow.outbox.enqueued" for e in b) == 1 for b in sent)
    assert events.publish(log, send=flaky).published == 0  # nothing twice


def test_every_history_event_of_a_request_is_staged(memory_store: InMemoryStore, memory_service: Service) -> None:
    r = drive_to(memory_service, "delivered")
    memory_service.add_note(r.id, "sponsor called", ACTOR)
    staged = [e.event for e in memory_store.events if e.event != "ldflow.outbox.enqueued"]
    history = [f"ldflow.request.{h.trigger or h.type}" for h in memory_service.history(r.id)]
    assert staged == history and staged[-1] == "ldflow.request.note_added"


def test_a_refused_change_stages_nothing(memory_store: InMemoryStore, memory_service: Service) -> None:
    from states.errors import TransitionRefused

    r = drive_to(memory_service, "received")
    before = list(memory_store.events)
    with pytest.raises(TransitionRefused):
        memory_service.measure(r.id, ACTOR)
    assert memory_store.events == before
