"""The request store on SQLAlchemy Core: one transaction per change.

``save`` writes the request's new state and version, its audit events
(hash-chained per request, under the request's row lock), the checkpoint
timers (derived from the request's checkpoints), its outbox rows and its
Prefect events (the event outbox) in one write transaction — all or nothing —
after an optimistic version check.
Core, not the ORM: a transition here costs a few statements, measured in
``bench/transitions.py``.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    Text,
    TextClause,
    and_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)

from connectors.audit_chain import doc_hash, head_mac
from connectors.audit_checkpoints import SignedCheckpoint, mac_key, public_hex
from connectors.db import audit, event_outbox
from connectors.db import board as boards
from connectors.db.analytics_queries import AnalyticsQueries
from connectors.db.engine import read_transaction, write_transaction
from connectors.db.followup_queries import FollowupQueries
from connectors.db.sla_clocks import SlaClockQueries
from connectors.db.tables import audit_events, checkpoints, outbox, requests
from connectors.notification_codec import notification_json
from connectors.ports import AuditRecord, BoardPage, BoardQuery, OutboxStatus, VerifyReport
from connectors.ports import ListFilter as ListFilter  # re-exported: callers import it from here too
from connectors.ports import RequestSummary as RequestSummary
from states.card import facts
from states.checkpoints import Checkpoint
from states.errors import Conflict, NotFound
from states.events import DomainEvent
from states.lifecycle import State
from states.request import TrainingRequest
from states.sla import clock_lines, owner_names


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# Hot-path statements, built once with bound parameters: building and cache-keying a Core statement
# costs several times more than SQLite takes to run it (bench/transitions.py, bench/README.md).
_GET = select(requests.c.version, requests.c.document).where(requests.c.id == bindparam("request_id"))
# The request and its audit chain head in one round trip, locking its row (PostgreSQL; SQLite's write
# transaction holds the database lock): writers on other requests do not wait.
_GET_FOR_UPDATE = (select(requests.c.version, requests.c.document, requests.c.head_seq, requests.c.head_hash)
                   .where(requests.c.id == bindparam("request_id")).with_for_update())
_HEAD_FOR_UPDATE = (select(requests.c.head_seq, requests.c.head_hash, requests.c.version)
                    .where(requests.c.id == bindparam("request_id")).with_for_update())
_LAST_DOC = select(audit_events.c.doc).where(audit_events.c.request_id == bindparam("request_id"),
                                             audit_events.c.rseq == bindparam("rseq"))
_EXISTS = select(requests.c.id).where(requests.c.id == bindparam("request_id"))
_HISTORY = (select(audit_events).where(audit_events.c.request_id == bindparam("request_id"))
            .order_by(audit_events.c.rseq))
# The card columns are derived from the document (states/card.py); in_state_since moves only on a transition.
_SAVE = (update(requests)
         .where(requests.c.id == bindparam("b_id"), requests.c.version == bindparam("b_expected"))
         .values(state=bindparam("b_state"), version=bindparam("b_version"), updated_at=bindparam("b_updated_at"),
                 head_seq=bindparam("b_head_seq"), head_hash=bindparam("b_head_hash"), head_mac=bindparam("b_head_mac"),
                 document=bindparam("b_document"),
                 in_state_since=func.coalesce(bindparam("b_since", type_=requests.c.in_state_since.type),
                                              requests.c.in_state_since),
                 owners=bindparam("b_owners"), next_action=bindparam("b_next"), missing=bindparam("b_missing"),
                 # the listing's copies follow an amended intake (title, requester, sponsor)
                 title=bindparam("b_title"), requester_email=bindparam("b_requester"),
                 sponsor_email=bindparam("b_sponsor"),
                 # the SLA clock summary grows by the appended events' lines (states.sla.clock_lines)
                 sla_entries=requests.c.sla_entries + bindparam("b_clock", type_=Text),
                 owner_names=bindparam("b_names")))


def _insert_or(table: Table, columns: list[str], keys: list[str], update: Sequence[str] = ()) -> TextClause:
    """``INSERT … ON CONFLICT (keys) DO NOTHING | DO UPDATE SET …`` as one text statement, valid on SQLite
    (3.24+) and PostgreSQL alike. SQLAlchemy cannot cache the compiled form of the dialects' own
    ``on_conflict_*`` constructs (~250 µs to compile on every call); a text statement is cached. The
    bind types come from the table, so datetimes are stored exactly as Core stores them elsewhere."""
    quoted = ", ".join(f'"{c}"' for c in columns)
    action = ("DO UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in update)) if update else "DO NOTHING"
    stmt = text(f'INSERT INTO {table.name} ({quoted}) VALUES ({", ".join(":" + c for c in columns)}) '
                f'ON CONFLICT ({", ".join(chr(34) + k + chr(34) for k in keys)}) {action}')
    return stmt.bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


# Requests per state (the board's counts): +1 on add, -1/+1 on a state change, in the change's transaction.
_COUNT = text('INSERT INTO request_counts (state, n) VALUES (:state, :d) '
              'ON CONFLICT (state) DO UPDATE SET n = request_counts.n + excluded.n')
_INSERTS: dict[tuple[str, tuple[str, ...], tuple[str, ...]], TextClause] = {}
_CHECKPOINT_UPSERT = _insert_or(
    checkpoints, ["key", "request_id", "item_id", "offset", "due_at", "status", "sent_at", "reminders_sent",
                  "last_reminder_at", "closed_at", "result"], ["key"],
    update=["status", "sent_at", "reminders_sent", "last_reminder_at", "closed_at", "result", "due_at"])


def _timer_rows(request_id: int, checkpoints: Sequence[Checkpoint]) -> list[dict[str, Any]]:
    """The ``checkpoints`` table's rows for a request's checkpoints (the timers the pipeline reads)."""
    return [{
        "key": c.key, "request_id": request_id, "item_id": c.item_id, "offset": c.offset,
        "due_at": c.due_at, "status": c.status.value, "sent_at": c.sent_at,
        "reminders_sent": c.reminders_sent, "last_reminder_at": c.last_reminder_at, "closed_at": c.closed_at,
        "result": json.dumps({"value": c.value, "note": c.note, "missed_reason": c.missed_reason})
        if c.closed else None,
    } for c in checkpoints]


SORTS = {"id": requests.c.id, "created": requests.c.created_at, "updated": requests.c.updated_at,
         "state": requests.c.state, "title": requests.c.title}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SqlStore(FollowupQueries, SlaClockQueries, AnalyticsQueries):
    """Requests, their history, timers and outbox in one SQL database."""

    def __init__(self, engine: Engine, signing_key: Any = None) -> None:
        """``signing_key``: the Ed25519 private key of the checkpoints (``connectors.keys.signing_key``), or a
        function returning it (read on first use), or None (no checkpoints; verify trusts the first one's key)."""
        self.engine = engine
        self._signing = signing_key
        self._mac_key: bytes | None = None

    @property
    def signing_key(self) -> Any:
        if callable(self._signing) and not hasattr(self._signing, "sign"):
            self._signing = self._signing()
        return self._signing

    def _mac(self, request_id: int, head: tuple[int, str]) -> str:
        """The chain head's HMAC under the audit key ("" without a key)."""
        if self._mac_key is None:
            key = self.signing_key
            self._mac_key = mac_key(key) if key is not None else b""
        return head_mac(self._mac_key, request_id, *head) if self._mac_key else ""

    # --- writing -----------------------------------------------------------------------------------

    def add(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Insert a new request (version 1) with its events and outbox rows; assigns ``request.id``."""
        with write_transaction(self.engine) as conn:
            self.add_in(conn, request, actor)
        request.clear_pending()
        return request

    def save(self, request: TrainingRequest, actor: str) -> TrainingRequest:
        """Commit the request's pending changes if nobody changed it since it was loaded."""
        assert request.id is not None
        with write_transaction(self.engine) as conn:
            self._write_effects(conn, request, actor, new=False)
        request.clear_pending()
        return request

    def update(self, request_id: int, actor: str, mutate: Callable[[TrainingRequest], None],
               expect_version: int | None = None) -> TrainingRequest:
        """Load, change and commit one request in a single write transaction.

        ``mutate`` runs under the write lock (``BEGIN IMMEDIATE`` / the request's row lock), so the request
        it sees is current; when it raises (a refused transition, invalid input) the transaction
        rolls back and nothing is written. ``expect_version`` makes it refuse with ``Conflict``
        when the request has moved on since the caller last looked.
        """
        with write_transaction(self.engine) as conn:
            row = conn.execute(_GET_FOR_UPDATE, {"request_id": request_id}).first()
            if row is None:
                raise NotFound(f"request {request_id}")
            request = self._document(request_id, row.version, row.document)
            if expect_version is not None and request.version != expect_version:
                raise Conflict(request_id, expect_version, request.version)
            timers = _timer_rows(request_id, request.checkpoints)  # as stored: derived from this document
            mutate(request)
            head = (int(row.head_seq), row.head_hash)
            self._write_effects(conn, request, actor, new=False, head=head, timers=timers)
        request.clear_pending()
        return request

    def _write_claimed(self, conn: Connection, row: Any, actor: str,
                       apply: Callable[[TrainingRequest], dict[str, int]]) -> dict[str, int]:
        """A request claimed by ``claim_followups`` (row locked in ``conn``): apply, then write its effects."""
        request = self._document(row.id, row.version, row.document)
        timers = _timer_rows(row.id, request.checkpoints)
        done = apply(request)
        if not request.pending_events():
            return {}
        self._write_effects(conn, request, actor, new=False, head=(int(row.head_seq), row.head_hash), timers=timers)
        request.clear_pending()
        return done

    def add_in(self, conn: Connection, request: TrainingRequest, actor: str) -> TrainingRequest:
        """``add`` inside the caller's write transaction (``write_transaction``), e.g. together with
        the inbound-mail record of the message that caused it. Pending changes are cleared only
        by ``add``: a caller that rolls back discards the request object."""
        request.version = 1
        request.id = conn.execute(insert(requests).values(
            title=request.intake.title, state=request.state.value, version=1,
            requester_email=request.intake.requester.email, sponsor_email=request.intake.sponsor.email,
            created_at=request.created_at, updated_at=request.updated_at, head_seq=0, head_hash=audit.GENESIS,
            document="{}", in_state_since=request.created_at, sla_entries="",
        ).returning(requests.c.id)).scalar_one()
        conn.execute(_COUNT, {"state": request.state.value, "d": 1})
        self._write_effects(conn, request, actor, new=True, head=(0, audit.GENESIS))
        return request

    def save_in(self, conn: Connection, request: TrainingRequest, actor: str) -> TrainingRequest:
        """``save`` inside the caller's write transaction (see ``add_in``); raises ``Conflict`` likewise."""
        assert request.id is not None
        self._write_effects(conn, request, actor, new=False)
        return request

    def _write_effects(self, conn: Connection, request: TrainingRequest, actor: str, *, new: bool,
                       head: tuple[int, str] | None = None, timers: list[dict[str, Any]] | None = None) -> None:
        """Events, the document, the checkpoint timers and the outbox rows of one change. The timers are
        derived from the document's checkpoints: each one whose row differs from ``timers`` (the rows as
        stored, when the caller knows them) is upserted — all of them when it does not."""
        assert request.id is not None
        expected = request.version
        if head is None:  # lock the row and read its chain head (a missing row: Conflict below)
            locked = conn.execute(_HEAD_FOR_UPDATE, {"request_id": request.id}).first()
            head = (int(locked.head_seq), locked.head_hash) if locked else (0, audit.GENESIS)
        version = expected if new else expected + 1
        at = request.updated_at
        at_text = _iso(at)
        request.version = version
        document = request.model_dump_json(exclude={"id", "version"})
        card = facts(request)
        moves = [e for e in request.pending_events() if e.to_state]
        moved = bool(moves)
        doc = doc_hash(request.state.value, version, document)
        pending = request.pending_events()
        rows = [{"request_id": request.id, "type": e.type, "trigger": e.trigger, "from_state": e.from_state,
                 "to_state": e.to_state, "version": version, "actor": actor, "at": at_text, "doc": doc,
                 "payload": audit.canonical_json(e.payload)} for e in pending]
        head_seq, head_hash = audit.append(conn, head, rows)
        result = conn.execute(_SAVE, {"b_id": request.id, "b_expected": expected, "b_state": request.state.value,
                                      "b_version": version, "b_updated_at": at, "b_head_seq": head_seq,
                                      "b_head_hash": head_hash, "b_document": document,
                                      "b_head_mac": self._mac(request.id, (head_seq, head_hash)),
                                      "b_since": at if moved else None,
                                      "b_owners": json.dumps(list(card.owners)), "b_next": card.next_action,
                                      "b_missing": json.dumps(list(card.missing)), "b_title": request.intake.title,
                                      "b_requester": request.intake.requester.email,
                                      "b_sponsor": request.intake.sponsor.email,
                                      "b_clock": clock_lines((e.type, at_text, e.payload) for e in pending),
                                      "b_names": json.dumps(owner_names(request))})
        if result.rowcount != 1:
            request.version = expected
            actual = conn.execute(select(requests.c.version).where(requests.c.id == request.id)).scalar()
            raise Conflict(request.id, expected, actual)
        if moves and not new and moves[0].from_state != moves[-1].to_state:
            conn.execute(_COUNT, [{"state": State(moves[0].from_state).value, "d": -1},
                                  {"state": State(moves[-1].to_state).value, "d": 1}])
        if request.checkpoints:  # no statement for a request without checkpoints (most transitions)
            rows = _timer_rows(request.id, request.checkpoints)
            changed = rows if timers is None else [r for r in rows if r not in timers]
            if changed:
                conn.execute(_CHECKPOINT_UPSERT, changed)
        notes = request.pending_notifications()
        if notes:
            values = [{"key": n.key, "request_id": request.id, "template": n.template,
                       "notification": notification_json(n),
                       "created_at": at, "status": OutboxStatus.PENDING, "attempts": 0} for n in notes]
            self._insert_ignore(conn, outbox, values, ["key"])
        event_outbox.stage(conn, request.id, version, request.pending_events(), [n.key for n in notes], at)

    def record_events(self, conn: Connection, request_id: int, events: Sequence[DomainEvent], actor: str,
                      at: datetime) -> int:
        """Append non-transition events (e-mail sent or bounced, invite sent…) to a request's history
        inside the caller's write transaction (see ``write_transaction``), without changing its
        version. Returns the request's new number of events."""
        locked = conn.execute(_HEAD_FOR_UPDATE, {"request_id": request_id}).first()
        if locked is None:
            raise NotFound(f"request {request_id}")
        version, head = locked.version, (int(locked.head_seq), locked.head_hash)
        # The events leave the row as it was: they carry the document hash of the request's newest event.
        doc = conn.execute(_LAST_DOC, {"request_id": request_id, "rseq": head[0]}).scalar() or ""
        at_text = _iso(at)
        head_seq, head_hash = audit.append(conn, head, [{
            "request_id": request_id, "type": e.type, "trigger": None, "from_state": None, "to_state": None,
            "version": version, "actor": actor, "at": at_text, "doc": doc, "payload": audit.canonical_json(e.payload)}
            for e in events])
        conn.execute(update(requests).where(requests.c.id == request_id).values(
            head_seq=head_seq, head_hash=head_hash, head_mac=self._mac(request_id, (head_seq, head_hash)),
            sla_entries=requests.c.sla_entries + clock_lines((e.type, at_text, e.payload) for e in events)))
        event_outbox.stage(conn, request_id, version, events, (), at)
        return head_seq

    @staticmethod
    def _insert_ignore(conn: Connection, table: Any, values: list[dict[str, Any]], keys: list[str]) -> None:
        shape = (table.name, tuple(values[0]), tuple(keys))
        stmt = _INSERTS.get(shape)
        if stmt is None:
            stmt = _INSERTS[shape] = _insert_or(table, list(values[0]), keys)
        conn.execute(stmt, values)

    # --- reading -----------------------------------------------------------------------------------

    def get(self, request_id: int) -> TrainingRequest:
        with read_transaction(self.engine) as conn:
            return self._get(conn, request_id)

    @staticmethod
    def _get(conn: Connection, request_id: int) -> TrainingRequest:
        row = conn.execute(_GET, {"request_id": request_id}).first()
        if row is None:
            raise NotFound(f"request {request_id}")
        return SqlStore._document(request_id, row.version, row.document)

    @staticmethod
    def _document(request_id: int, version: int, document: str) -> TrainingRequest:
        request = TrainingRequest.from_stored(document)
        request.id = request_id
        request.version = version
        return request

    def history(self, request_id: int) -> list[AuditRecord]:
        with read_transaction(self.engine) as conn:
            if conn.execute(_EXISTS, {"request_id": request_id}).first() is None:
                raise NotFound(f"request {request_id}")
            rows = conn.execute(_HISTORY, {"request_id": request_id}).all()
        return [audit.to_record(r) for r in rows]

    def recent_history(self, request_id: int, limit: int) -> tuple[list[AuditRecord], int]:
        with read_transaction(self.engine) as conn:
            if conn.execute(_EXISTS, {"request_id": request_id}).first() is None:
                raise NotFound(f"request {request_id}")
            return boards.recent_history(conn, request_id, limit)

    def board(self, query: BoardQuery) -> BoardPage:
        with read_transaction(self.engine) as conn:
            return boards.board(conn, query)

    def counts_by_state(self) -> dict[str, int]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(requests.c.state, func.count()).group_by(requests.c.state)).all()
        return {state: int(n) for state, n in rows}

    def iter_requests(self, batch: int = 500) -> Iterator[TrainingRequest]:
        last = 0
        while True:
            with read_transaction(self.engine) as conn:
                rows = conn.execute(select(requests.c.id, requests.c.version, requests.c.document)
                                    .where(requests.c.id > last).order_by(requests.c.id).limit(batch)).all()
            if not rows:
                return
            for r in rows:
                request = TrainingRequest.from_stored(r.document)
                request.id, request.version = r.id, r.version
                yield request
            last = rows[-1].id

    def iter_history(self, request_id: int | None = None, batch: int = 5000) -> Iterator[AuditRecord]:
        last = 0
        while True:
            query = select(audit_events).where(audit_events.c.seq > last)  # seq: the order across requests
            if request_id is not None:
                query = query.where(audit_events.c.request_id == request_id)
            with read_transaction(self.engine) as conn:
                rows = conn.execute(query.order_by(audit_events.c.seq).limit(batch)).all()
            if not rows:
                return
            yield from (audit.to_record(r) for r in rows)
            last = rows[-1].seq

    def verify(self) -> VerifyReport:
        """Every chain and the signed checkpoints (with this store's key when it has one)."""
        key = self.signing_key
        return audit.verify(self.engine, public_hex(key) if key is not None else None,
                            mac_key(key) if key is not None else None)

    def checkpoint(self, at: datetime) -> SignedCheckpoint | None:
        """Sign the heads of every chain (None: nothing changed since the latest checkpoint)."""
        if self.signing_key is None:
            raise RuntimeError("this store has no audit signing key")
        return audit.write_checkpoint(self.engine, self.signing_key, at)

    def checkpoints(self) -> builtins.list[SignedCheckpoint]:
        with read_transaction(self.engine) as conn:
            return audit.checkpoints(conn)

    def public_key(self) -> str | None:
        return public_hex(self.signing_key) if self.signing_key is not None else None

    # Last in the class: a method named `list` shadows the builtin in annotations below it.
    def list(self, flt: ListFilter) -> tuple[list[RequestSummary], int]:
        """One page of request summaries and the total that match the filter."""
        conds: list[ColumnElement[bool]] = []
        if flt.states:
            conds.append(requests.c.state.in_(list(flt.states)))
        if flt.requester:
            conds.append(requests.c.requester_email == flt.requester.lower())
        if flt.sponsor:
            conds.append(requests.c.sponsor_email == flt.sponsor.lower())
        if flt.created_from:
            conds.append(requests.c.created_at >= datetime.combine(flt.created_from, time(0), UTC))
        if flt.created_to:
            conds.append(requests.c.created_at < datetime.combine(flt.created_to, time(0), UTC) + timedelta(days=1))
        where = and_(*conds) if conds else None
        key = flt.sort.lstrip("-")
        column = SORTS[key]
        order = [column.desc() if flt.sort.startswith("-") else column.asc(), requests.c.id.asc()]
        query = select(requests.c.id, requests.c.title, requests.c.state, requests.c.version,
                       requests.c.requester_email, requests.c.sponsor_email, requests.c.created_at,
                       requests.c.updated_at)
        count = select(func.count()).select_from(requests)
        if where is not None:
            query, count = query.where(where), count.where(where)
        with read_transaction(self.engine) as conn:
            total = conn.execute(count).scalar_one()
            rows = conn.execute(query.order_by(*order).limit(flt.limit).offset(flt.offset)).all()
        return [RequestSummary(r.id, r.title, r.state, r.version, r.requester_email, r.sponsor_email,
                               _utc(r.created_at), _utc(r.updated_at)) for r in rows], total


if TYPE_CHECKING:  # mypy checks the adapter against the port, parameter and return types included
    from connectors.ports import RequestStore

    _store: type[RequestStore] = SqlStore
