"""Clocks. Production uses the system clock in UTC; the demo and tests use a
simulated clock that only moves when told to (``LDFLOW_SIMULATED_CLOCK``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock for tests: stands still until ``advance`` or ``set``."""

    def __init__(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> datetime:
        self._at += delta
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)


class FileClock:
    """A simulated clock kept in a small JSON file, so separate processes (CLI
    calls, flow runs) share one simulated "now". Used only when the
    ``simulated_clock`` setting names the file — never by default."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        if not self.path.exists():
            return datetime.now(UTC)
        return datetime.fromisoformat(json.loads(self.path.read_text())["now"]).astimezone(UTC)

    def set(self, at: datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"now": at.astimezone(UTC).isoformat()}))
        tmp.replace(self.path)

    def advance(self, delta: timedelta) -> datetime:
        at = self.now() + delta
        self.set(at)
        return at
