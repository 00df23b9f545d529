"""The rules of the tamper-evident audit chains, shared by every request store and the offline bundle.

Each request has a chain of its own: its events are numbered ``rseq`` = 1, 2, … and each carries
``hash = sha256(prev_hash ‖ canonical JSON of the event)``, ``prev_hash`` being the hash of the
same request's previous event (``GENESIS`` for the first). The canonical JSON is the array of the
event's fields in a fixed order (``FIELDS``), compact, with the payload — itself canonical JSON:
sorted keys, no whitespace, UTF-8 — embedded as a JSON value. ``doc`` is ``doc_hash`` of the request
row (state, document) the event left behind, so a row changed without an event no longer
matches its newest event. The global ``seq`` only orders events for display; it is not hashed, so
writers on different requests never wait for one another.

The SQL store (:mod:`connectors.db.audit`), the in-memory fake (:mod:`connectors.testing`) and
``ldflow audit verify --bundle`` chain and verify with these functions. Pure computation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64
# Hashed, in this order. ``payload`` (last) is the stored canonical JSON text, embedded as is.
FIELDS = ("request_id", "rseq", "type", "trigger", "from_state", "to_state", "version", "actor", "at", "doc",
          "payload")
# What a chained row holds besides the hashed fields.
LINK = ("prev_hash", "hash")
_HEADER = FIELDS[:-1]
_sha256 = hashlib.sha256
_dumps = orjson.dumps


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text. orjson (a Prefect dependency) does this ~10x faster
    than the json module; the json module covers what orjson refuses (e.g. non-string keys)."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def doc_hash(state: str, version: int, document: str) -> str:
    """The hash of a request row as an event leaves it: ``sha256(state NUL document)``. The version is left
    out: it counts saves (a save without events bumps it and leaves the document as it was)."""
    return _sha256(f"{state}\0{document}".encode()).hexdigest()


def head_mac(key: bytes, request_id: int, count: int, head_hash: str) -> str:
    """HMAC-SHA256 of a request's chain head under the store's secret (``audit_checkpoints.mac_key``): a
    tamperer without the key cannot append to or cut a chain and make its head agree."""
    return hmac.new(key, f"{request_id}:{count}:{head_hash}".encode(), "sha256").hexdigest()


def event_hash(prev_hash: str, row: Any) -> str:
    """``sha256(prev_hash ‖ [request_id, rseq, …, doc, payload])`` over a mapping of the stored columns."""
    header = _dumps([row[f] for f in _HEADER])
    return _sha256(prev_hash.encode() + header[:-1] + b"," + row["payload"].encode() + b"]").hexdigest()


def chain(head: tuple[int, str], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (hashed fields but ``rseq``) as the next links after ``head`` = (rseq, hash)."""
    rseq, prev = head
    out = []
    for row in rows:
        rseq += 1
        full = {**row, "rseq": rseq, "prev_hash": prev}
        full["hash"] = prev = event_hash(prev, full)
        out.append(full)
    return out


@dataclass(frozen=True)
class ChainFault:
    """The first broken link of one request's chain: ``rseq`` names the event (or the first missing one)."""

    request_id: int
    rseq: int
    reason: str
    seq: int | None = None  # the event's global seq, when it exists


class ChainWalker:
    """Walks many chains at once from rows in any order that keeps each request's events in rseq order (the
    global seq order does): one pass over the table in storage order, whatever the interleaving.

    Rows are tuples in ``FIELDS + LINK`` order followed by the global seq (or None). ``finish`` then
    checks each request against its row's head and document hash."""

    def __init__(self, marks: dict[int, int] | None = None) -> None:
        self.marks = marks or {}
        self.state: dict[int, list[Any]] = {}  # request id → [next rseq (0: broken), prev hash, doc, marked]
        self.faults: dict[int, ChainFault] = {}
        self.checked = 0

    def feed(self, rows: Iterable[Sequence[Any]]) -> None:
        state, faults, marks, sha, dumps = self.state, self.faults, self.marks, _sha256, _dumps
        checked = 0
        for r in rows:
            checked += 1
            rid = r[0]
            st = state.get(rid)
            if st is None:
                st = state[rid] = [1, GENESIS, None, None]
            expected = st[0]
            if not expected:
                continue  # this chain is already broken: its first fault stands
            rseq, prev = r[1], st[1]
            if rseq != expected:
                faults[rid] = ChainFault(rid, expected, f"event {expected} is missing (next found is event {rseq}): "
                                         "events were deleted or renumbered", r[13])
            elif r[11] != prev:
                faults[rid] = ChainFault(rid, rseq, f"event {rseq} does not link to event {rseq - 1}: an event "
                                         "before it was altered, inserted or reordered", r[13])
            elif sha(prev.encode() + dumps(r[:10])[:-1] + b"," + r[10].encode() + b"]").hexdigest() != r[12]:
                faults[rid] = ChainFault(rid, rseq, f"event {rseq} was altered: its content no longer matches its "
                                         "hash", r[13])
            else:
                st[0], st[1], st[2] = expected + 1, r[12], r[9]
                if marks and rseq == marks.get(rid):
                    st[3] = r[12]
                continue
            st[0] = 0
        self.checked += checked

    def finish(self, request_id: int, head: tuple[int, str] | None, doc: str | None) -> tuple[ChainFault | None,
                                                                                               str | None]:
        """(the first fault of this request's chain, the hash of its event at ``marks[request_id]``)."""
        st = self.state.get(request_id) or [1, GENESIS, None, None]
        if request_id in self.faults:
            return self.faults[request_id], None
        count, prev, last_doc, marked = st[0] - 1, st[1], st[2], st[3]
        fault: ChainFault | None = None
        if head is None:
            fault = ChainFault(request_id, 1, "events exist for a request that is not in the requests table")
        elif head[0] > count:
            fault = ChainFault(request_id, count + 1, f"its newest event {head[0]} is missing: the chain ends at "
                               f"event {count} (events from {count + 1} on were cut off)")
        elif head[0] < count:
            fault = ChainFault(request_id, head[0] + 1, f"event {head[0] + 1} was added after its newest recorded "
                               f"event {head[0]}")
        elif head[1] != prev:
            fault = ChainFault(request_id, count, f"event {count} is not the newest event the request records "
                               "(its chain head was replaced)")
        elif count and doc is not None and last_doc != doc:
            fault = ChainFault(request_id, count, "the request's state or document was changed without an event "
                               f"(it no longer matches what event {count} recorded)")
        return fault, marked


def verify_chain(request_id: int, rows: Iterable[Sequence[Any]], head: tuple[int, str] | None,
                 doc: str | None, mark: int = 0) -> tuple[int, ChainFault | None, str | None]:
    """Walk one request's chain; return (events checked, the first fault or None, the hash of event ``mark``).

    ``rows`` as ``ChainWalker.feed`` takes them, sorted by rseq; ``head`` = (count, newest hash) as the
    request row records it (None: no row); ``doc`` = ``doc_hash`` of the row as it is now."""
    walker = ChainWalker({request_id: mark} if mark else None)
    walker.feed(rows)
    fault, marked = walker.finish(request_id, head, doc)
    return walker.checked, fault, marked
