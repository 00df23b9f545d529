"""Issue 12 item 1, as an operator does it: a Prefect server on PostgreSQL, the README's
`prefect work-pool create` + `prefect deploy --all` + `ldflow prefect-setup`, then
`prefect deployment ls` and `prefect flow-run ls`; and a worker without its settings refuses to
start. Needs PostgreSQL (skips without it unless LDFLOW_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import postgres_admin_url, require_postgres
from tests.scaleout.cluster import Cluster, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_postgres()
    cluster = Cluster(postgres_admin_url(), Path(tmp_path_factory.mktemp("scaleout")))
    try:
        cluster.start(smtp_port=free_port())
        yield cluster
    finally:
        cluster.close()


def test_prefect_deploy_all_creates_every_deployment_schedule_limit_and_trigger(cluster: Cluster) -> None:
    done = cluster.deploy()
    assert done.returncode == 0
    deployments = cluster.deployments()
    assert sorted(deployments) == ["ldflow-advance", "ldflow-dispatch", "ldflow-followups", "ldflow-intake",
                                   "ldflow-pipeline"]
    schedules = {name: [s["schedule"] for s in d["schedules"]] for name, d in deployments.items()}
    assert [s["interval"] for s in schedules["ldflow-pipeline"]] == [900.0]
    assert [s["interval"] for s in schedules["ldflow-intake"]] == [120.0]
    assert [s["cron"] for s in schedules["ldflow-followups"]] == ["*/10 * * * *"]
    assert [s["interval"] for s in schedules["ldflow-dispatch"]] == [60.0]
    for name, limit in (("ldflow-pipeline", 1), ("ldflow-dispatch", 2)):  # two workers share dispatch work
        assert deployments[name]["global_concurrency_limit"]["limit"] == limit
        assert deployments[name]["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert all(deployments[name]["global_concurrency_limit"] is None
               for name in ("ldflow-followups", "ldflow-intake", "ldflow-advance"))
    assert deployments["ldflow-dispatch"]["parameters"]["linger_seconds"] == 30
    assert all(d["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
               for d in deployments.values())
    automations = {a["name"]: a for a in cluster.automations()}
    [trigger] = [a for a in automations.values() if a["actions"][0].get("deployment_id")
                 == deployments["ldflow-dispatch"]["id"]]
    assert trigger["trigger"]["expect"] == ["ldflow.outbox.enqueued"] and trigger["trigger"]["within"] == 30.0
    zombie = automations["ldflow: crash zombie flow runs"]
    assert zombie["trigger"]["posture"] == "Proactive" and zombie["trigger"]["within"] == 90.0
    [crash] = zombie["actions"]
    assert (crash["type"], crash["state"]) == ("change-flow-run-state", "CRASHED")

    # again: nothing new (the README's steps may be re-run after an upgrade)
    cluster.prefect(["--no-prompt", "deploy", "--all"])
    cluster.ldflow(["prefect-setup"])
    assert len(cluster.automations()) == len(automations)
    assert sorted(cluster.deployments()) == sorted(deployments)

    listed = cluster.prefect(["deployment", "ls"])
    assert all(f"{d['name'].removeprefix('ldflow-')}/{d['name']}" in listed.stdout for d in deployments.values())
    runs = cluster.prefect(["flow-run", "ls"])  # the scheduler has created scheduled runs by now (or none)
    assert runs.returncode == 0 and "422" not in runs.stdout + runs.stderr


def test_a_worker_without_its_settings_refuses_to_start(cluster: Cluster) -> None:
    env = cluster.base_env()
    del env["LDFLOW_REPO_DIR"], env["LDFLOW_DATABASE_URL"]
    import subprocess
    import sys

    done = subprocess.run([str(Path(sys.executable).parent / "ldflow"), "worker"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3
    assert "LDFLOW_REPO_DIR is not set" in done.stderr and "LDFLOW_DATABASE_URL is not set" in done.stderr
    assert "no worker was started" in done.stderr and "Traceback" not in done.stderr
    workers = cluster.post("/work_pools/ldflow/workers/filter", {})
    assert workers == []  # it never registered with the pool
