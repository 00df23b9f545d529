"""Alerts to the ops address (``LDFLOW_OPS_ADDRESS``): mail stuck ``unknown`` or ``failed``, and
ldflow flow runs that failed or crashed on the Prefect server (a worker killed mid-run, then
marked Crashed by the zombie automation; a run out of retries).

Each alert is an outbox row whose key names what it is about (``alert:mail:<outbox key>:<status>``,
``alert:run:<flow run id>``), queued only when that key is new: raised on every dispatch, an
alert goes out once per stuck row or run. An alert about an alert that could not be sent is not
raised (no loop); it shows in ``ldflow outbox list`` and in the pass's attention list.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from connectors.ports import OutboxStatus
from flows import events
from states.notifications import Notification

if TYPE_CHECKING:
    from flows.bootstrap import App

TEMPLATE = "ops_alert"
#: What an alert says of the mail, by its status.
OUTCOMES = {OutboxStatus.UNKNOWN: "whether it was delivered is unknown (the connection broke after the message "
                                  "was handed over)",
            OutboxStatus.FAILED: "it failed for good"}
#: Failed runs looked at: those expected to start in the last ``RUNS_WINDOW``.
RUNS_WINDOW = timedelta(days=2)


def _alert(key: str, subject: str, context: dict[str, Any], app: App) -> Notification:
    return Notification(key=key, request_id=0, template=TEMPLATE, to=(app.settings.ops_recipient,),
                        subject=subject, context=context)


def stuck_mail(app: App, limit: int = 200) -> list[Notification]:
    """One alert per outbox row that is ``unknown`` (maybe sent: someone must check) or ``failed``."""
    found: list[Notification] = []
    for status in (OutboxStatus.UNKNOWN, OutboxStatus.FAILED):
        for row in app.uow.outbox.rows(status, limit=limit):
            if row.template == TEMPLATE:
                continue
            to = ", ".join(r.email for r in row.notification.to)
            about = f" (request {row.request_id})" if row.request_id else ""
            action = (f"check the mail server's log: if it went out, `ldflow outbox mark-sent {row.key}`, "
                      f"else `ldflow outbox retry --key {row.key}`" if status == OutboxStatus.UNKNOWN
                      else f"fix the address or the server's complaint, then `ldflow outbox retry --key {row.key}`")
            found.append(_alert(
                f"alert:mail:{row.key}:{status.value}", f"ldflow alert: mail {row.key} is {status.value}",
                {"kind": "mail", "what": f"the {row.template.replace('_', ' ')} mail to {to}{about}",
                 "status": status.value, "outcome": OUTCOMES[status],
                 "detail": row.last_error or "no detail recorded", "action": action}, app))
    return found


def failed_runs(since: datetime) -> list[dict[str, Any]]:
    """ldflow's flow runs (tag ``ldflow``) that ended Failed or Crashed, expected to start after
    ``since``, from the Prefect API; empty without one."""
    if not events.api_url():
        return []
    body = {"flow_runs": {"state": {"type": {"any_": ["FAILED", "CRASHED"]}},
                          "tags": {"all_": ["ldflow"]}, "expected_start_time": {"after_": since.isoformat()}},
            "sort": "EXPECTED_START_TIME_DESC", "limit": 100}
    answer = events.prefect_post("/flow_runs/filter", body)
    return list(answer or [])


def run_alerts(app: App, runs: list[dict[str, Any]]) -> list[Notification]:
    """One alert per failed or crashed flow run."""
    found = []
    for run in runs:
        state = run.get("state") or {}
        name = str(state.get("name") or state.get("type") or "failed").lower()
        found.append(_alert(
            f"alert:run:{run['id']}", f"ldflow alert: flow run {run.get('name', run['id'])} {name}",
            {"kind": "run", "what": f"the flow run {run.get('name')} ({run['id']})", "status": name,
             "detail": state.get("message") or "no message",
             "action": "look at the run in the Prefect UI; every flow is safe to run again"}, app))
    return found


def raise_alerts(app: App) -> tuple[int, list[str]]:
    """Queue the alerts not raised yet: (how many, problems). A Prefect API that does not answer
    only skips the run alerts until the next dispatch."""
    problems: list[str] = []
    alerts = stuck_mail(app)
    try:
        alerts += run_alerts(app, failed_runs(datetime.now(UTC) - RUNS_WINDOW))
    except Exception as exc:  # Prefect down or hung: the mail alerts still go
        problems.append(f"failed flow runs not checked: Prefect API: {type(exc).__name__}: {exc}")
    return app.uow.outbox.enqueue(alerts, app.now()), problems
