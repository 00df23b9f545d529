"""The request store port (``SqlStore``, ``InMemoryStore``) and its data types."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from connectors.audit_checkpoints import SignedCheckpoint

if TYPE_CHECKING:  # the domain model pulls in pydantic, the calendar type icalendar: types only here
    from states.analytics import Track
    from states.analytics_figures import Filter
    from states.analytics_summary import Summary
    from states.request import TrainingRequest

# --- request store --------------------------------------------------------------------------------

#: The keys ``ListFilter.sort`` accepts (each also with a leading ``-`` for descending).
SORT_KEYS = ("id", "created", "updated", "state", "title")


@dataclass(frozen=True)
class AuditRecord:
    """One event of a request's history, a link of the hash chain (see :mod:`connectors.audit_chain`)."""

    seq: int
    request_id: int
    type: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    version: int
    actor: str
    at: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    rseq: int = 0  # the event's number in its request's own chain (1, 2, …)
    doc: str = ""  # doc_hash of the request row the event left behind


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of walking the hash chain: ok, or the first broken link and why."""

    ok: bool
    events_checked: int
    requests_checked: int
    broken_seq: int | None = None
    request_id: int | None = None
    reason: str = ""
    broken_rseq: int | None = None  # the first broken (or missing) event, numbered in its request's chain
    checkpoint: int | None = None  # the checkpoint that does not verify, when it is one
    checkpoints_checked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events_checked": self.events_checked, "requests_checked": self.requests_checked,
                "checkpoints_checked": self.checkpoints_checked, "broken_seq": self.broken_seq,
                "request_id": self.request_id, "broken_event": self.broken_rseq, "checkpoint": self.checkpoint,
                "reason": self.reason}


@dataclass(frozen=True)
class RequestSummary:
    """One row of ``RequestStore.list``: the columns a listing shows, without the document."""

    id: int
    title: str
    state: str
    version: int
    requester: str
    sponsor: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ListFilter:
    """Which requests ``RequestStore.list`` returns, in which order, which page."""

    states: Sequence[str] = ()
    requester: str | None = None
    sponsor: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    sort: str = "id"  # one of SORT_KEYS; prefix "-" for descending
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class BoardQuery:
    """Which requests ``RequestStore.board`` shows: the filters, the column order and one page of cards.

    The cards run through the columns in ``order`` (each column newest change first), and the page is
    ``limit`` cards from ``offset`` in that run; ``needs_attention_before`` keeps only requests with a
    checkpoint needing review or sent before then and still unanswered, or one of ``attention_ids``
    (what the attention list found otherwise, e.g. an SLA breach).
    """

    order: Sequence[str]
    states: Sequence[str] = ()
    requester: str | None = None
    sponsor: str | None = None
    owner: str | None = None
    text: str | None = None  # a piece of the title (any case), or the id
    needs_attention_before: datetime | None = None
    attention_ids: Sequence[int] = ()
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class BoardRow:
    """One card's facts, kept on the request's row by the store on every save (``states.card``)."""

    id: int
    title: str
    state: str
    version: int
    requester: str
    sponsor: str
    updated_at: datetime
    in_state_since: datetime
    owners: tuple[str, ...]
    next_action: str
    missing: tuple[str, ...]
    #: (item, offset, status, sent at) of the request's checkpoints that are sent or need review
    open_checkpoints: tuple[tuple[str, str, str, datetime | None], ...] = ()


@dataclass(frozen=True)
class BoardPage:
    counts: dict[str, int]  # matching requests per state (states with none are absent)
    rows: list[BoardRow]  # the page's cards in board order
    sponsors: list[str]  # the sponsors of every matching request, sorted


@dataclass(frozen=True)
class FollowupClaim:
    """Which requests a follow-up claims, and the checkpoint keys it hands over with each one.

    ``kind``: ``due`` — scheduled checkpoints due by ``at``; ``unanswered`` — sent, unanswered ones whose
    survey (or last reminder) went out by ``at``, reminded fewer than ``max_reminders`` / at least
    ``min_reminders`` times when given (as ``unanswered_checkpoints``); ``owing_reminders`` — requests whose
    document holds a pending reminder (no keys; as ``requests_owing_reminders``)."""

    kind: str
    at: datetime | None = None
    max_reminders: int | None = None
    min_reminders: int | None = None


#: What ``claim_followups`` hands each claimed request to: the request (current, locked) and its matching
#: checkpoint keys; it changes the request and returns what it did (counts), saved with the request.
FollowupApply = Callable[["TrainingRequest", list[str]], dict[str, int]]


@dataclass(frozen=True)
class ClockSummary:
    """A request's SLA clock summary, kept on its row by the store on every write (``states.sla``): what
    the SLA clocks and the attention list read instead of the document and the whole history."""

    request_id: int
    title: str
    state: str
    head_seq: int  # the request's chain head: the summary is of its events up to here
    owners: tuple[str, ...]  # the card's owners (states.card.owners)
    names: dict[str, str]  # owner's address -> name, as the document has it (the digest's greeting)
    lines: str  # states.sla.clock_lines of every event of the request, oldest first (states.sla.read_lines)
    needs_review: bool  # a checkpoint of the request needs a person's review


@dataclass(frozen=True)
class DueClock:
    """A request whose running SLA clocks may be near or past their breach (``RequestStore.sla_due``): its
    cached outcome at its head, and what the attention list's items say of it (as its ``ClockSummary``)."""

    request_id: int
    head_seq: int
    outcome: str  # the cached outcome's text (flows.sla)
    title: str
    owners: tuple[str, ...]
    names: dict[str, str]


