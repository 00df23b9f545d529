"""The Prefect events of one committed change, as plain data (no Prefect import).

Every event of a request's history becomes one Prefect event: ``ldflow.request.<trigger>`` for a
lifecycle transition (``ldflow.request.deliver`` …), ``ldflow.request.<type>`` for any other
(``ldflow.request.submitted``, ``ldflow.request.note_added``, ``ldflow.request.result_recorded``,
``ldflow.request.email_sent`` …); a change that queued messages adds one ``ldflow.outbox.enqueued``
(``prefect.yaml`` triggers ``dispatch`` on it). The store writes them to the event outbox in the
transaction of the change (``connectors.db.event_outbox``, the fake's list); the pipeline publishes
them. Ids derive from what an event describes, so a re-published event carries the same id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from states.events import DomainEvent

#: Namespace for deterministic event ids (uuid5).
NAMESPACE = uuid.UUID("6c646666-6c6f-5765-8000-6576656e7473")
RESOURCE_PREFIX = "ldflow.request."
OUTBOX_ENQUEUED = "ldflow.outbox.enqueued"
OUTBOX_RESOURCE = {"prefect.resource.id": "ldflow.outbox", "prefect.resource.name": "ldflow outbox"}
_MAIL_FIELDS = ("key", "template")  # what a mail event's Prefect payload repeats (no addresses)


@dataclass(frozen=True)
class PrefectEvent:
    """One event as it will be sent to Prefect (``occurred`` is the wall-clock time of the commit)."""

    id: str
    event: str
    resource: dict[str, str]
    payload: dict[str, Any]
    occurred: datetime

    def as_json(self) -> dict[str, Any]:
        """The body Prefect's ``POST /events`` takes for this event."""
        return {"id": self.id, "event": self.event, "resource": self.resource, "related": [],
                "payload": self.payload, "occurred": self.occurred.isoformat()}


def _payload_digest(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def request_events(request_id: int, version: int, events: Sequence[DomainEvent], at: datetime,
                   occurred: datetime) -> list[PrefectEvent]:
    """One Prefect event per history event of one commit (``at``: the change's time on ldflow's clock)."""
    out = []
    for index, e in enumerate(events):
        name = e.trigger or e.type
        payload: dict[str, Any] = {"request_id": request_id, "version": version, "type": e.type,
                                   "from_state": e.from_state, "to_state": e.to_state, "at": at.isoformat()}
        payload.update({k: e.payload[k] for k in _MAIL_FIELDS if k in e.payload and e.type.startswith(
            ("email_", "invite_"))})
        digest = _payload_digest(e.payload)
        out.append(PrefectEvent(
            id=str(uuid.uuid5(NAMESPACE, f"{request_id}:{version}:{index}:{e.type}:{digest}")),
            event=f"{RESOURCE_PREFIX}{name}",
            resource={"prefect.resource.id": f"{RESOURCE_PREFIX}{request_id}",
                      "prefect.resource.name": f"request {request_id}", "ldflow.state": e.to_state or ""},
            payload=payload, occurred=occurred))
    return out


def outbox_enqueued(keys: Sequence[str], occurred: datetime) -> PrefectEvent:
    """One ``ldflow.outbox.enqueued`` for the outbox keys committed (or published) together."""
    keys = sorted(keys)
    request_ids = sorted({int(k.split(":", 1)[0]) for k in keys if k.split(":", 1)[0].isdigit()})
    return PrefectEvent(id=str(uuid.uuid5(NAMESPACE, "outbox:" + "\n".join(keys))), event=OUTBOX_ENQUEUED,
                        resource=dict(OUTBOX_RESOURCE),
                        payload={"count": len(keys), "keys": keys[:100], "request_ids": request_ids[:100]},
                        occurred=occurred)


def change_events(request_id: int, version: int, events: Sequence[DomainEvent], outbox_keys: Sequence[str],
                  at: datetime, occurred: datetime) -> list[PrefectEvent]:
    """Everything one commit tells Prefect: its history events and, when it queued mail, the wake-up."""
    out = request_events(request_id, version, events, at, occurred)
    if outbox_keys:
        out.append(outbox_enqueued(outbox_keys, occurred))
    return out
