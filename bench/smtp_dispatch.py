"""Mail dispatch to a loopback SMTP server (aiosmtpd): ldflow against a bare ``smtplib`` loop.

    .venv/bin/python bench/smtp_dispatch.py [--n 300] [--rounds 3]

Three phases, alternated round by round, the same rendered messages each time:

* **baseline** - a bare ``smtplib`` loop: one connection, ``send_message`` per message;
* **sender** - ``SmtpSender.send`` for each message (the connection kept between sends, every
  recipient's outcome classified); **per-connection** is the same with ``max_messages=1``, a new
  connection per message as the sender did before;
* **relay** - the whole dispatch step as the pipeline runs it: outbox rows on SQLite claimed with a
  lease, rendered, marked ``transmitting`` (a commit before each message), sent, marked ``sent``
  with "email sent" in the same transaction.

Goal: sender ≥ 0.7 × baseline mails/s. The relay's figure says what the database's commits add.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import smtplib
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where bench/transitions.py would
# shadow the `transitions` library: drop it, and put the repository root first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench._common import emit_json, environment, scratch_dir  # noqa: E402

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MAIL_FROM = "ld-team@example.org"


class Sink:
    """An aiosmtpd handler that counts what it accepts."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received += 1
        await asyncio.sleep(0)
        return "250 OK queued"


def notifications(n: int, round_: int) -> list[Any]:
    from states.notifications import Notification, Recipient

    return [Notification(key=f"{round_}-{i}:request_cancelled", request_id=i + 1, template="request_cancelled",
                         to=(Recipient(name="Dana", email=f"dana{i}@example.org"),),
                         subject="Your request was cancelled",
                         context={"request": {"id": i + 1, "title": "Sales coaching"},
                                  "reason": "the team was reorganised"}) for i in range(n)]


def baseline(port: int, messages: list[EmailMessage]) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for message in messages:
            client.send_message(message, from_addr=MAIL_FROM)
    return time.perf_counter() - started


def sender_phase(port: int, messages: list[EmailMessage], max_messages: int = 100) -> float:
    from connectors.email.config import SmtpConfig
    from connectors.email.smtp import SmtpSender

    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=port, security="none", mail_from=MAIL_FROM),
                        max_messages=max_messages)
    started = time.perf_counter()
    for message in messages:
        sender.send(message)
    sender.close()
    return time.perf_counter() - started


def relay_phase(port: int, db: Path, batch: list[Any]) -> float:
    from sqlalchemy import insert

    from connectors.db import tables
    from connectors.db.engine import make_engine, write_transaction
    from connectors.email.config import SmtpConfig
    from connectors.email.render import render
    from connectors.email.smtp import SmtpSender
    from flows.relay import relay_outbox

    engine = make_engine(f"sqlite:///{db}")
    tables.metadata.create_all(engine)
    with write_transaction(engine) as conn:
        for n in batch:
            conn.execute(insert(tables.outbox).values(
                key=n.key, request_id=n.request_id, template=n.template, status="pending", attempts=0,
                notification=json.dumps(dataclasses.asdict(n), default=str), created_at=T0))
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=port, security="none", mail_from=MAIL_FROM))
    render_fn = partial(render, mail_from=MAIL_FROM, domain="ldflow.example.org", now=T0)
    started = time.perf_counter()
    sent = 0
    while True:
        summary = relay_outbox(engine, sender, render_fn, T0, "bench", batch=100)
        sent += summary.sent
        if summary.claimed < 100:
            break
    sender.close()
    elapsed = time.perf_counter() - started
    engine.dispose()
    assert sent == len(batch), summary.errors[:3]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="messages per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import socket

    from aiosmtpd.controller import Controller

    from connectors.email.render import render

    with socket.socket() as probe:  # a free port for the sink
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    times: dict[str, float] = {"baseline": 0.0, "sender": 0.0, "per-connection": 0.0, "relay": 0.0}
    try:
        with scratch_dir("smtp-") as scratch:
            for round_ in range(args.rounds):
                batch = notifications(args.n, round_)
                messages = [render(n, mail_from=MAIL_FROM, domain="ldflow.example.org", now=T0) for n in batch]
                times["baseline"] += baseline(port, messages)
                times["sender"] += sender_phase(port, messages)
                times["per-connection"] += sender_phase(port, messages, max_messages=1)
                times["relay"] += relay_phase(port, scratch / f"relay-{round_}.db", batch)
    finally:
        controller.stop()
    total = args.n * args.rounds
    assert sink.received == len(times) * total, f"the sink got {sink.received} of {len(times) * total}"
    rates = {k: total / v for k, v in times.items()}
    print(f"{total} messages per phase over {args.rounds} rounds, loopback aiosmtpd")
    for name, rate in rates.items():
        print(f"  {name:<15} {rate:8.1f} mails/s   {rate / rates['baseline']:.2f}x baseline")
    emit_json("smtp_dispatch", {"n": total, "mails_per_s": {k: round(v, 1) for k, v in rates.items()},
                                "sender_ratio": round(rates["sender"] / rates["baseline"], 3),
                                "relay_ratio": round(rates["relay"] / rates["baseline"], 3),
                                "per_connection_ratio": round(rates["per-connection"] / rates["baseline"], 3),
                                "env": environment()})


if __name__ == "__main__":
    main()
