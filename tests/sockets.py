"""Loopback sockets that misbehave on purpose, for the tests of a Prefect API that is down or hung."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class HungApi:
    url: str
    held: list[socket.socket]  # the connections it accepted (and never answered)


@contextmanager
def hung_api() -> Iterator[HungApi]:
    """A loopback socket that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield HungApi(f"http://127.0.0.1:{server.getsockname()[1]}/api", held)
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def refusing_url() -> str:
    """An API address where nothing listens (connections refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"
