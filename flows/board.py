"""The board's read model: requests as cards in columns by state (the lifecycle's order), filtered and paged.

Each card says where the request stands: its people, how long it has been in its state, the next
action and what that action still needs — the guards' own words, asked with nothing given (what
the next command would refuse for today). The web app's board renders :func:`board`; nothing here
writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from connectors.ports import AuditRecord, ListFilter, RequestSummary
from flows import sla
from flows.attention import checkpoint_items, owners, sla_items
from states import guards
from states.checkpoints import CheckpointStatus
from states.errors import FieldError, InvalidInput
from states.lifecycle import State
from states.models import Acknowledgement, Delivery, DesignBrief, Diagnosis, Redirect
from states.request import TrainingRequest

if TYPE_CHECKING:
    from flows.bootstrap import App

ORDER: tuple[State, ...] = tuple(State)  # the lifecycle's order: received … acknowledged, then declined, cancelled
UNANSWERED_DAYS = 14  # a survey sent this long ago and still open needs someone's attention
MAX_PER_PAGE = 200
_SCAN = 500  # summaries read per round while filtering


@dataclass(frozen=True)
class BoardFilter:
    """What the board shows: the filters as a person sets them, and the page."""

    states: tuple[str, ...] = ()
    sponsor: str = ""
    owner: str = ""
    requester: str = ""
    q: str = ""
    attention: bool = False
    page: int = 1
    per_page: int = 50

    def query(self, **changes: object) -> dict[str, str]:
        """The filter as query parameters (for links to other pages and per-sponsor views)."""
        values: dict[str, object] = {"state": ",".join(self.states), "sponsor": self.sponsor, "owner": self.owner,
                                     "requester": self.requester, "q": self.q,
                                     "attention": "1" if self.attention else "", "page": str(self.page)}
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in ("", None, "1") or (k == "attention" and v)}


def board_filter(*, state: Sequence[str] = (), sponsor: str = "", owner: str = "", requester: str = "",
                 q: str = "", attention: str = "", page: str = "1", per_page: str = "50") -> BoardFilter:
    """The filter from the board's query parameters; InvalidInput naming each wrong one."""
    errors: list[FieldError] = []
    states = tuple(s for part in state for s in part.split(",") if s)
    bad = [s for s in states if s not in {x.value for x in State}]
    if bad:
        known = ", ".join(s.value for s in State)
        errors.append(FieldError("state", f"unknown state {', '.join(bad)}; known: {known}"))
    numbers: dict[str, int] = {}
    for name, raw, top in (("page", page, 10**9), ("per_page", per_page, MAX_PER_PAGE)):
        try:
            numbers[name] = int(raw or "1")
            if not 1 <= numbers[name] <= top:
                raise ValueError
        except ValueError:
            errors.append(FieldError(name, f"a whole number from 1 to {top}"))
    texts = {"sponsor": sponsor, "owner": owner, "requester": requester, "q": q}
    for name, value in texts.items():
        if len(value) > 320 or any(c in value for c in "\r\n\x00"):
            errors.append(FieldError(name, "one line, at most 320 characters"))
    if errors:
        raise InvalidInput(errors)
    return BoardFilter(states=states, sponsor=sponsor.strip().lower(), owner=owner.strip().lower(),
                       requester=requester.strip().lower(), q=q.strip(), attention=attention not in ("", "0"),
                       page=numbers["page"], per_page=numbers["per_page"])


@dataclass(frozen=True)
class Card:
    id: int
    title: str
    state: str
    version: int
    requester: str
    sponsor: str
    owners: tuple[str, ...]
    since: datetime
    age: str
    next_action: str
    missing: tuple[str, ...]
    attention: tuple[str, ...]
    sla: str = ""  # the card's SLA badge: "breached", "near" or ""


@dataclass(frozen=True)
class Column:
    state: str
    count: int
    cards: list[Card] = field(default_factory=list)


@dataclass(frozen=True)
class Board:
    columns: list[Column]
    total: int
    page: int
    pages: int
    filter: BoardFilter
    sponsors: list[str]
    sla_error: str = ""  # the SLA policy could not be read: no SLA clocks shown (flows.sla.policy_or_error)


def next_step(request: TrainingRequest) -> tuple[str, list[str]]:
    """The next action on the main path and what its guard still misses today."""
    state = request.state
    if state == State.RECEIVED:
        return "diagnose", guards.diagnose(request, Diagnosis())
    if state == State.DIAGNOSED:
        if request.plan is None or request.plan_approved_by is None:
            unapproved = [m for m in guards.redirect(request, Redirect()) if m.startswith("an approved")]
            verb = "draft" if request.plan is None else "approve"
            return f"{verb} the measurement plan", unapproved
        wants_redirect = bool(request.recommendations) and all(r.path != "design" for r in request.recommendations)
        if wants_redirect:
            return "redirect", guards.redirect(request, Redirect())
        return "design", guards.design(request, DesignBrief())
    if state in (State.DESIGNED, State.REDIRECTED):
        return "deliver", guards.deliver(request, Delivery())
    if state == State.DELIVERED:
        return "measure", guards.measure(request)
    if state == State.MEASURED:
        return "acknowledge", guards.acknowledge(request, Acknowledgement())
    return "", []


