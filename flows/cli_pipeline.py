"""Pipeline commands of the CLI (run, serve, report). Registered by flows.cli."""

from __future__ import annotations

from typing import Any


def register(app: Any) -> None:
    """Add the pipeline commands to the Typer ``app`` (filled in by the pipeline work)."""
