"""The attention list: what waits on a person, and the daily digest mail of it.

An item is a checkpoint flagged ``needs_review`` (too late to send, or unanswered after its last
reminder and response window: :mod:`states.stalls`) or a running SLA clock that breached or is near
its breach (:mod:`flows.sla`). ``ldflow attention``, ``ldflow list --attention``, the board's
attention filter and the digest read :func:`attention_list` (the SLA clocks from the clock summaries the
store keeps, the document only of a request with a needs-review checkpoint); the digest greets an owner
by the name the request gives them. Nothing here writes but
:func:`queue_digests`, which queues one digest per recipient and day (outbox key
``attention_digest:<day>:<address>``: a second pass that day queues nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from connectors.ports import AuditRecord, ClockSummary, DueClock, ListFilter, RequestSummary
from flows import sla
from states.card import owners
from states.checkpoints import CheckpointStatus
from states.notifications import Notification, Recipient
from states.request import TrainingRequest
from states.sla import Breach, owner_names

if TYPE_CHECKING:
    from flows.bootstrap import App

DIGEST_TEMPLATE = "attention_digest"
_PAGE = 500


@dataclass(frozen=True)
class Item:
    """One thing that waits on a person."""

    request_id: int
    title: str
    kind: Literal["checkpoint", "sla"]
    status: str  # needs_review | breached | near
    text: str
    owners: tuple[str, ...]  # the L&D owners (item owners, the redirect's owner) the digest goes to
    checkpoint: str = ""
    sla: str = ""
    names: tuple[tuple[str, str], ...] = ()  # (address, name) of the owners the request names: the greeting

    def as_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "title": self.title, "kind": self.kind, "status": self.status,
                "text": self.text, "owners": list(self.owners), "checkpoint": self.checkpoint, "sla": self.sla}


def checkpoint_items(request: TrainingRequest) -> list[Item]:
    """The request's checkpoints that need a person's decision."""
    found = []
    for c in request.checkpoints:
        if c.status != CheckpointStatus.NEEDS_REVIEW:
            continue
        item = next((i for i in (request.plan.items if request.plan else []) if i.id == c.item_id), None)
        who = (item.owner.email.lower(),) if item is not None else owners(request)
        names = ((item.owner.email.lower(), item.owner.name),) if item is not None else \
            tuple(owner_names(request).items())
        reason = c.review_reason or "too late to send"
        metric = f" ({item.metric})" if item is not None else ""
        found.append(Item(request.id or 0, request.intake.title, "checkpoint", "needs_review",
                          f"checkpoint {c.item_id}:{c.offset}{metric} needs review: {reason}; record the result "
                          f"or close it as missed", who, checkpoint=c.key, names=names))
    return found


def sla_items(request: TrainingRequest, history: list[AuditRecord], policy: sla.Policy, now: datetime) -> list[Item]:
    """The request's running SLA clocks that breached or are near it."""
    assert request.id is not None
    return [Item(request.id, request.intake.title, "sla", b.status, f"SLA {b.words()}", owners(request),
                 checkpoint=b.checkpoint, sla=b.sla, names=tuple(owner_names(request).items()))
            for b in sla.request_breaches(request.id, history, policy, now) if b.running]


def summary_items(summary: ClockSummary | DueClock, breaches: list[Breach]) -> list[Item]:
    """``sla_items`` from a request's clock summary (or due row) and its breaches (``flows.sla.due``)."""
    return [Item(summary.request_id, summary.title, "sla", b.status, f"SLA {b.words()}", summary.owners,
                 checkpoint=b.checkpoint, sla=b.sla, names=tuple(summary.names.items()))
            for b in breaches if b.running]


def attention_list(app: App, now: datetime | None = None, policy: sla.Policy | None = None) -> list[Item]:
    """Every attention item of the open requests, by request id: the SLA clocks of the requests whose running
    clocks are past their quiet time (``flows.sla.due``: no document, no history, the others' outcomes not
    read), the documents of the requests with a needs-review checkpoint only."""
    now = now or app.now()
    policy = policy or sla.load_policy(app.settings)
    store = app.service.store
    review = store.needs_review_ids()
    found: list[Item] = []
    for request_id, clocks in sorted(sla.due(store, policy, now, also=review).items()):
        if request_id in review:
            found += checkpoint_items(app.service.show(request_id))
        if clocks.summary is not None:
            found += summary_items(clocks.summary, clocks.running)
    return found


def digests(items: list[Item], ops: Recipient, day: str, web_url: str = "") -> list[Notification]:
    """One digest per recipient of ``items`` (ops gets every item, each owner theirs), each item once in it."""
    per: dict[str, tuple[Recipient, list[Item]]] = {ops.email.lower(): (ops, list(items))}
    for item in items:
        for email in item.owners:
            if email != ops.email.lower():
                name = dict(item.names).get(email, "")
                person, mine = per.setdefault(email, (Recipient(name, email, "owner"), []))
                if name and not person.name:
                    per[email] = (person, mine) = (Recipient(name, email, "owner"), mine)
                mine.append(item)
    notes = []
    for email, (person, mine) in sorted(per.items()):
        if not mine:
            continue
        requests = len({i.request_id for i in mine})
        subject = (f"Attention: {len(mine)} item{'s' if len(mine) != 1 else ''} on "
                   f"{requests} request{'s' if requests != 1 else ''} ({day})")
        notes.append(Notification(key=f"{DIGEST_TEMPLATE}:{day}:{email}", request_id=0, template=DIGEST_TEMPLATE,
                                  to=(person,), subject=subject,
                                  context={"day": day, "items": [i.as_dict() for i in mine],
                                           "for_ops": email == ops.email.lower(), "web_url": web_url}))
    return notes


def queue_digests(app: App, now: datetime | None = None) -> dict[str, int]:
    """Queue today's digests (once per recipient and day, in the policy's time zone): ``queued``,
    ``already`` (queued by an earlier pass today), ``items``."""
    now = now or app.now()
    policy = sla.load_policy(app.settings)
    items = attention_list(app, now, policy)
    day = now.astimezone(policy.calendar.zone).date().isoformat()
    counts = {"queued": 0, "already": 0, "items": len(items)}
    for note in digests(items, app.settings.ops_recipient, day, app.settings.web_url):
        counts["queued" if app.uow.outbox.enqueue([note], now) == 1 else "already"] += 1
    return counts


def attention_rows(app: App, flt: ListFilter) -> tuple[list[RequestSummary], int]:
    """``flt``'s page of the requests that have an attention item (``ldflow list --attention``), and their number."""
    wanted = {i.request_id for i in attention_list(app)}
    found: list[RequestSummary] = []
    offset = 0
    while True:
        rows, total = app.service.list(replace(flt, limit=_PAGE, offset=offset))
        found += [r for r in rows if r.id in wanted]
        offset += len(rows)
        if not rows or offset >= total:
            break
    return found[flt.offset: flt.offset + flt.limit], len(found)
