"""Flow tests run the real Prefect flows against one session-scoped ``prefect_test_harness``.

The harness starts a temporary Prefect server once (~15 s); ``PREFECT_HOME`` points
into a temporary directory (set here, before Prefect is imported) so the tests
neither read nor write ``~/.prefect``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows import prefect_settings

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="ldflow-prefect-home-"))
prefect_settings.apply_isolated(_PREFECT_HOME, logging_level="WARNING")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.settings import PREFECT_HOME, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings({PREFECT_HOME: str(_PREFECT_HOME)}), prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def ldflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[Path]:
    """A fresh data directory with a simulated clock; the flows read it from the environment."""
    from flows import bootstrap

    home = tmp_path / "home"
    monkeypatch.setenv("LDFLOW_HOME", str(home))
    monkeypatch.setenv("LDFLOW_DATABASE_URL", f"sqlite:///{home / 'ldflow.db'}")
    monkeypatch.setenv("LDFLOW_SIMULATED_CLOCK", str(home / "clock.json"))
    for name in ("LDFLOW_SMTP_HOST", "LDFLOW_IMAP_HOST"):
        monkeypatch.delenv(name, raising=False)
    home.mkdir()
    yield home
    bootstrap.reset()


@pytest.fixture
def rt(ldflow_home: Path) -> Any:
    from flows import bootstrap
    from flows.clock import FileClock
    from tests.builders import T0

    FileClock(ldflow_home / "clock.json").set(T0)
    return bootstrap.current()  # the app the flows' tasks use
