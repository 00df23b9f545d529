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
from typing import Annotated

import typer

from flows.cli.common import EXIT_ERROR, EXIT_REFUSED

app = typer.Typer()
PANEL = "Pipeline"


@app.command(rich_help_panel=PANEL, short_help="Start a Prefect worker for ldflow's deployments.")
def worker(
    pool: Annotated[str, typer.Option(help="The work pool (prefect.yaml's is 'ldflow').")] = "ldflow",
    limit: Annotated[int, typer.Option(min=1, help="Flow runs this worker runs at once.")] = 4,
    name: Annotated[str | None, typer.Option(help="The worker's name (default: Prefect's).")] = None,
) -> None:
    """Check this machine's settings (LDFLOW_REPO_DIR, LDFLOW_DATABASE_URL on PostgreSQL, the
    database answering with ldflow's schema, PREFECT_API_URL), then run `prefect worker start
    --pool POOL --limit LIMIT`. A missing setting is refused, each one listed, before any run is
    taken (exit 3)."""
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
    sys.stdout.flush()
    os.execv(prefect, args)


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
