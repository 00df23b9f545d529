"""The board's read model: requests as cards in columns by state (the lifecycle's order), filtered and paged.

Each card says where the request stands: its people, how long it has been in its state, the next
action and what that action still needs — the guards' own words, asked with nothing given (what
the next command would refuse for today; :mod:`states.card`, kept on the request's row by the
store). The web app's board renders :func:`board`; each shown card's SLA badge comes from its clock
summary (``RequestStore.sla_summaries``). Nothing here writes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connectors.ports import AuditRecord, BoardQuery, BoardRow
from flows import sla
from flows.attention import Item, checkpoint_items, sla_items, summary_items
from states import sla as states_sla
from states.card import next_step as next_step
from states.card import owners as owners
from states.checkpoints import CheckpointStatus
from states.errors import FieldError, InvalidInput
from states.lifecycle import TERMINAL, State
from states.request import TrainingRequest
from states.sla import read_lines

if TYPE_CHECKING:
    from flows.bootstrap import App

ORDER: tuple[State, ...] = tuple(State)  # the lifecycle's order: received … acknowledged, then declined, cancelled
UNANSWERED_DAYS = 14  # a survey sent this long ago and still open needs someone's attention
MAX_PER_PAGE = 200


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
    #: the terminal states' counts, shown as one narrow column of links when no state is filtered
    #: (their cards are a filter away); empty when states are filtered (each gets its own column)
    closed: list[Column] = field(default_factory=list)
    sla_error: str = ""  # the SLA policy could not be read: no SLA clocks shown (flows.sla.policy_or_error)


def attention(request: TrainingRequest, now: datetime, history: list[AuditRecord] | None = None,
              policy: sla.Policy | None = None) -> list[str]:
    """Why a person should look at this request now (empty when nothing is waiting on them): the
    attention list's items (``flows.attention``; the SLA clocks when given the history and the policy),
    surveys unanswered for a long time, and companion pieces past their date."""
    reasons = [i.text for i in checkpoint_items(request)]
    if history is not None and policy is not None:
        reasons += [i.text for i in sla_items(request, history, policy, now)]
    reasons += _reasons([(c.item_id, c.offset, c.status.value, c.sent_at) for c in request.checkpoints], now,
                        review=False)
    return reasons + [f"companion piece {c.id} ({c.what}, {c.owner.name}) overdue since {c.due.isoformat()}"
                      for c in request.companions if c.status.value == "open" and c.due < now.date()]


def _reasons(open_checkpoints: Sequence[tuple[str, str, str, datetime | None]], now: datetime,
             review: bool = True) -> list[str]:
    late = now - timedelta(days=UNANSWERED_DAYS)
    reasons = [f"checkpoint {item}:{offset} needs review" for item, offset, status, _ in open_checkpoints
               if review and status == CheckpointStatus.NEEDS_REVIEW.value]
    reasons += [f"checkpoint {item}:{offset} unanswered since {sent:%Y-%m-%d}"
                for item, offset, status, sent in open_checkpoints
                if status == CheckpointStatus.SENT.value and sent is not None and sent < late]
    return reasons


def _age(since: datetime, now: datetime) -> str:
    days = (now - since).days
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int((now - since).total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours >= 1 else "just now"


def _card(row: BoardRow, now: datetime, clocks: list[Item]) -> Card:
    reasons = [*_reasons(row.open_checkpoints, now), *(i.text for i in clocks)]
    statuses = {i.status for i in clocks}
    badge = "breached" if "breached" in statuses else "near" if "near" in statuses else ""
    return Card(id=row.id, title=row.title, state=row.state, version=row.version, requester=row.requester,
                sponsor=row.sponsor, owners=row.owners, since=row.in_state_since, age=_age(row.in_state_since, now),
                next_action=row.next_action, missing=row.missing, attention=tuple(reasons), sla=badge)


_ATTENTION: weakref.WeakKeyDictionary[Any, tuple[tuple[int, str, datetime], tuple[int, ...]]] = \
    weakref.WeakKeyDictionary()
_ATTENTION_LOCK = threading.Lock()


def _sla_attention(app: App, policy: sla.Policy | None, now: datetime) -> tuple[int, ...]:
    """The open requests with a running SLA clock breached or near it (the attention filter): the attention
    list's SLA items' requests, from the clock summaries (``flows.sla.due``) without their words; the
    needs-review checkpoints are the board query's own condition.

    Kept per store for the audit head, the policy's digest and the minute: every write appends an event
    (a new head), another policy or holidays file is another digest, and a clock that crosses into near
    or breached with time alone is in the set from the next minute on (the shown cards' badges are
    judged at each page). Paging or re-filtering the board then costs no second judgement of every
    open request's clocks."""
    if policy is None:
        return ()
    store = app.service.store
    key = (store.audit_head(), sla.digest(policy), now.replace(second=0, microsecond=0))
    with _ATTENTION_LOCK:
        kept = _ATTENTION.get(store)
    if kept is not None and kept[0] == key:
        return kept[1]
    found = sla.due(store, policy, now, summaries=False)
    ids = tuple(sorted(i for i, c in found.items() if c.statuses))
    with _ATTENTION_LOCK:
        _ATTENTION[store] = (key, ids)
    return ids


