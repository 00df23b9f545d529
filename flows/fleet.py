"""Running ldflow on a fleet of Prefect workers: what a worker needs before it takes runs, and the
Prefect automations ldflow installs on the server.

* :func:`worker_problems` - every setting a worker is missing (``ldflow worker`` refuses to start,
  listing them all, instead of taking runs and crashing each one);
* :func:`install_automations` - the zombie-detection automation (a flow run whose heartbeats stop
  is marked ``Crashed``, which frees its concurrency slot), created or updated by name, so running
  it again changes nothing (``ldflow prefect-setup``, and ``ldflow serve`` at start).

Prefect is imported inside the functions (entry points apply :mod:`flows.prefect_settings` first).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: How often a flow run reports it is alive (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``; Prefect's
#: minimum is 30 s). The deployments in prefect.yaml set it for their runs.
HEARTBEAT_SECONDS = 30
#: A run without a heartbeat for this long is a zombie: three heartbeats missed.
ZOMBIE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS
ZOMBIE_AUTOMATION = "ldflow: crash zombie flow runs"


def worker_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """What this machine lacks to run ldflow's deployments, one line each (empty: ready).

    Checks the environment the flow runs inherit: the checkout the pull step changes to, the
    shared database, the Prefect API; then that the database answers and has ldflow's schema."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    repo = env.get("LDFLOW_REPO_DIR", "")
    if not repo:
        problems.append("LDFLOW_REPO_DIR is not set: the deployments' pull step changes to that checkout of "
                        "ldflow (at the commit prefect.yaml pins)")
    elif not (Path(repo) / "flows" / "pipeline.py").is_file():
        problems.append(f"LDFLOW_REPO_DIR={repo} is not a checkout of ldflow (no flows/pipeline.py there)")
    if not env.get("LDFLOW_DATABASE_URL"):
        problems.append("LDFLOW_DATABASE_URL is not set: every worker must use the one shared ldflow "
                        "database (postgresql://…), not a SQLite file of its own")
    elif env["LDFLOW_DATABASE_URL"].startswith("sqlite"):
        problems.append("LDFLOW_DATABASE_URL is a SQLite file: workers share one PostgreSQL database "
                        "(postgresql://…)")
    if not env.get("PREFECT_API_URL"):
        problems.append("PREFECT_API_URL is not set: the worker would have no Prefect server to take runs from")
    if not problems:
        problems.extend(_database_problems())
    return problems


def _database_problems() -> list[str]:
    from flows.bootstrap import build
    from flows.settings import ConfigurationError, load_settings

    try:
        app = build(load_settings())
    except ConfigurationError as exc:
        return [str(exc)]
    except Exception as exc:  # an unreachable server, a wrong password …: say which, without a traceback
        return [f"the ldflow database does not answer: {type(exc).__name__}: {exc}"]
    app.close()
    return []


def zombie_automation() -> Any:
    """Prefect's documented zombie detection ("detect zombie flows"): after a flow run's heartbeat,
    expect another heartbeat or a final state within :data:`ZOMBIE_AFTER_SECONDS`; if none comes,
    set the run ``Crashed``."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return Automation(
        name=ZOMBIE_AUTOMATION,
        description="A flow run that stopped sending heartbeats (its worker or machine died) is marked "
                    "Crashed, so its concurrency slot is freed and ldflow's next dispatch alerts the ops address.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=ZOMBIE_AFTER_SECONDS),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {ZOMBIE_AFTER_SECONDS} s: marked Crashed "
                                            "(its worker or machine stopped)")],
    )


def install_automations() -> list[str]:
    """Create or update ldflow's automations on the configured Prefect server; their names."""
    wanted = [zombie_automation()]
    for automation in wanted:
        try:
            existing = type(automation).read(name=automation.name)
        except ValueError:  # not there yet
            automation.create()
            continue
        automation.id = existing.id
        automation.update()
    return [a.name for a in wanted]
