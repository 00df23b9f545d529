"""The rules of the tamper-evident audit chain, shared by every request store.

Every event carries ``hash = sha256(prev_hash ‖ canonical JSON of the event)`` where the
canonical JSON is the array of the event's fields in a fixed order (``FIELDS``), compact, with
the payload — itself canonical JSON: sorted keys, no whitespace, UTF-8 — embedded as a JSON
value. The SQL store (:mod:`connectors.db.audit`) and the in-memory fake
(:mod:`connectors.testing`) chain and verify with these functions, so both give the same hashes.
Pure computation: no database here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

GENESIS = "0" * 64
FIELDS = ("seq", "request_id", "type", "trigger", "from_state", "to_state", "version", "actor", "at", "payload")

_HEADER = FIELDS[:-1]


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text. orjson (a Prefect dependency) does this ~10x faster
    than the json module; the json module covers what orjson refuses (e.g. non-string keys)."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """``sha256(prev_hash ‖ [seq, request_id, …, at, payload])``; ``row["payload"]`` is the stored
    canonical JSON text, embedded as is (verification recomputes from the stored columns)."""
    header = canonical_json([row[f] for f in _HEADER])
    body = f"{header[:-1]},{row['payload']}]"
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()