def _sla_clocks(app: App, ids: list[int], policy: sla.Policy | None, now: datetime) -> dict[int, list[Item]]:
    """The shown cards' running SLA clocks that breached or are near it, from their clock summaries (one
    read for the page, no document, no history)."""
    if policy is None or not ids:
        return {}
    found: dict[int, list[Item]] = {}
    for summary in app.service.store.sla_summaries(ids):
        entries = read_lines(summary.lines)
        breaches = states_sla.breaches(summary.request_id, entries, policy.rules, policy.calendar, now)
        found[summary.request_id] = summary_items(summary, breaches)
    return found


def board(app: App, flt: BoardFilter) -> Board:
    """The board for ``flt``: every matching request counted in its state's column, the page's cards shown.

    One store read (``RequestStore.board``): counts per column, the page's cards from the facts kept on
    each request's row, the sponsors; one more for the shown cards' SLA badges (their clock summaries);
    no document and no history is loaded."""
    now = app.now()
    policy, sla_error = sla.policy_or_error(app.settings)
    collapse = not flt.states  # the terminal columns hold most requests and no work: counts only
    order = [s.value for s in ORDER if not (collapse and s in TERMINAL)]
    query = BoardQuery(order=order, states=flt.states, requester=flt.requester or None, sponsor=flt.sponsor or None,
                       owner=flt.owner or None, text=flt.q or None,
                       needs_attention_before=now - timedelta(days=UNANSWERED_DAYS) if flt.attention else None,
                       attention_ids=_sla_attention(app, policy, now) if flt.attention else (),
                       limit=flt.per_page, offset=(flt.page - 1) * flt.per_page)
    found = app.service.board(query)
    total = sum(found.counts.values())
    pages = max(1, -(-sum(found.counts.get(s, 0) for s in order) // flt.per_page))
    if flt.page > pages:  # past the end: the last page, as before
        found = app.service.board(replace(query, offset=(pages - 1) * flt.per_page))
    cards: dict[str, list[Card]] = {}
    clocks = _sla_clocks(app, [row.id for row in found.rows], policy, now)
    for row in found.rows:
        cards.setdefault(row.state, []).append(_card(row, now, clocks.get(row.id, [])))
    states = [s for s in ORDER if s.value in order and (not flt.states or s.value in flt.states)]
    closed = [Column(s.value, found.counts.get(s.value, 0)) for s in ORDER if collapse and s in TERMINAL]
    return Board(columns=[Column(s.value, found.counts.get(s.value, 0), cards.get(s.value, [])) for s in states],
                 total=total, page=min(flt.page, pages), pages=pages, filter=flt, sponsors=found.sponsors,
                 closed=closed, sla_error=sla_error)
