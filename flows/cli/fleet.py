"""``ldflow worker`` and ``ldflow prefect-setup``: ldflow on a Prefect server with workers.

``worker`` checks this machine's settings (:func:`flows.fleet.worker_problems`) and refuses to
start, listing every missing one (exit 3), before it becomes ``prefect worker start`` (the process
is replaced, so signals and exit codes are Prefect's own). ``prefect-setup`` installs ldflow's
Prefect automations (zombie detection) after ``prefect deploy --all``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import Annotated

import typer

from flows.cli.common import EXIT_ERROR, EXIT_REFUSED

app = typer.Typer()
PANEL = "Pipeline"
POLL_SECONDS = 2.0  # ldflow worker's look for runs (Prefect's default: 10 s)


@app.command(rich_help_panel=PANEL, short_help="Start a Prefect worker for ldflow's deployments.")
def worker(
    pool: Annotated[str, typer.Option(help="The work pool (prefect.yaml's is 'ldflow').")] = "ldflow",
    limit: Annotated[int, typer.Option(min=1, help="Flow runs this worker runs at once.")] = 4,
    name: Annotated[str | None, typer.Option(help="The worker's name (default: Prefect's).")] = None,
    poll_seconds: Annotated[float | None, typer.Option(
        min=0.5, help="How often the worker looks for runs to start (PREFECT_WORKER_QUERY_SECONDS when set, "
                      f"else {POLL_SECONDS:g}; Prefect's own default is 10).")] = None,
) -> None:
    """Check this machine's settings (LDFLOW_REPO_DIR, LDFLOW_DATABASE_URL on PostgreSQL, the
    database answering with ldflow's schema, PREFECT_API_URL), then run `prefect worker start
    --pool POOL --limit LIMIT`, looking for runs every POLL_SECONDS. A missing setting is refused,
    each one listed, before any run is taken (exit 3)."""
    from flows.fleet import worker_problems

    problems = worker_problems()
    if problems:
        sys.stderr.write("refused: this machine cannot run ldflow's flows; missing:\n"
                         + "".join(f"  - {p}\n" for p in problems) + "no worker was started.\n")
        raise typer.Exit(EXIT_REFUSED)
    prefect = shutil.which("prefect", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if prefect is None:
        sys.stderr.write("error: the prefect command is not installed next to ldflow\n")
        raise typer.Exit(EXIT_ERROR)
    args = [prefect, "worker", "start", "--pool", pool, "--limit", str(limit)]
    if name:
        args += ["--name", name]
    os.environ["PREFECT_WORKER_QUERY_SECONDS"] = poll_setting(poll_seconds, os.environ)
    sys.stdout.flush()
    os.execv(prefect, args)


def poll_setting(poll_seconds: float | None, environ: Mapping[str, str]) -> str:
    """The worker's PREFECT_WORKER_QUERY_SECONDS: ``--poll-seconds``, else the operator's setting, else
    :data:`POLL_SECONDS`. A run waits for the worker's next look before its process starts: Prefect's
    10 s was most of a triggered dispatch's delay, and left a second worker idle while the first
    drained the outbox (bench/scaleout.py)."""
    if poll_seconds is not None:
        return f"{poll_seconds:g}"
    return environ.get("PREFECT_WORKER_QUERY_SECONDS") or f"{POLL_SECONDS:g}"


@app.command("prefect-setup", rich_help_panel=PANEL, short_help="Install ldflow's Prefect automations.")
def prefect_setup() -> None:
    """Create or update, on PREFECT_API_URL, the automations ldflow relies on: zombie detection
    (a flow run whose heartbeats stopped for 90 s is marked Crashed, freeing its concurrency slot).
    Run it once after `prefect deploy --all`; running it again changes nothing."""
    if not os.environ.get("PREFECT_API_URL"):
        sys.stderr.write("refused: cannot install the automations; missing:\n"
                         "  - PREFECT_API_URL (the Prefect server's API)\nnothing was written.\n")
        raise typer.Exit(EXIT_REFUSED)
    from flows import prefect_settings

    prefect_settings.apply(logging_level="WARNING")
    from flows.fleet import install_automations

    for installed in install_automations():
        sys.stdout.write(f"automation installed: {installed}\n")
