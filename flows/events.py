"""Prefect events, published from the event outbox — never sent by a write, never the audit record.

Every committed change writes its Prefect events into the event outbox in its own transaction
(``connectors.prefect_events`` names them: ``ldflow.request.<trigger>`` for a transition,
``ldflow.request.<type>`` for any other history event — submitted, note_added, result_recorded,
email_sent … — and ``ldflow.outbox.enqueued`` when mail was queued). A command therefore costs
the same whether a Prefect API is up, down, hung or absent.

:func:`publish` is the pipeline's ``publish_events`` step: it sends the pending events, oldest
first, in batches of ``POST /api/events`` and marks a batch published only once Prefect answered
2xx. A refused, failed or timed-out batch stays pending and goes with the next run, with the same
event ids (Prefect stores an id once). The ``ldflow.outbox.enqueued`` events of one batch are sent
as one (the union of their keys), so a burst of writes is one wake-up per batch for ``dispatch``.
Without a configured API nothing is sent and the events wait (pending ones older than
:data:`PENDING_DAYS` are dropped, published ones after :data:`PUBLISHED_DAYS`).
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.ports import EventLog, StagedEvent
from connectors.prefect_events import NAMESPACE, OUTBOX_ENQUEUED, OUTBOX_RESOURCE

log = logging.getLogger("ldflow.events")

#: Seconds one ``POST /events`` may take (connect and answer); a hung API costs one timeout per run.
TIMEOUT = float(os.environ.get("LDFLOW_PREFECT_EVENTS_TIMEOUT", "10"))
PUBLISHED_DAYS = 1
PENDING_DAYS = 7

#: How a batch leaves the process: ``send(events_json)``; raises when Prefect did not accept it.
Send = Callable[[list[dict[str, Any]]], None]


def _switch() -> str:
    return os.environ.get("LDFLOW_PREFECT_EVENTS", "").lower()


def api_url() -> str | None:
    """The configured Prefect API (``PREFECT_API_URL``, or the active profile's once Prefect is
    imported), or None. ``LDFLOW_PREFECT_EVENTS=off`` turns publishing off."""
    if _switch() in ("0", "false", "off", "no"):
        return None
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect" not in sys.modules:  # never import Prefect just to find out
        return None
    try:
        from prefect.settings import get_current_settings

        return get_current_settings().api.url or None
    except Exception:  # an unreadable profile means "not configured"
        return None


def post_to_prefect(events: list[dict[str, Any]]) -> None:
    """``POST {api}/events`` with Prefect's auth settings; raises unless Prefect answered 2xx."""
    prefect_post("/events", events)


def prefect_post(path: str, body: Any) -> Any:
    """``POST {api}{path}`` with Prefect's auth settings: the JSON answer; raises unless 2xx."""
    import httpx

    url = api_url()
    if not url:
        raise RuntimeError("no Prefect API configured")
    headers: dict[str, str] = {}
    verify: bool | ssl.SSLContext = True
    if "prefect" in sys.modules or os.environ.get("PREFECT_API_KEY") or os.environ.get("PREFECT_API_AUTH_STRING"):
        from prefect.settings import get_current_settings

        api = get_current_settings().api
        if api.auth_string:
            token = base64.b64encode(api.auth_string.get_secret_value().encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        elif api.key:
            headers["Authorization"] = f"Bearer {api.key.get_secret_value()}"
        if api.tls_insecure_skip_verify:
            verify = False
        elif api.ssl_cert_file:
            verify = ssl.create_default_context(cafile=api.ssl_cert_file)
    response = httpx.post(url.rstrip("/") + path, json=body, headers=headers, timeout=TIMEOUT, verify=verify)
    response.raise_for_status()
    return response.json() if response.content else None


_send: Send = post_to_prefect


def set_sender(send: Send | None) -> Send:
    """Replace how batches are sent (tests capture them); None restores :func:`post_to_prefect`."""
    global _send
    old, _send = _send, send or post_to_prefect
    return old


def coalesce(rows: Sequence[StagedEvent]) -> list[dict[str, Any]]:
    """The batch's events as Prefect's JSON, its ``ldflow.outbox.enqueued`` ones merged into one."""
    out: list[dict[str, Any]] = []
    wakeups = [r for r in rows if r.event == OUTBOX_ENQUEUED]
    out.extend(r.as_json() for r in rows if r.event != OUTBOX_ENQUEUED)
    if wakeups:
        keys = sorted({k for r in wakeups for k in r.payload.get("keys", [])})
        ids = sorted({i for r in wakeups for i in r.payload.get("request_ids", [])})
        merged = {"id": str(uuid.uuid5(NAMESPACE, "wakeup:" + "\n".join(r.event_id for r in wakeups))),
                  "event": OUTBOX_ENQUEUED, "resource": dict(OUTBOX_RESOURCE), "related": [],
                  "payload": {"count": sum(int(r.payload.get("count", 0)) for r in wakeups), "keys": keys[:100],
                              "request_ids": ids[:100]},
                  "occurred": max(r.occurred for r in wakeups).isoformat()}
        out.append(merged)
    return out


@dataclass
class Published:
    """What one :func:`publish` did."""

    published: int = 0
    batches: int = 0
    pending: int = 0
    pruned: int = 0
    error: str | None = None


def publish(events: EventLog, *, batch: int = 200, max_batches: int = 50, send: Send | None = None) -> Published:
    """Send what the event outbox holds to Prefect (see the module's docstring). Times are the wall
    clock's (as the events' ``occurred``), not ldflow's simulated clock."""
    now = datetime.now(UTC)
    result = Published()
    result.pruned = events.prune(now - timedelta(days=PUBLISHED_DAYS), now - timedelta(days=PENDING_DAYS))
    if send is None and not api_url():
        result.pending = events.count_pending()
        return result
    deliver = send or _send
    for _ in range(max_batches):
        rows = events.pending(batch)
        if not rows:
            break
        try:
            deliver(coalesce(rows))
        except Exception as exc:  # refused, failed or timed out: the rows stay pending for the next run
            result.error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("could not publish %d Prefect event(s): %s", len(rows), result.error)
            break
        result.published += events.mark_published([r.id for r in rows], now)
        result.batches += 1
        if len(rows) < batch:
            break
    result.pending = events.count_pending()
    return result
