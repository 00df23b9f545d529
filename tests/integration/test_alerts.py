"""Alerts to the ops address: a mail that failed for good or whose outcome is unknown, and a failed
or crashed flow run, each told once (SQLite, SMTP to aiosmtpd on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.ports import OutboxStatus
from flows.clock import FixedClock
from flows.settings import Settings
from tests.builders import ACTOR, T0, intake_data
from tests.integration import conftest_mail as cm
from tests.integration.conftest_mail import SmtpServer

smtp_server = cm.smtp_server
OPS = "ops.desk@example.org"


@pytest.fixture
def rt(tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from flows import bootstrap

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ldflow.db'}",
                        smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_security="none",
                        ops_address=f"Ops Desk <{OPS}>")
    app = bootstrap.build(settings, clock=FixedClock(T0))
    yield app
    app.close()


def alerts_received(server: SmtpServer) -> list[Any]:
    return [r.message for r in server.handler.deliveries(OPS)]


def test_a_mail_refused_for_good_alerts_the_ops_address_once(rt: Any, smtp_server: SmtpServer) -> None:
    from flows.steps import send_outbox

    requester = intake_data()["requester"]["email"]
    smtp_server.handler.rcpt_replies = {requester.lower(): "550 5.1.1 no such user"}
    request = rt.service.submit(intake_data(), ACTOR)
    first = send_outbox(rt)
    assert first.counts["failed"] == 1 and first.counts["alerts"] == 1
    [alert] = alerts_received(smtp_server)
    assert alert["Subject"] == f"ldflow alert: mail {request.id}:intake_acknowledgement is failed"
    text = alert.get_body(("plain",)).get_content()
    assert "550 5.1.1 no such user" in text
    assert f"ldflow outbox retry --key {request.id}:intake_acknowledgement" in text
    html = alert.get_body(("html",)).get_content()
    assert "<strong>it failed for good</strong>" in html
    assert f"(request {request.id})" in text and "[ldflow #" not in text
    # later passes: the row is still failed, but the alert went already
    again = send_outbox(rt)
    assert "alerts" not in again.counts
    assert len(alerts_received(smtp_server)) == 1


def test_a_mail_with_an_unknown_outcome_alerts_once_and_an_alert_never_alerts(rt: Any,
                                                                            smtp_server: SmtpServer) -> None:
    from flows.alerts import raise_alerts
    from flows.steps import send_outbox

    rt.service.submit(intake_data(), ACTOR)
    [row] = rt.uow.outbox.claim("host:1:1", T0, cm.dt.timedelta(minutes=5))
    assert rt.uow.outbox.mark_unknown(row.id, "host:1:1", reason="connection lost after DATA")
    assert raise_alerts(rt) == (1, [])
    assert raise_alerts(rt) == (0, [])
    smtp_server.handler.rcpt_replies = {OPS: "550 5.1.1 no such user"}  # the alert itself fails
    summary = send_outbox(rt)
    assert summary.counts["failed"] == 1 and "alerts" not in summary.counts
    statuses = {r.key: r.status for r in rt.uow.outbox.rows()}
    assert statuses == {row.key: OutboxStatus.UNKNOWN, f"alert:mail:{row.key}:unknown": OutboxStatus.FAILED}


def test_failed_and_crashed_runs_are_alerted_once(rt: Any) -> None:
    from flows.alerts import run_alerts

    runs = [{"id": "r-1", "name": "brave-otter", "state": {"type": "CRASHED", "name": "Crashed",
                                                           "message": "no heartbeat for 90 s"}},
            {"id": "r-2", "name": "calm-heron", "state": {"type": "FAILED", "name": "Failed", "message": None}}]
    assert rt.uow.outbox.enqueue(run_alerts(rt, runs), T0) == 2
    assert rt.uow.outbox.enqueue(run_alerts(rt, runs), T0) == 0
    rows = rt.uow.outbox.by_keys(["alert:run:r-1", "alert:run:r-2"])
    assert rows["alert:run:r-1"].notification.subject == "ldflow alert: flow run brave-otter crashed"
    assert [r.email for r in rows["alert:run:r-2"].notification.to] == [OPS]
