"""The audit bundle: every event, every checkpoint and the public key in one JSON Lines file, verifiable
offline (``ldflow audit verify --bundle``, or a short script: the format is in the README).

Line 1: ``{"format": "ldflow-audit-bundle", "version": 1, "public_key": <hex>, "events": N, "checkpoints": M}``.
Then one line per checkpoint, oldest first: ``{"checkpoint": {"n", "body", "heads", "signature"}}``;
then one line per event: ``{"event": [request_id, rseq, type, trigger, from_state, to_state, version, actor,
at, doc, payload, prev_hash, hash, seq]}`` (``payload`` the stored canonical JSON text). The bundle holds
the events its newest checkpoint signs, so every chain must end exactly at that checkpoint's head.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from connectors import audit_checkpoints as cps
from connectors.audit_chain import canonical_json, verify_chain
from connectors.ports import AuditRecord, VerifyReport

FORMAT = "ldflow-audit-bundle"


class BundleError(ValueError):
    """Not a readable bundle (the message names the line)."""


def write(stream: IO[str], public_key: str, checkpoints: Sequence[cps.SignedCheckpoint],
          events: Iterable[AuditRecord], n_events: int) -> int:
    """Write the bundle of ``checkpoints`` and the ``events`` its newest signs; returns the events written."""
    latest = {rid: count for rid, count, _ in cps.heads_of(checkpoints[-1])} if checkpoints else {}
    stream.write(json.dumps({"format": FORMAT, "version": 1, "public_key": public_key, "events": n_events,
                             "checkpoints": len(checkpoints)}) + "\n")
    for cp in checkpoints:
        stream.write(json.dumps({"checkpoint": cp.as_dict()}) + "\n")
    written = 0
    for e in events:
        if e.rseq <= latest.get(e.request_id, 0):
            row = [e.request_id, e.rseq, e.type, e.trigger, e.from_state, e.to_state, e.version, e.actor, e.at,
                   e.doc, canonical_json(e.payload), e.prev_hash, e.hash, e.seq]
            stream.write(json.dumps({"event": row}, ensure_ascii=False) + "\n")
            written += 1
    return written


def _read(path: Path) -> tuple[dict[str, Any], list[cps.SignedCheckpoint], dict[int, list[Sequence[Any]]]]:
    checkpoints: list[cps.SignedCheckpoint] = []
    chains: dict[int, list[Sequence[Any]]] = {}
    try:
        with path.open(encoding="utf-8") as stream:
            header = json.loads(stream.readline() or "null")
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise BundleError(f"{path}: line 1 is not an {FORMAT} header")
            for number, line in enumerate(stream, start=2):
                item = json.loads(line)
                if "event" in item:
                    row = item["event"]
                    chains.setdefault(int(row[0]), []).append(row)
                elif "checkpoint" in item:
                    c = item["checkpoint"]
                    checkpoints.append(cps.SignedCheckpoint(int(c["n"]), str(c["body"]), str(c["heads"]),
                                                            str(c["signature"])))
                else:
                    raise BundleError(f"{path}: line {number} is neither an event nor a checkpoint")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, IndexError, ValueError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"{path}: not a readable audit bundle ({exc})") from None
    return header, checkpoints, chains


def verify(path: Path, trusted_key: str | None = None) -> tuple[VerifyReport, str]:
    """Verify a bundle without the database: (the report, the public key it was checked with)."""
    header, checkpoints, chains = _read(path)
    key = trusted_key or str(header.get("public_key") or "")
    n_events = sum(len(rows) for rows in chains.values())
    if not checkpoints:
        return VerifyReport(False, 0, len(chains), reason="the bundle holds no checkpoint"), key
    fault = cps.verify_signatures(checkpoints, key)
    if fault is not None:
        return VerifyReport(False, 0, len(chains), None, fault.request_id, fault.reason, broken_rseq=fault.rseq,
                            checkpoint=fault.n, checkpoints_checked=len(checkpoints)), key
    heads = {rid: (count, h) for rid, count, h in cps.heads_of(checkpoints[-1])}
    checked = 0
    for rid in sorted(set(chains) | set(heads)):
        rows = sorted(chains.get(rid, []), key=lambda r: r[1])
        n, chain_fault, _ = verify_chain(rid, rows, heads.get(rid), None)
        checked += n
        if chain_fault is not None:
            reason = chain_fault.reason.replace("the requests table", f"checkpoint {checkpoints[-1].n}")
            return VerifyReport(False, checked, len(heads), chain_fault.seq, rid, f"request {rid}: {reason}",
                                broken_rseq=chain_fault.rseq, checkpoints_checked=len(checkpoints)), key
    if n_events != checked:
        return VerifyReport(False, checked, len(heads), reason=f"the bundle has {n_events} events, walked "
                                                               f"{checked}"), key
    return VerifyReport(True, checked, len(heads), checkpoints_checked=len(checkpoints)), key
