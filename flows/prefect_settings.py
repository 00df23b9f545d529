"""Prefect's settings for ldflow's entry points, in one place.

Prefect reads its settings from the environment once, when it is first imported, so the entry
points that run flows (``ldflow run``, ``ldflow serve``, ``ldflow demo``, the benchmarks) call
:func:`apply` before anything imports Prefect. Nothing here runs at import time. Explicit settings
in the environment win over these defaults, except where the demo isolates itself.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("ldflow.prefect")

#: No telemetry calls from the embedded server (they also log "database is locked" tracebacks on a
#: busy machine), and a patient start for the temporary server on a slow first run.
DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def apply(*, logging_level: str = "WARNING") -> None:
    """Quiet, self-contained defaults for a process that runs flows (explicit settings win)."""
    if "prefect" in sys.modules:
        log.debug("Prefect was imported before its settings were applied; they may not take effect")
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", logging_level)


def apply_isolated(home: Path, *, logging_level: str = "ERROR") -> None:
    """The demo's Prefect: its own home under ``home`` (never ``~/.prefect``), no configured API
    or profile (a temporary local server), no telemetry."""
    for name in ("PREFECT_API_URL", "PREFECT_PROFILE"):
        os.environ.pop(name, None)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    apply(logging_level=logging_level)


def startup_timeout() -> float:
    """Seconds to wait for a Prefect server to answer (the same setting as the temporary server's)."""
    return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                                DEFAULTS["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))


def use_api(url: str) -> None:
    """Point this process's Prefect at the server at ``url`` (before Prefect is imported: it reads the
    URL once)."""
    os.environ["PREFECT_API_URL"] = url
