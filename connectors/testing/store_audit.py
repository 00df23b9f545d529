"""The fake store's audit checks (a mixin of ``InMemoryStore``): every chain walked and the signed
checkpoints checked as ``connectors.db.audit.verify`` does, and checkpoints signed as
``SqlStore.checkpoint`` signs them."""

from __future__ import annotations

import builtins
import dataclasses
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connectors import audit_chain as audit
from connectors.audit_checkpoints import SignedCheckpoint
from connectors.ports import AuditRecord, VerifyReport

if TYPE_CHECKING:
    from connectors.testing.store import _Row


def _hashed(record: AuditRecord) -> dict[str, Any]:
    """The record as the audit row whose content is hashed (payload as canonical JSON)."""
    return {**dataclasses.asdict(record), "payload": audit.canonical_json(record.payload)}


def _tuple(record: AuditRecord) -> tuple[Any, ...]:
    """The record as ``audit_chain.verify_chain`` reads a stored row."""
    row = _hashed(record)
    return (*(row[f] for f in audit.FIELDS), record.prev_hash, record.hash, record.seq)



class InMemoryAuditChecks:
    signing_key: Any
    _lock: threading.RLock
    _rows: dict[int, _Row]
    _events: builtins.list[AuditRecord]
    _checkpoints: builtins.list[SignedCheckpoint]

    def _mac(self, request_id: int, head: tuple[int, str]) -> str:
        raise NotImplementedError

    def verify(self) -> VerifyReport:
        """Walk every chain and check the checkpoints as ``connectors.db.audit.verify`` does."""
        from connectors import audit_checkpoints as cps

        with self._lock:
            by_request: dict[int, builtins.list[AuditRecord]] = {}
            for e in self._events:
                by_request.setdefault(e.request_id, []).append(e)
            latest = self._checkpoints[-1] if self._checkpoints else None
            marks = {rid: count for rid, count, _ in cps.heads_of(latest)} if latest else {}
            latest_heads = {rid: (count, h) for rid, count, h in cps.heads_of(latest)} if latest else {}
            checked, current, marked = 0, {}, {}
            for rid in sorted(set(by_request) | set(self._rows)):
                row = self._rows.get(rid)
                records = sorted(by_request.get(rid, []), key=lambda r: r.rseq)
                n, fault, mark = audit.verify_chain(
                    rid, [_tuple(r) for r in records], (row.head_seq, row.head_hash) if row else None,
                    audit.doc_hash(row.state, row.version, row.document) if row else None, marks.get(rid, 0))
                checked += n
                if fault is None and row is not None and self.signing_key is not None:
                    head = (row.head_seq, row.head_hash)
                    if row.head_mac != self._mac(rid, head) and (latest_heads.get(rid) != head):
                        fault = audit.ChainFault(rid, 1, "its chain head is not sealed with the audit key")
                if fault is not None:
                    return VerifyReport(False, checked, len(self._rows), fault.seq, rid,
                                        f"request {rid}: {fault.reason}", broken_rseq=fault.rseq,
                                        checkpoints_checked=len(self._checkpoints))
                if row is not None:
                    current[rid] = (row.head_seq, row.head_hash)
                if mark is not None:
                    marked[rid] = mark
            public = cps.public_hex(self.signing_key) if self.signing_key is not None else None
            cfault = cps.verify_signatures(self._checkpoints, public)
            if cfault is None and latest is not None:
                cfault = cps.check_against_chains(latest, current, marked)
            if cfault is not None:
                return VerifyReport(False, checked, len(self._rows), None, cfault.request_id, cfault.reason,
                                    broken_rseq=cfault.rseq, checkpoint=cfault.n,
                                    checkpoints_checked=len(self._checkpoints))
            return VerifyReport(True, checked, len(self._rows), checkpoints_checked=len(self._checkpoints))

    def checkpoint(self, at: datetime) -> SignedCheckpoint | None:
        """Sign every chain head, as ``SqlStore.checkpoint`` (None: nothing changed since the latest)."""
        from connectors import audit_checkpoints as cps

        if self.signing_key is None:
            raise RuntimeError("this store has no audit signing key")
        with self._lock:
            latest = self._checkpoints[-1] if self._checkpoints else None
            events = sum(r.head_seq for r in self._rows.values())
            if latest is not None and (cps.body_of(latest)["requests"], cps.body_of(latest)["events"]) == (
                    len(self._rows), events):
                return None
            heads = [(rid, r.head_seq, r.head_hash) for rid, r in sorted(self._rows.items())]
            cp = cps.make(self.signing_key, len(self._checkpoints) + 1, at.isoformat(), heads,
                          self._events[-1].seq if self._events else 0, latest)
            self._checkpoints.append(cp)
            return cp

    def checkpoints(self) -> builtins.list[SignedCheckpoint]:
        with self._lock:
            return list(self._checkpoints)

    def public_key(self) -> str | None:
        from connectors import audit_checkpoints as cps

        return cps.public_hex(self.signing_key) if self.signing_key is not None else None
