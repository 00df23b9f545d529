"""The audit chain rules on the in-memory store (the same code as SqlStore's): per-request chains, sealed
heads, signed checkpoints and the offline bundle, which a short script can check too."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from connectors import audit_bundle
from connectors import audit_checkpoints as cps
from connectors.audit_chain import GENESIS, ChainWalker, event_hash, verify_chain
from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from tests.builders import ACTOR, T0, diagnosis_data, intake_data

KEY = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)


def history(store: InMemoryStore) -> Service:
    service = Service(store, FixedClock(T0))
    a = service.submit(intake_data(title="Request A"), ACTOR).id
    b = service.submit(intake_data(title="Request B"), ACTOR).id
    service.diagnose(a, diagnosis_data(), ACTOR)
    service.add_note(b, "note", ACTOR)
    service.add_note(a, "another", ACTOR)
    return service


def test_each_request_has_its_own_chain_and_the_fake_verifies_and_checkpoints_like_sql() -> None:
    store = InMemoryStore(signing_key=KEY)
    service = history(store)
    for rid in (1, 2):
        events = store.history(rid)
        assert [e.rseq for e in events] == list(range(1, len(events) + 1))
        assert events[0].prev_hash == GENESIS
        assert all(events[i].prev_hash == events[i - 1].hash for i in range(1, len(events)))
    assert service.verify().ok
    first = service.checkpoint()
    assert first is not None and service.checkpoint() is None  # nothing changed: nothing signed
    body = cps.body_of(first)
    assert (body["n"], body["requests"], body["events"], body["key"]) == (1, 2, 5, cps.public_hex(KEY))
    service.add_note(2, "later", ACTOR)
    second = service.checkpoint()
    assert second is not None and cps.body_of(second)["prev"] == cps.digest(first.body)
    report = service.verify()
    assert report.ok and report.checkpoints_checked == 2


def test_the_walker_catches_a_rehashed_edit_only_through_the_head() -> None:
    store = InMemoryStore()
    history(store)
    rows = [(*(dataclasses.asdict(e)[f] if f != "payload" else json.dumps(e.payload, sort_keys=True,
                                                                          separators=(",", ":"))
               for f in ("request_id", "rseq", "type", "trigger", "from_state", "to_state", "version", "actor",
                         "at", "doc", "payload")), e.prev_hash, e.hash, e.seq) for e in store.history(1)]
    head = (len(rows), rows[-1][12])
    assert verify_chain(1, rows, head, None)[1] is None
    edited = [list(r) for r in rows]
    edited[1][7] = "mallory@example.org"
    prev = GENESIS
    for r in edited:  # the knowing tamperer re-hashes from there
        r[11] = prev
        r[12] = prev = event_hash(prev, dict(zip(("request_id", "rseq", "type", "trigger", "from_state",
                                                   "to_state", "version", "actor", "at", "doc", "payload"),
                                                  r[:11], strict=True)))
    assert verify_chain(1, edited, (len(edited), prev), None)[1] is None  # consistent in itself …
    fault = verify_chain(1, edited, head, None)[1]  # … but not with the head a checkpoint signed
    assert fault is not None and fault.rseq == 3 and "head was replaced" in fault.reason
    walker = ChainWalker()
    walker.feed([edited[0], rows[1]])  # out of links: the second row does not follow the first
    assert walker.finish(1, None, None)[0] is not None


def test_a_bundle_verifies_offline_and_with_a_short_script(tmp_path: Path) -> None:
    store = InMemoryStore(signing_key=KEY)
    service = history(store)
    stream = io.StringIO()
    written, n_checkpoints = service.export_audit(stream)
    assert (written, n_checkpoints) == (5, 1)
    path = tmp_path / "bundle.jsonl"
    path.write_text(stream.getvalue())
    report, key = audit_bundle.verify(path, cps.public_hex(KEY))
    assert report.ok and report.events_checked == 5 and key == cps.public_hex(KEY)

    # The short script the README describes, written from the README alone.
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    header, items = lines[0], lines[1:]
    checkpoints = [i["checkpoint"] for i in items if "checkpoint" in i]
    latest = checkpoints[-1]
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(header["public_key"])).verify(
        bytes.fromhex(latest["signature"]), latest["body"].encode())
    assert json.loads(latest["body"])["root"] == hashlib.sha256(latest["heads"].encode()).hexdigest()
    chains: dict[int, str] = {}
    for e in (i["event"] for i in items if "event" in i):
        prev = chains.get(e[0], "0" * 64)
        assert e[11] == prev
        text = json.dumps(e[:10], separators=(",", ":"), ensure_ascii=False)[:-1] + "," + e[10] + "]"
        assert hashlib.sha256((prev + text).encode()).hexdigest() == e[12]
        chains[e[0]] = e[12]
    assert {rid: h for rid, _, h in json.loads(latest["heads"])} == chains

    # A bundle re-signed with another key does not verify with ours.
    forged = [dict(i) for i in lines]
    other = cps.make(Ed25519PrivateKey.generate(), 1, "2026-01-01T00:00:00+00:00",
                     cps.heads_of(cps.SignedCheckpoint(**latest)), 5, None)
    forged[1] = {"checkpoint": other.as_dict()}
    path.write_text("\n".join(json.dumps(i) for i in forged) + "\n")
    broken, _ = audit_bundle.verify(path, cps.public_hex(KEY))
    assert not broken.ok and broken.checkpoint == 1 and "signature" in broken.reason
