"""The in-memory request store: the fake of :class:`connectors.ports.RequestStore` (``SqlStore``)."""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from connectors import audit_chain as audit
from connectors.audit_checkpoints import SignedCheckpoint
from connectors.ports import (
    SORT_KEYS,
    AuditRecord,
    BoardPage,
    BoardQuery,
    BoardRow,
    ClockSummary,
    DueClock,
    ListFilter,
    RequestSummary,
    StagedEvent,
)
from connectors.prefect_events import change_events
from connectors.testing.store_audit import InMemoryAuditChecks, _hashed
from connectors.testing.store_followups import InMemoryFollowups
from states import sla
from states.analytics import Track, walk
from states.analytics_figures import Filter
from states.analytics_summary import Summary, summarise
from states.card import facts, owners
from states.checkpoints import CheckpointStatus
from states.errors import Conflict, NotFound
from states.events import DomainEvent
from states.lifecycle import NON_TERMINAL
from states.request import TrainingRequest

if TYPE_CHECKING:
    from connectors import ports

__all__ = ["InMemoryStore", "OutboxMessage"]

# --- request store --------------------------------------------------------------------------------


_OPEN = frozenset(s.value for s in NON_TERMINAL)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


@dataclasses.dataclass
class _Row:
    id: int
    title: str
    state: str
    version: int
    requester: str
    sponsor: str
    created_at: datetime
    updated_at: datetime
    head_seq: int
    document: str
    in_state_since: datetime
    head_hash: str = audit.GENESIS
    head_mac: str = ""


@dataclasses.dataclass
class _Timer:
    key: str
    request_id: int
    status: str
    due_at: datetime
    sent_at: datetime | None
    reminders_sent: int = 0
    last_reminder_at: datetime | None = None


@dataclasses.dataclass
class OutboxMessage:
    """One queued notification (what ``SqlStore`` writes as an outbox row)."""

    key: str
    request_id: int
    template: str
    notification: dict[str, Any]
    created_at: datetime
    status: str = "pending"