class RequestStore(Protocol):
    """Requests, their hash-chained history, checkpoint timers and outbox (``SqlStore``, ``InMemoryStore``).

    Every write is all or nothing: the request's document and version, one history record per
    pending event, the checkpoint timers it touched and its outbox messages (at most one per key).
    """

    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Store a new request as version 1; assigns ``request.id`` and clears its pending changes."""
        ...

    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Commit the pending changes and bump the version; ``Conflict`` when the stored version is not
        ``request.version`` (changed meanwhile, or no such request) — then nothing is written."""
        ...

    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest:
        """Load, ``mutate`` and commit one request atomically. ``NotFound`` for an unknown id,
        ``Conflict`` when ``expect_version`` is given and is not the stored one; whatever ``mutate``
        raises propagates and nothing is written."""
        ...

    def get(self, request_id: int) -> TrainingRequest:
        """The stored request (a fresh copy); ``NotFound`` for an unknown id."""
        ...

    def history(self, request_id: int) -> list[AuditRecord]:
        """The request's events, oldest first; ``NotFound`` for an unknown id."""
        ...

    def recent_history(self, request_id: int, limit: int) -> tuple[list[AuditRecord], int]:
        """The request's newest ``limit`` events (oldest first) and how many it has in all; ``NotFound``
        for an unknown id."""
        ...

    def board(self, query: BoardQuery) -> BoardPage:
        """The board's counts per state and one page of cards, without loading a document."""
        ...

    def counts_by_state(self) -> dict[str, int]:
        """How many requests are in each state (states with none are absent)."""
        ...

    def due_checkpoints(self, now: datetime, limit: int = 1000) -> list[tuple[int, str]]:
        """(request id, checkpoint key) of scheduled checkpoints due by ``now``, oldest due first."""
        ...

    def count_due_checkpoints(self, now: datetime) -> int:
        """How many scheduled checkpoints are due by ``now`` (a progress display's total)."""
        ...

    def measurable_requests(self, after_id: int = 0, limit: int = 500) -> list[int]:
        """Ids above ``after_id`` (ascending, at most ``limit``) of delivered requests that have
        checkpoints and none of them still open: what the pipeline measures."""
        ...

    def requests_owing_reminders(self, after_id: int = 0, limit: int = 500) -> list[int]:
        """Ids above ``after_id`` (ascending, at most ``limit``) of requests, in any state, whose document
        holds a reminder still pending (``states.companions.REMINDER_PENDING``): the candidates the
        follow-ups look at; the aggregate decides which reminder is due."""
        ...

    def unanswered_checkpoints(self, sent_before: datetime, limit: int = 1000,
                               max_reminders: int | None = None,
                               min_reminders: int | None = None) -> list[tuple[int, str]]:
        """Sent, unanswered checkpoints whose survey (or last reminder) went out by ``sent_before``;
        given ``max_reminders``, only those reminded fewer times; given ``min_reminders``, only those
        reminded at least that often (the ones to close as missed). Oldest first."""
        ...

    def claim_followups(self, claim: FollowupClaim, actor: str, apply: FollowupApply, limit: int = 1000,
                        per_commit: int = 20) -> dict[str, int]:
        """Claim the requests ``claim`` selects (ascending id, up to ``limit`` checkpoint rows — requests for
        ``owing_reminders``), ``per_commit`` of them per write transaction, and run ``apply`` on each under
        the claim: the request is current and nobody else writes it until the transaction commits its
        changes (events, timers, outbox rows) with the others of the batch. Concurrent callers take
        disjoint batches (PostgreSQL: ``FOR UPDATE SKIP LOCKED`` on the request rows; a request being
        written is left for the next run; SQLite: ``BEGIN IMMEDIATE`` serialises them). Returns the sum
        of ``apply``'s counts and ``checked``: the rows looked at (fewer than ``limit``: none left)."""
        ...

    def analytics_tracks(self, since: int = 0) -> builtins.list[Track]:
        """The analytics tracks (``states.analytics``), computed from the audit history only, of every request
        whose newest event is after seq ``since`` (every request for 0): an incremental refresh."""
        ...

    def sla_heads(self, open_only: bool = True) -> dict[int, int]:
        """Request id -> its chain head (``head_seq``), of the open requests (not in a terminal state)
        or, with ``open_only=False``, of every request: what the SLA clocks' cache is checked against."""
        ...

    def needs_review_ids(self) -> set[int]:
        """The requests with a checkpoint that needs a person's review (``needs_review``)."""
        ...

    def sla_summaries(self, ids: Sequence[int]) -> builtins.list[ClockSummary]:
        """The clock summaries of ``ids`` (unknown ids left out), by id."""
        ...

    def sla_outcomes(self, digest: str) -> dict[int, tuple[int, str]]:
        """The cached SLA outcomes under ``digest`` (``flows.sla``): request id -> (head_seq, outcome)."""
        ...

    def sla_stale(self, digest: str, open_only: bool = True) -> dict[int, int]:
        """Request id -> head_seq of the (open) requests with no cached outcome under ``digest`` at their head."""
        ...

    def sla_due(self, digest: str, until: int, open_only: bool = True) -> builtins.list[DueClock]:
        """The cached outcomes under ``digest``, at their request's head, whose ``quiet`` (epoch seconds) is at
        most ``until``: the (open) requests whose running runs may be near or past their breach, by id."""
        ...

    def sla_section(self, digest: str, until: int,
                    flt: Filter) -> tuple[builtins.list[DueClock], builtins.list[tuple[str, int]]]:
        """For the requests ``flt`` keeps (as ``analytics_summary``, over the track cache as it last brought
        it up to date: call that first at the same ``audit_head``): ``sla_due``'s rows among them (open or
        not), and their number per ``stopped`` of their cached outcome under ``digest`` ('' for none)."""
        ...

    def keep_sla_outcomes(self, digest: str, rows: Sequence[tuple[int, int, str, int | None, str]]) -> None:
        """Cache (request id, head_seq, outcome, quiet, stopped) under ``digest``, replacing what each request
        had (one digest per request: the policy in force). A cache: losing it costs a recomputation only."""
        ...

    def analytics_summary(self, flt: Filter) -> Summary:
        """The figures' summary (``states.analytics_summary``) of the requests ``flt`` keeps, from their
        tracks (equal to ``summarise`` over the kept ``analytics_tracks()``)."""
        ...

    def analytics_refresh(self) -> None:
        """Bring what ``analytics_summary`` and ``sla_section`` read up to every request's head (SqlStore: the
        track cache's stale rows recomputed; a store that walks its tracks at each read has nothing to do)."""
        ...

    def audit_head(self) -> int:
        """A number that grows with every committed write (0 with no event): the analytics cache's key. Not
        the newest seq on a database with concurrent writers, where a smaller seq can commit after a
        larger one; SqlStore counts the events (the sum of the chains' lengths)."""
        ...

    def verify(self) -> VerifyReport:
        """Walk every request's hash chain and check the signed checkpoints; name the first broken link."""
        ...

    def checkpoint(self, at: datetime) -> SignedCheckpoint | None:
        """Sign the heads of every chain as the next checkpoint; None when nothing changed since the latest."""
        ...

    def checkpoints(self) -> builtins.list[SignedCheckpoint]:
        """Every checkpoint, oldest first."""
        ...

    def public_key(self) -> str | None:
        """The checkpoints' Ed25519 public key (hex), None without a signing key."""
        ...

    def iter_history(self, request_id: int | None = None, batch: int = 5000) -> Iterator[AuditRecord]:
        """Every event (of one request, given ``request_id``), in the order they were written."""
        ...

    # Last in the class: a method named `list` shadows the builtin in annotations below it.
    def list(self, flt: ListFilter) -> tuple[list[RequestSummary], int]:
        """One page of summaries and the number of requests that match; ``KeyError`` for a sort key
        not in ``SORT_KEYS``."""
        ...


