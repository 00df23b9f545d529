"""Signed checkpoints of the audit chains: what a tamperer who knows the algorithm cannot forge.

A checkpoint lists every request's chain head as ``[request_id, count, hash]`` sorted by id
(``heads``, canonical JSON); its ``body`` (canonical JSON) holds ``n`` (1, 2, …), ``at``, the number of
requests and events, the highest global seq, ``root`` = sha256 of the heads text, ``prev`` = sha256 of
the previous checkpoint's body (``GENESIS`` for the first) and ``key`` (the public key, hex). The
Ed25519 signature is over the body's UTF-8 bytes. Without the private key nobody can re-hash a
chain and make a checkpoint agree: every head a checkpoint lists must still be in its chain (same
hash at that count), and each checkpoint's heads are a prefix of the next one's. Pure computation.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.audit_chain import GENESIS, canonical_json

Head = tuple[int, int, str]  # request id, number of events, hash of the newest


@dataclass(frozen=True)
class SignedCheckpoint:
    n: int
    body: str
    heads: str
    signature: str  # hex

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "body": self.body, "heads": self.heads, "signature": self.signature}


def public_hex(key: Any) -> str:
    """The raw public key (32 bytes) of an Ed25519 private or public key, as hex."""
    from cryptography.hazmat.primitives import serialization

    public = key.public_key() if hasattr(key, "public_key") else key
    return str(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex())


def mac_key(key: Any) -> bytes:
    """The secret that authenticates chain heads (``audit_chain.head_mac``), derived from the Ed25519 seed."""
    from cryptography.hazmat.primitives import serialization

    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    return hashlib.sha256(b"ldflow audit head mac\0" + seed).digest()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make(key: Any, n: int, at: str, heads: Sequence[Head], max_seq: int,
         previous: SignedCheckpoint | None) -> SignedCheckpoint:
    """Checkpoint ``n`` of ``heads`` (sorted by request id), signed with the Ed25519 ``key``."""
    heads_text = canonical_json([list(h) for h in heads])
    body = canonical_json({"v": 1, "n": n, "at": at, "requests": len(heads), "events": sum(h[1] for h in heads),
                           "max_seq": max_seq, "root": digest(heads_text),
                           "prev": digest(previous.body) if previous else GENESIS, "key": public_hex(key)})
    return SignedCheckpoint(n, body, heads_text, key.sign(body.encode()).hex())


def body_of(checkpoint: SignedCheckpoint) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(checkpoint.body)
    return value


@functools.lru_cache(maxsize=4)  # verify reads the latest checkpoint's heads several times
def heads_of(checkpoint: SignedCheckpoint) -> tuple[Head, ...]:
    import orjson

    return tuple((int(i), int(c), str(h)) for i, c, h in orjson.loads(checkpoint.heads))


@dataclass(frozen=True)
class CheckpointFault:
    n: int
    reason: str
    request_id: int | None = None
    rseq: int | None = None


def signature_ok(cp: SignedCheckpoint, public_key_hex: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(bytes.fromhex(cp.signature),
                                                                               cp.body.encode())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def verify_signatures(checkpoints: Sequence[SignedCheckpoint], public_key_hex: str | None) -> CheckpointFault | None:
    """Each checkpoint signed by the key (``public_key_hex``; None: the key the first one names), numbered
    1, 2, … with its ``root`` and ``prev`` right, and each one's heads a prefix of the next one's."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    previous: SignedCheckpoint | None = None
    previous_heads: dict[int, tuple[int, str]] = {}
    for expected, cp in enumerate(checkpoints, start=1):
        try:
            body = body_of(cp)
            key_hex = public_key_hex or str(body["key"])
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(bytes.fromhex(cp.signature),
                                                                           cp.body.encode())
        except (InvalidSignature, ValueError, KeyError, TypeError):
            return CheckpointFault(cp.n, f"checkpoint {cp.n}: its signature does not verify with the audit key "
                                         "(the checkpoint was replaced or forged)")
        if body.get("n") != expected or cp.n != expected:
            return CheckpointFault(cp.n, f"checkpoint {expected} is missing (next found is {cp.n})")
        if body.get("root") != digest(cp.heads):
            return CheckpointFault(cp.n, f"checkpoint {cp.n}: its heads do not match its signed root")
        if body.get("prev") != (digest(previous.body) if previous else GENESIS):
            return CheckpointFault(cp.n, f"checkpoint {cp.n} does not follow checkpoint {cp.n - 1}")
        heads = {i: (c, h) for i, c, h in heads_of(cp)}
        for rid, (count, h) in previous_heads.items():
            now = heads.get(rid)
            if now is None or now[0] < count or (now[0] == count and now[1] != h):
                return CheckpointFault(cp.n, f"checkpoint {cp.n}: the heads of checkpoint {cp.n - 1} are not a "
                                             f"prefix of its own (request {rid})", rid, count)
        previous, previous_heads = cp, heads
    return None


def check_against_chains(cp: SignedCheckpoint, current: Mapping[int, tuple[int, str]],
                         marked: Mapping[int, str], tails_only: bool = False) -> CheckpointFault | None:
    """The chains now (``current``: request id → (count, newest hash); ``marked``: request id → hash of the
    event at the count ``cp`` lists, for chains that grew since) still contain every head of ``cp``.
    ``tails_only``: only whether a chain is shorter than ``cp`` signed (its tail was cut off)."""
    for rid, count, h in heads_of(cp):
        now = current.get(rid)
        if now is None:
            return CheckpointFault(cp.n, f"request {rid} (in checkpoint {cp.n} with {count} events) is gone", rid, 1)
        if now[0] < count:
            return CheckpointFault(cp.n, f"request {rid}: events from {now[0] + 1} on are missing (checkpoint "
                                         f"{cp.n} signed {count} events): the tail was cut off", rid, now[0] + 1)
        if tails_only:
            continue
        found = now[1] if now[0] == count else marked.get(rid)
        if found != h:
            return CheckpointFault(cp.n, f"request {rid}: event {count} is not the one checkpoint {cp.n} signed: "
                                         "its chain was rewritten up to there", rid, count)
    return None


def wanted_marks(cp: SignedCheckpoint | None, current: Mapping[int, tuple[int, str]]) -> dict[int, int]:
    """For the chains that grew since ``cp``: request id → the count whose event hash is needed."""
    if cp is None:
        return {}
    return {rid: count for rid, count, _ in heads_of(cp) if rid in current and current[rid][0] > count}