class InMemoryStore(InMemoryAuditChecks, InMemoryFollowups):
    """The ``RequestStore`` port without a database: requests, history, checkpoint timers and
    outbox in dictionaries (thread-safe).

    It keeps the same contract as ``connectors.db.store.SqlStore``: ``add``
    assigns an id and version 1, ``save`` checks the version (``Conflict``) and
    bumps it by one, each pending event becomes one hash-chained history record,
    the request's checkpoints are the timers ``due_checkpoints`` reads, notifications go
    to an outbox with at most one message per key, and a change is all or nothing.
    Requests are stored as JSON documents, so callers never share objects with it.
    """

    def __init__(self, signing_key: Any = None) -> None:
        self.signing_key = signing_key  # Ed25519 key of the checkpoints (as SqlStore's), or None
        self._checkpoints: builtins.list[SignedCheckpoint] = []
        self._lock = threading.RLock()  # re-entered by update()
        self._rows: dict[int, _Row] = {}
        self._events: list[AuditRecord] = []
        self._timers: dict[str, _Timer] = {}
        self.outbox: dict[str, OutboxMessage] = {}
        self._outcomes: dict[int, tuple[str, int, str]] = {}  # the SLA outcomes' cache (SqlStore: sla_outcomes)
        self._quiet: dict[int, int | None] = {}  # and its narrow columns
        self._stopped: dict[int, str] = {}
        #: The event outbox (``SqlStore`` writes ``event_outbox`` rows), oldest first; replaced on write.
        self.events: builtins.list[StagedEvent] = []

    # --- writing -----------------------------------------------------------------------------------

    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Insert a new request (version 1) with its events and outbox rows; assigns ``request.id``."""
        with self._lock:
            request.id = max(self._rows, default=0) + 1
            request.version = 1
            self._write(request, actor, version=1, new=True)
        request.clear_pending()
        return request

    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Commit the request's pending changes if nobody changed it since it was loaded."""
        assert request.id is not None
        with self._lock:
            row = self._rows.get(request.id)
            if row is None or row.version != request.version:  # SqlStore: the UPDATE matched no row
                raise Conflict(request.id, request.version, row.version if row else None)
            self._write(request, actor, version=request.version + 1, new=False)
        request.clear_pending()
        return request

    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest:
        """Load, change and commit one request atomically (as ``SqlStore.update``)."""
        with self._lock:
            request = self.get(request_id)
            if expect_version is not None and request.version != expect_version:
                raise Conflict(request_id, expect_version, request.version)
            mutate(request)
            return self.save(request, actor)

    def _mac(self, request_id: int, head: tuple[int, str]) -> str:
        from connectors.audit_checkpoints import mac_key

        return audit.head_mac(mac_key(self.signing_key), request_id, *head) if self.signing_key is not None else ""

    def _chained(self, request_id: int, events: Sequence[DomainEvent], actor: str, at: datetime,
                 version: int, head: tuple[int, str], doc: str) -> builtins.list[AuditRecord]:
        """``events`` as the next links of the request's chain after ``head`` (not yet appended)."""
        seq = self._events[-1].seq if self._events else 0
        rseq, prev = head
        records = []
        for e in events:
            seq, rseq = seq + 1, rseq + 1
            record = AuditRecord(seq=seq, request_id=request_id, type=e.type, trigger=e.trigger,
                                 from_state=e.from_state, to_state=e.to_state, version=version, actor=actor,
                                 at=_iso(at), payload=e.payload, prev_hash=prev, hash="", rseq=rseq, doc=doc)
            prev = audit.event_hash(prev, _hashed(record))
            records.append(dataclasses.replace(record, hash=prev))
        return records

    def append_events(self, request_id: int, events: Sequence[DomainEvent], actor: str, at: datetime) -> None:
        """Non-transition events into a request's history at its current version (as
        ``SqlStore.record_events`` does inside a transaction); the caller holds the lock."""
        row = self._rows.get(request_id)
        if row is None:
            raise NotFound(f"request {request_id}")
        doc = next((e.doc for e in reversed(self._events) if e.request_id == request_id), "")
        records = self._chained(request_id, events, actor, at, row.version, (row.head_seq, row.head_hash), doc)
        staged = self._staged(request_id, row.version, events, (), at)
        self._events.extend(records)
        self.events = [*self.events, *staged]
        if records:
            head = (records[-1].rseq, records[-1].hash)
            self._rows[request_id] = dataclasses.replace(row, head_seq=head[0], head_hash=head[1],
                                                         head_mac=self._mac(request_id, head))

    def _staged(self, request_id: int, version: int, events: Sequence[DomainEvent], keys: Sequence[str],
                at: datetime) -> builtins.list[StagedEvent]:
        """The Prefect events of one change as event-outbox rows (an id already staged is skipped)."""
        known = {e.event_id for e in self.events}
        next_id = (self.events[-1].id if self.events else 0) + 1
        out: builtins.list[StagedEvent] = []
        for e in change_events(request_id, version, events, keys, at, datetime.now(UTC)):
            if e.id not in known:
                out.append(StagedEvent(next_id + len(out), e.id, e.event, e.resource, e.payload, e.occurred))
        return out

    def _write(self, request: TrainingRequest, actor: str, *, version: int, new: bool) -> None:
        """Build every effect first, then apply them together (nothing half-written on an error)."""
        assert request.id is not None
        at = request.updated_at
        # The document round-trips through JSON exactly as SqlStore stores it.
        document = request.model_dump_json(exclude={"id", "version"})
        old = None if new else self._rows[request.id]
        head = (old.head_seq, old.head_hash) if old else (0, audit.GENESIS)
        records = self._chained(request.id, request.pending_events(), actor, at, version, head,
                                audit.doc_hash(request.state.value, version, document))
        if records:
            head = (records[-1].rseq, records[-1].hash)
        derived = (_Timer(c.key, request.id, c.status.value, c.due_at, c.sent_at, c.reminders_sent,
                          c.last_reminder_at) for c in request.checkpoints)
        timers = {t.key: t for t in derived if self._timers.get(t.key) != t}  # new or changed
        messages = {n.key: OutboxMessage(n.key, request.id, n.template, dataclasses.asdict(n), at)
                    for n in request.pending_notifications() if n.key not in self.outbox}
        staged = self._staged(request.id, version, request.pending_events(),
                              [n.key for n in request.pending_notifications()], at)

        created = self._rows[request.id].created_at if not new else request.created_at
        since = (request.created_at if new else at if any(e.to_state for e in request.pending_events())
                 else self._rows[request.id].in_state_since)
        self._rows[request.id] = _Row(request.id, request.intake.title, request.state.value, version,
                                      request.intake.requester.email, request.intake.sponsor.email,
                                      created, at, head[0], document, since, head[1],
                                      self._mac(request.id, head))
        self._events.extend(records)
        self._timers.update(timers)
        self.outbox.update(messages)
        self.events = [*self.events, *staged]
        request.version = version

    # --- reading -----------------------------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        """Everything stored, cheap to compare: lets a test check that a refused command wrote nothing."""
        with self._lock:  # rows and timers are replaced on write, never changed in place
            return (tuple(self._rows.items()), len(self._events), tuple(self._timers.items()), tuple(self.outbox),
                    len(self.events))

    def get(self, request_id: int) -> TrainingRequest:
        with self._lock:
            row = self._rows.get(request_id)
            if row is None:
                raise NotFound(f"request {request_id}")
            request = TrainingRequest.from_stored(row.document)
            request.id, request.version = row.id, row.version
            return request

    def iter_requests(self, batch: int = 500) -> Iterator[TrainingRequest]:
        """Every request by id, as ``SqlStore.iter_requests`` (the export of all requests)."""
        with self._lock:
            ids = sorted(self._rows)
        for request_id in ids:
            yield self.get(request_id)

    def history(self, request_id: int) -> builtins.list[AuditRecord]:
        with self._lock:
            if request_id not in self._rows:
                raise NotFound(f"request {request_id}")
            return [e for e in self._events if e.request_id == request_id]

    def recent_history(self, request_id: int, limit: int) -> tuple[builtins.list[AuditRecord], int]:
        events = self.history(request_id)
        return events[-limit:] if limit > 0 else [], len(events)

    def board(self, query: BoardQuery) -> BoardPage:
        """The board as ``SqlStore.board`` reads it, derived from the documents on the fly."""
        with self._lock:
            rows = builtins.list(self._rows.values())
        cards = []
        for r in rows:
            request = TrainingRequest.from_stored(r.document)
            card = facts(request)
            opened = tuple((c.item_id, c.offset, c.status.value, c.sent_at) for c in request.checkpoints
                           if c.status in (CheckpointStatus.SENT, CheckpointStatus.NEEDS_REVIEW))
            cards.append(BoardRow(r.id, r.title, r.state, r.version, r.requester, r.sponsor, r.updated_at,
                                  r.in_state_since, card.owners, card.next_action, card.missing, opened))
        cards = [c for c in cards if _on_board(c, query)]
        rank = {s: i for i, s in enumerate(query.order)}
        cards.sort(key=lambda c: (rank.get(c.state, len(rank)), -c.updated_at.timestamp(), -c.id))
        counts: dict[str, int] = {}
        for c in cards:
            counts[c.state] = counts.get(c.state, 0) + 1
        shown = [c for c in cards if c.state in rank][query.offset:query.offset + query.limit]
        return BoardPage(counts=counts, rows=shown, sponsors=sorted({c.sponsor for c in cards}))

    def list(self, flt: ListFilter) -> tuple[builtins.list[RequestSummary], int]:
        """One page of request summaries and the total that match the filter."""
        key = flt.sort.lstrip("-")
        if key not in SORT_KEYS:
            raise KeyError(key)
        with self._lock:
            rows = builtins.list(self._rows.values())
        if flt.states:
            rows = [r for r in rows if r.state in set(flt.states)]
        if flt.requester:
            rows = [r for r in rows if r.requester == flt.requester.lower()]
        if flt.sponsor:
            rows = [r for r in rows if r.sponsor == flt.sponsor.lower()]
        if flt.created_from:
            rows = [r for r in rows if r.created_at >= _day_start(flt.created_from)]
        if flt.created_to:
            rows = [r for r in rows if r.created_at < _day_start(flt.created_to) + timedelta(days=1)]
        attr = {"id": "id", "created": "created_at", "updated": "updated_at", "state": "state",
                "title": "title"}[key]
        rows.sort(key=lambda r: r.id)  # ties break on id ascending, as in SqlStore
        rows.sort(key=lambda r: getattr(r, attr), reverse=flt.sort.startswith("-"))
        total = len(rows)
        page = rows[flt.offset:flt.offset + flt.limit]
        return [RequestSummary(r.id, r.title, r.state, r.version, r.requester, r.sponsor, r.created_at,
                               r.updated_at) for r in page], total

    def counts_by_state(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for r in self._rows.values():
                counts[r.state] = counts.get(r.state, 0) + 1
            return counts

    def analytics_tracks(self, since: int = 0) -> builtins.list[Track]:
        """The tracks by walking the events (``states.analytics.walk``, the oracle of the SQL)."""
        with self._lock:
            changed = {e.request_id for e in self._events if e.seq > since}
            events = [e for e in self._events if e.request_id in changed]
        return walk(events)

    def sla_heads(self, open_only: bool = True) -> dict[int, int]:
        with self._lock:
            return {i: r.head_seq for i, r in self._rows.items() if not open_only or r.state in _OPEN}

    def needs_review_ids(self) -> set[int]:
        with self._lock:
            return {t.request_id for t in self._timers.values() if t.status == "needs_review"}

    def sla_summaries(self, ids: Sequence[int]) -> builtins.list[ClockSummary]:
        """The summaries as ``SqlStore`` keeps them, made here from the history and the document."""
        with self._lock:
            rows = [self._rows[i] for i in sorted(set(ids)) if i in self._rows]
            events = [e for e in self._events if e.request_id in {r.id for r in rows}]
            review = {t.request_id for t in self._timers.values() if t.status == "needs_review"}
        found = []
        for r in rows:
            request = TrainingRequest.from_stored(r.document)
            lines = sla.clock_lines((e.type, e.at, e.payload) for e in events if e.request_id == r.id)
            found.append(ClockSummary(r.id, r.title, r.state, r.head_seq, owners(request), sla.owner_names(request),
                                      lines, r.id in review))
        return found

    def sla_outcomes(self, digest: str) -> dict[int, tuple[int, str]]:
        with self._lock:
            return {i: (h, o) for i, (d, h, o) in self._outcomes.items() if d == digest}

    def sla_stale(self, digest: str, open_only: bool = True) -> dict[int, int]:
        with self._lock:
            return {i: r.head_seq for i, r in self._rows.items() if (not open_only or r.state in _OPEN)
                    and self._outcomes.get(i, ("", -1))[:2] != (digest, r.head_seq)}

    def sla_due(self, digest: str, until: int, open_only: bool = True) -> builtins.list[DueClock]:
        return self._due(digest, until, open_only, None)

    def _due(self, digest: str, until: int, open_only: bool, kept: set[int] | None) -> builtins.list[DueClock]:
        with self._lock:
            due = [(i, r, o[2]) for i, r in sorted(self._rows.items())
                   if (not open_only or r.state in _OPEN) and (kept is None or i in kept)
                   and (o := self._outcomes.get(i)) is not None and o[:2] == (digest, r.head_seq)
                   and (q := self._quiet.get(i)) is not None and q <= until]
        found = []
        for i, r, text in due:
            request = TrainingRequest.from_stored(r.document)
            found.append(DueClock(i, r.head_seq, text, r.title, owners(request), sla.owner_names(request)))
        return found

    def sla_section(self, digest: str, until: int,
                    flt: Filter) -> tuple[builtins.list[DueClock], builtins.list[tuple[str, int]]]:
        kept = {t.request_id for t in self.analytics_tracks() if flt.keeps(t)}
        with self._lock:
            found = Counter(self._stopped.get(i, "") if self._outcomes.get(i, ("",))[0] == digest else ""
                            for i in kept)
        return self._due(digest, until, False, kept), list(found.items())

    def keep_sla_outcomes(self, digest: str, rows: Sequence[tuple[int, int, str, int | None, str]]) -> None:
        with self._lock:
            for i, h, o, q, s in rows:
                self._outcomes[i], self._quiet[i], self._stopped[i] = (digest, h, o), q, s
    def analytics_summary(self, flt: Filter) -> Summary:
        """``summarise`` over the walked tracks ``flt`` keeps."""
        return summarise([t for t in self.analytics_tracks() if flt.keeps(t)])

    def analytics_refresh(self) -> None:
        """Nothing to bring up to date: the tracks are walked at each read."""

    def audit_head(self) -> int:
        with self._lock:
            return self._events[-1].seq if self._events else 0

    def iter_history(self, request_id: int | None = None, batch: int = 5000) -> Iterator[AuditRecord]:
        with self._lock:
            events = [e for e in self._events if request_id is None or e.request_id == request_id]
        return iter(events)


def _on_board(c: BoardRow, q: BoardQuery) -> bool:
    text = (q.text or "").lower()
    late = q.needs_attention_before
    return ((not q.states or c.state in q.states) and (not q.requester or c.requester == q.requester.lower())
            and (not q.sponsor or c.sponsor == q.sponsor.lower()) and (not q.owner or q.owner.lower() in c.owners)
            and (not text or text in c.title.lower() or text == str(c.id))
            and (late is None or c.id in q.attention_ids or any(status == CheckpointStatus.NEEDS_REVIEW.value
                                     or (status == CheckpointStatus.SENT.value and sent is not None and sent < late)
                                     for _, _, status, sent in c.open_checkpoints)))


if TYPE_CHECKING:  # mypy checks the fake against its port, parameter and return types included
    _store: type[ports.RequestStore] = InMemoryStore


