"""What a worker must have before it takes runs (``flows.fleet.worker_problems``): every missing
setting is named, in one refusal."""

from __future__ import annotations

from pathlib import Path

from flows.fleet import worker_problems

REPO = Path(__file__).resolve().parents[2]


def test_a_bare_machine_is_told_every_missing_setting() -> None:
    problems = worker_problems({})
    assert [p.split(" ", 1)[0] for p in problems] == ["LDFLOW_REPO_DIR", "LDFLOW_DATABASE_URL", "PREFECT_API_URL"]


def test_a_folder_that_is_not_a_checkout_and_a_sqlite_database_are_refused(tmp_path: Path) -> None:
    problems = worker_problems({"LDFLOW_REPO_DIR": str(tmp_path), "LDFLOW_DATABASE_URL": "sqlite:///x.db",
                                "PREFECT_API_URL": "http://prefect:4200/api"})
    assert problems == [f"LDFLOW_REPO_DIR={tmp_path} is not a checkout of ldflow (no flows/pipeline.py there)",
                        "LDFLOW_DATABASE_URL is a SQLite file: workers share one PostgreSQL database "
                        "(postgresql://…)"]


def test_the_settings_checked_before_the_database_is_asked() -> None:
    problems = worker_problems({"LDFLOW_REPO_DIR": str(REPO), "LDFLOW_DATABASE_URL": "postgresql://db/ldflow"})
    assert problems == ["PREFECT_API_URL is not set: the worker would have no Prefect server to take runs from"]


def test_a_worker_looks_for_runs_every_two_seconds_unless_told_otherwise() -> None:
    from flows.cli.fleet import poll_setting

    assert poll_setting(None, {}) == "2"  # Prefect's own default, 10 s, left a second worker idle
    assert poll_setting(None, {"PREFECT_WORKER_QUERY_SECONDS": "15"}) == "15"  # the operator's setting stands
    assert poll_setting(0.5, {"PREFECT_WORKER_QUERY_SECONDS": "15"}) == "0.5"  # and --poll-seconds over it
