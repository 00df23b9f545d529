"""The event outbox against a real Prefect server (the session's test harness): events survive an
outage (a refusing API, a hung one) and are published once it is back; the dispatch trigger of
``prefect.yaml`` is debounced (a burst of writes is a few runs, none Cancelled); a ``pipeline`` run
publishes its artifacts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows import events
from flows.steps import publish_events
from tests.builders import ACTOR, intake_data
from tests.sockets import hung_api as hung_api_socket
from tests.sockets import refusing_url

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def hung_api() -> Iterator[str]:
    with hung_api_socket() as api:
        yield api.url


def _prefect_events(ids: list[str]) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        answer = client._client.post("/events/filter", json={"filter": {"id": {"id": ids}}, "limit": 50})
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["events"]
        return found


def _wait(what: str, probe: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_no_event_is_lost_across_an_outage(rt: Any, hung_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "TIMEOUT", 2.0)
    for _ in range(3):
        rt.service.submit(intake_data(), ACTOR)
    staged = [e.event_id for e in rt.uow.events.pending()]
    assert len(staged) == 6
    for url in (refusing_url(), hung_api):
        monkeypatch.setenv("PREFECT_API_URL", url)
        started = time.monotonic()
        down = publish_events(rt)
        assert time.monotonic() - started < 10  # one bounded attempt per run
        assert down.counts["published"] == 0 and down.counts["waiting"] == 6, down
    monkeypatch.delenv("PREFECT_API_URL")  # the harness's server again
    assert publish_events(rt).counts == {"published": 6}
    assert rt.uow.events.count_pending() == 0
    wakeups = 1  # the three acknowledgements' wake-ups went as one event
    found = _wait("the events in Prefect", lambda: (lambda got: got if len(got) >= 3 + wakeups else None)(
        _prefect_events([*staged, *_merged_ids(rt)])))
    names = sorted(e["event"] for e in found)
    assert names == ["ldflow.outbox.enqueued", *["ldflow.request.submitted"] * 3]


def _merged_ids(rt: Any) -> list[str]:
    """The ids of the merged wake-ups: derived from the rows they merged (see ``events.coalesce``)."""
    import uuid

    from sqlalchemy import select

    from connectors.db.tables import event_outbox
    from connectors.prefect_events import NAMESPACE, OUTBOX_ENQUEUED

    with rt.engine.connect() as conn:
        rows = conn.execute(select(event_outbox.c.event_id).where(event_outbox.c.event == OUTBOX_ENQUEUED)
                            .order_by(event_outbox.c.id)).scalars().all()
    return [str(uuid.uuid5(NAMESPACE, "wakeup:" + "\n".join(rows)))]


def _dispatch_trigger() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    [dispatch] = [d for d in config["deployments"] if d["name"] == "ldflow-dispatch"]
    [trigger] = dispatch["triggers"]
    return {"trigger": {k: v for k, v in trigger.items() if k != "type"},
            "concurrency": dispatch["concurrency_limit"]}


def test_a_burst_of_100_writes_wakes_dispatch_a_few_times_and_cancels_none(rt: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.events import DeploymentEventTrigger

    from flows.pipeline import dispatch

    spec = _dispatch_trigger()
    deployment = dispatch.to_deployment(name="burst-dispatch", triggers=[DeploymentEventTrigger(**spec["trigger"])],
                                        concurrency_limit=spec["concurrency"]["limit"])
    deployment_id = deployment.apply()
    time.sleep(2)  # the automation is loaded by the triggers service
    published = 0
    for _ in range(10):  # ten flow runs' worth of publishing, 10 writes each
        for _ in range(10):
            rt.service.submit(intake_data(), ACTOR)
        published += publish_events(rt).counts["published"]
        time.sleep(0.3)
    assert published == 200

    def runs() -> list[Any]:
        with get_client(sync_client=True) as client:
            return list(client.read_flow_runs(deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[deployment_id]))))

    first = _wait("dispatch to be triggered", runs)
    time.sleep(5)  # let any further firing land
    found = runs()
    assert 1 <= len(found) <= 3, [(r.name, r.state_name) for r in found]
    assert not [r for r in found if r.state_name == "Cancelled"]
    assert first


def test_a_pipeline_run_publishes_its_counts_and_attention_artifacts(rt: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.pipeline import pipeline

    drop = rt.settings.drop_dir
    drop.mkdir(parents=True)
    (drop / "new.json").write_text('{"title": "Onboarding"}')  # incomplete: quarantined with the reason
    rt.service.submit(intake_data(), ACTOR)
    state = pipeline(return_state=True)
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {"ldflow-pipeline-counts", "ldflow-pipeline-attention"}
    table = by_key["ldflow-pipeline-counts"]
    assert table.type == "table"
    rows = yaml.safe_load(table.data) if isinstance(table.data, str) else table.data
    counts = {(r["step"], r["count"]): r["value"] for r in rows}
    assert counts[("intake", "quarantined")] == 1 and counts[("dispatch", "sent")] == 1
    assert {step for step, _ in counts} == {"intake", "followups", "advance", "digest", "dispatch", "audit",
                                            "events"}
    attention = by_key["ldflow-pipeline-attention"]
    assert attention.type == "markdown" and "# Needs attention" in str(attention.data)
    assert "new.json" in str(attention.data) and "quarantined" in str(attention.data)
