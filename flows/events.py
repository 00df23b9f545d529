"""Prefect events for triggering and observability — never the audit record.

When a Prefect API is configured (``PREFECT_API_URL`` in the environment, or in
the active Prefect profile of a process that already runs Prefect), every
committed change emits:

* ``ldflow.request.<trigger>`` for a lifecycle transition (``ldflow.request.deliver``…),
* ``ldflow.outbox.enqueued`` when messages were queued (one event per commit, or
  one per batch inside :meth:`EventingStore.batch`), which ``prefect.yaml`` uses
  to trigger the ``dispatch`` deployment.

Events are emitted only *after* the database commit, with ids derived from what
they describe (request, version, event index; outbox keys), so a flow that runs
twice — and changes nothing the second time — emits nothing the second time, and
a re-emitted event carries the same id. The audit history stays in our database
(Prefect keeps events for days). Without a configured API everything here is a
cheap no-op, and nothing here ever fails a command: an emission error is logged.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from states.events import DomainEvent
from states.request import TrainingRequest

log = logging.getLogger("ldflow.events")

# Namespace for deterministic event ids (uuid5).
NAMESPACE = uuid.UUID("6c646666-6c6f-5765-8000-6576656e7473")
RESOURCE_PREFIX = "ldflow.request."


def api_configured() -> bool:
    """True when a Prefect API is configured (not the throw-away ephemeral server).

    ``LDFLOW_PREFECT_EVENTS=off`` turns emission off; ``on`` turns it on regardless (tests that
    capture events with :func:`set_emitter`)."""
    switch = os.environ.get("LDFLOW_PREFECT_EVENTS", "").lower()
    if switch in ("0", "false", "off", "no"):
        return False
    if switch in ("1", "true", "on", "yes"):
        return True
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect" not in sys.modules:  # never import Prefect just to find out (the CLI must start fast)
        return False
    try:
        from prefect.settings import get_current_settings

        return bool(get_current_settings().api.url)
    except Exception:  # an unreadable profile means "not configured", not a failed command
        return False


def transition_events(request_id: int, version: int, events: list[DomainEvent]) -> list[dict[str, Any]]:
    """The Prefect events (as ``emit_event`` keyword arguments) for one commit's transitions."""
    out = []
    for index, e in enumerate(events):
        if not e.trigger:
            continue
        out.append({
            "event": f"ldflow.request.{e.trigger}",
            "resource": {"prefect.resource.id": f"{RESOURCE_PREFIX}{request_id}",
                         "prefect.resource.name": f"request {request_id}",
                         "ldflow.state": e.to_state or ""},
            "payload": {"request_id": request_id, "version": version, "from_state": e.from_state,
                        "to_state": e.to_state},
            "id": uuid.uuid5(NAMESPACE, f"{request_id}:{version}:{index}:{e.type}"),
        })
    return out


def outbox_event(keys: list[str]) -> dict[str, Any]:
    """One ``ldflow.outbox.enqueued`` event for the outbox keys committed together."""
    keys = sorted(keys)
    request_ids = sorted({int(k.split(":", 1)[0]) for k in keys if k.split(":", 1)[0].isdigit()})
    return {
        "event": "ldflow.outbox.enqueued",
        "resource": {"prefect.resource.id": "ldflow.outbox", "prefect.resource.name": "ldflow outbox"},
        "payload": {"count": len(keys), "keys": keys[:100], "request_ids": request_ids[:100]},
        "id": uuid.uuid5(NAMESPACE, "outbox:" + "\n".join(keys)),
    }


def _prefect_emit(event: dict[str, Any]) -> None:
    from prefect.events import emit_event

    emit_event(**event)


#: How one event leaves the process: ``emit_event(**event)``.
Emitter = Callable[[dict[str, Any]], None]

_emitter: Emitter = _prefect_emit


def set_emitter(emitter: Emitter | None) -> Emitter:
    """Replace the process's default emitter (tests capture events); None restores Prefect's. Returns the
    old one. An :class:`EventingStore` built with its own emitter (``bootstrap.build(emitter=…)``) uses that."""
    global _emitter
    old, _emitter = _emitter, emitter or _prefect_emit
    return old


def emit(events: list[dict[str, Any]], emitter: Emitter | None = None) -> int:
    """Emit ``events`` to the configured Prefect API (through ``emitter``, default the process's);
    returns how many were handed over."""
    if not events or not api_configured():
        return 0
    send = emitter or _emitter
    try:
        for e in events:
            send(e)
        return len(events)
    except Exception as exc:  # observability must never break the pipeline
        log.warning("could not emit %d Prefect event(s): %s", len(events), exc)
        return 0


class EventingStore:
    """Wraps a request store: after each successful commit, emits the Prefect events it implies.

    Everything else is delegated, so it can stand wherever a ``RequestStore`` is expected.
    """

    def __init__(self, store: Any, emitter: Emitter | None = None) -> None:
        self._store = store
        self._emitter = emitter
        self._buffer: list[str] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        return self._commit(self._store.add, request, actor)

    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        return self._commit(self._store.save, request, actor)

    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest:
        if not api_configured():
            return self._store.update(request_id, actor, mutate, expect_version)  # type: ignore[no-any-return]
        seen: dict[str, Any] = {}

        def capture(request: TrainingRequest) -> None:
            mutate(request)
            seen["events"] = request.pending_events()
            seen["suffixes"] = [n.key for n in request._outgoing]

        saved = self._store.update(request_id, actor, capture, expect_version)
        return self._emit_for(saved, seen["events"], seen["suffixes"])

    def _commit(self, write: Any, request: TrainingRequest, actor: str) -> TrainingRequest:
        if not api_configured():
            return write(request, actor)  # type: ignore[no-any-return]
        events = request.pending_events()
        suffixes = [n.key for n in request._outgoing]  # final keys exist only once the id is known
        saved = write(request, actor)
        return self._emit_for(saved, events, suffixes)

    def _emit_for(self, saved: TrainingRequest, events: list[Any], suffixes: list[str]) -> TrainingRequest:
        assert saved.id is not None  # committed requests have their id
        keys = [f"{saved.id}:{s}" for s in suffixes]
        out = transition_events(saved.id, saved.version, events)
        if keys:
            if self._buffer is not None:
                self._buffer.extend(keys)
            else:
                out.append(outbox_event(keys))
        emit(out, self._emitter)
        return saved

    def announce_outbox(self, keys: list[str]) -> None:
        """``ldflow.outbox.enqueued`` for rows committed outside this wrapper (in a unit-of-work
        transaction, e.g. the acknowledgements of mailed-in requests)."""
        if not keys:
            return
        if self._buffer is not None:
            self._buffer.extend(keys)
        else:
            emit([outbox_event(keys)], self._emitter)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect ``ldflow.outbox.enqueued`` into one event for everything committed inside."""
        outer = self._buffer
        self._buffer = [] if outer is None else outer
        try:
            yield
        finally:
            keys, self._buffer = self._buffer, outer
            if outer is None and keys:
                emit([outbox_event(keys)], self._emitter)


def instrument(store: Any, emitter: Emitter | None = None) -> Any:
    """``store`` wrapped in an :class:`EventingStore` (cheap when no Prefect API is configured)."""
    return store if isinstance(store, EventingStore) else EventingStore(store, emitter)