def attention(request: TrainingRequest, now: datetime, history: list[AuditRecord] | None = None,
              policy: sla.Policy | None = None) -> list[str]:
    """Why a person should look at this request now (empty when nothing is waiting on them): the
    attention list's items (``flows.attention``; the SLA clocks when given the history and the policy),
    and surveys unanswered for a long time."""
    reasons = [i.text for i in checkpoint_items(request)]
    if history is not None and policy is not None:
        reasons += [i.text for i in sla_items(request, history, policy, now)]
    late = now - timedelta(days=UNANSWERED_DAYS)
    reasons += [f"checkpoint {c.item_id}:{c.offset} unanswered since {c.sent_at:%Y-%m-%d}"
                for c in request.checkpoints
                if c.status == CheckpointStatus.SENT and c.sent_at is not None and c.sent_at < late]
    return reasons


def _age(since: datetime, now: datetime) -> str:
    days = (now - since).days
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int((now - since).total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours >= 1 else "just now"


def in_state_since(app: App, request: TrainingRequest, history: list[AuditRecord] | None = None) -> datetime:
    """When the request entered its state: its newest transition in the history (else its creation)."""
    assert request.id is not None
    for record in reversed(history if history is not None else app.service.history(request.id)):
        if record.to_state:
            return datetime.fromisoformat(record.at.replace("Z", "+00:00"))
    return request.created_at


def card(app: App, request: TrainingRequest, now: datetime, policy: sla.Policy | None) -> Card:
    assert request.id is not None
    history = app.service.history(request.id)
    since = in_state_since(app, request, history)
    action, missing = next_step(request)
    clocks = {i.status for i in sla_items(request, history, policy, now)} if policy is not None else set()
    badge = "breached" if "breached" in clocks else "near" if "near" in clocks else ""
    return Card(id=request.id, title=request.intake.title, state=request.state.value, version=request.version,
                requester=request.intake.requester.email, sponsor=request.intake.sponsor.email,
                owners=owners(request), since=since, age=_age(since, now), next_action=action,
                missing=tuple(missing), attention=tuple(attention(request, now, history, policy)), sla=badge)


def _candidates(app: App, flt: BoardFilter) -> list[RequestSummary]:
    found: list[RequestSummary] = []
    offset = 0
    while True:
        rows, total = app.service.list(ListFilter(states=flt.states, requester=flt.requester or None,
                                                  sponsor=flt.sponsor or None, sort="-updated", limit=_SCAN,
                                                  offset=offset))
        found += rows
        offset += len(rows)
        if not rows or offset >= total:
            return found


def board(app: App, flt: BoardFilter) -> Board:
    """The board for ``flt``: every matching request counted in its state's column, the page's cards shown."""
    now = app.now()
    policy, sla_error = sla.policy_or_error(app.settings)
    rows = _candidates(app, flt)
    sponsors = sorted({r.sponsor for r in rows})
    if flt.q:
        needle = flt.q.lower()
        rows = [r for r in rows if needle in r.title.lower() or needle == str(r.id)]
    loaded: dict[int, TrainingRequest] = {}
    if flt.owner or flt.attention:
        kept = []
        for r in rows:
            request = loaded[r.id] = app.service.show(r.id)
            if flt.owner and flt.owner not in owners(request):
                continue
            if flt.attention and not attention(request, now, app.service.history(r.id), policy):
                continue
            kept.append(r)
        rows = kept
    rank = {s.value: i for i, s in enumerate(ORDER)}
    rows.sort(key=lambda r: (rank[r.state], -r.updated_at.timestamp(), r.id))
    pages = max(1, -(-len(rows) // flt.per_page))
    page = min(flt.page, pages)
    shown = rows[(page - 1) * flt.per_page: page * flt.per_page]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    cards: dict[str, list[Card]] = {}
    for r in shown:
        request = loaded.get(r.id) or app.service.show(r.id)
        cards.setdefault(r.state, []).append(card(app, request, now, policy))
    states = [s for s in ORDER if not flt.states or s.value in flt.states]
    return Board(columns=[Column(s.value, counts.get(s.value, 0), cards.get(s.value, [])) for s in states],
                 total=len(rows), page=page, pages=pages, filter=flt, sponsors=sponsors, sla_error=sla_error)
