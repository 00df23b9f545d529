"""The composition root's process app: installed, else built once per settings (on SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.testing import InMemoryUnitOfWork
from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.settings import Settings
from tests.builders import T0


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """An app on the fakes, to install as the process's."""
    uow = InMemoryUnitOfWork()
    yield bootstrap.compose(Settings(home=tmp_path), store=uow.store, uow=uow, clock=FixedClock(T0))


def test_the_process_app_is_the_installed_one_else_built_once_per_settings(app: App, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDFLOW_HOME", str(tmp_path / "env-home"))
    monkeypatch.delenv("LDFLOW_DATABASE_URL", raising=False)
    bootstrap.reset()
    try:
        bootstrap.install(app)
        assert bootstrap.current() is app
        bootstrap.install(None)
        built = bootstrap.current()
        assert built is not app and built is bootstrap.current()
        assert built.settings.home == tmp_path / "env-home" and built.engine is not None
        other = bootstrap.current(Settings(home=tmp_path / "other"))
        assert other is not built and other.settings.home == tmp_path / "other"
    finally:
        bootstrap.reset()
    assert bootstrap.current() is not built
    bootstrap.reset()
