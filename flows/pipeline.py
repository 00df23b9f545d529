"""The pipeline as Prefect flows: ``intake``, ``followups``, ``advance``, ``dispatch`` and ``pipeline``.

Each flow ends by publishing the event outbox to Prefect (the ``publish-events`` task), so what a
run changed reaches Prefect's triggers and dashboards as soon as the run ends; a ``pipeline`` run
also publishes two artifacts: a table of counts per step and a markdown list of what needs a
person (``ldflow-pipeline-counts``, ``ldflow-pipeline-attention``).

Orchestration only: each task runs one step of :mod:`flows.steps` on the process's application
(:func:`flows.bootstrap.current`), with retries and timeouts (connector I/O may fail transiently; a
retried step is safe because every step is idempotent). The database is the source of truth, so
running a flow twice changes nothing the second time.

A flow handles a batch: Prefect costs ~1 s per flow run and ~10 ms per task here, so there is
never a flow run or a task per request or per transition. ``pipeline`` runs the four steps' tasks
inside its own flow run instead of starting four subflow runs (a subflow run costs ~1 s).

Entry points apply Prefect's settings (:mod:`flows.prefect_settings`) before importing this module.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from flows import steps
from flows.bootstrap import current
from flows.vocabulary import FlowName

# --- tasks: one step each, retried and timed out ------------------------------------------------------

# Timeouts bound connector I/O (the drop folder/IMAP, SMTP; the SMTP sender also times out each
# command). The database steps run in bounded rounds and are not cut off half-way.
@task(name="take-in", retries=2, retry_delay_seconds=10, timeout_seconds=900,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def take_in_task(batch: int = 200) -> dict[str, Any]:
    return steps.take_in(current(), batch).as_dict()


@task(name="fire-followups", retries=2, retry_delay_seconds=5,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def followups_task(batch: int = 500, lateness_days: int | None = None, reminder_after_days: int | None = None,
                   max_reminders: int | None = None) -> dict[str, Any]:
    return steps.fire_followups(current(), batch, lateness_days, reminder_after_days, max_reminders).as_dict()


@task(name="advance-requests", retries=2, retry_delay_seconds=5,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def advance_task(batch: int = 500) -> dict[str, Any]:
    return steps.advance_requests(current(), batch).as_dict()


@task(name="queue-digest", retries=2, retry_delay_seconds=5,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def digest_task() -> dict[str, Any]:
    return steps.queue_digest(current()).as_dict()


@task(name="send-outbox", retries=2, retry_delay_seconds=30, timeout_seconds=7200,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def dispatch_task(batch: int = 100, lease_seconds: int = 300, linger_seconds: float = 0) -> dict[str, Any]:
    return steps.send_outbox(current(), batch, lease_seconds, linger_seconds=linger_seconds).as_dict()


@task(name="checkpoint-audit", retries=1, retry_delay_seconds=5, timeout_seconds=600,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def checkpoint_task() -> dict[str, Any]:
    return steps.checkpoint_audit(current()).as_dict()


@task(name="publish-events", retries=0, timeout_seconds=600,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def publish_events_task(batch: int = 200) -> dict[str, Any]:
    return steps.publish_events(current(), batch).as_dict()


def _publishing(summary: dict[str, Any]) -> dict[str, Any]:
    """The flow's step summary, after the events of what it did were published (and logged)."""
    _log(publish_events_task())
    return summary


def _artifacts(done: list[dict[str, Any]]) -> None:
    """The pass's counts per step (a table) and what needs a person (markdown), on the flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    rows = [{"step": s["step"], "count": name, "value": value, "problems": s["errors_total"]}
            for s in done for name, value in (s["counts"].items() or [("nothing", 0)])]
    lines = steps.attention(current(), done)
    markdown = "# Needs attention\n\n" + ("\n".join(f"- {line}" for line in lines) if lines
                                          else "Nothing needs attention.") + "\n"
    try:
        create_table_artifact(rows, key="ldflow-pipeline-counts", description="ldflow pipeline pass: counts per step")
        create_markdown_artifact(markdown, key="ldflow-pipeline-attention",
                                 description="ldflow pipeline pass: what needs a person")
    except Exception as exc:  # the artifacts are for people; their failure does not fail the pass
        get_run_logger().warning("could not publish the pass's artifacts: %s", exc)


def _log(summary: dict[str, Any]) -> dict[str, Any]:
    """Log a step's counts and first problems in the flow run (not when called outside one, e.g. ``.fn``)."""
    try:
        logger = get_run_logger()
    except MissingContextError:
        return summary
    logger.info("%s: %s", summary["step"], summary["counts"])
    for error in summary["errors"][:10]:
        logger.warning("%s: %s", summary["step"], error)
    return summary


# --- hooks: what a stopping flow run holds is given back ------------------------------------------------

def _release_held(flow: Any, flow_run: Any, state: Any) -> None:
    """A run that failed, crashed or was cancelled gives back the outbox rows its relay claimed and
    had not tried yet (``sending``; a ``transmitting`` row keeps its lease and becomes ``unknown``),
    so the next dispatch sends them at once instead of after the lease. Alerts about the run come
    from the next dispatch (``flows.alerts``), also when this process was killed and no hook ran."""
    prefix = steps.relay_owner().rsplit(":", 1)[0] + ":"  # this process, every thread
    try:
        released = current().uow.outbox.release_held(prefix, note=f"flow run {flow_run.name} stopped "
                                                                  f"({state.name}); not tried")
    except Exception as exc:  # the database is what failed: the leases expire on their own
        get_run_logger().warning("could not give back the claimed outbox rows: %s", exc)
        return
    if released:
        get_run_logger().warning("gave back %d claimed outbox row(s) for the next dispatch", released)


#: Every flow: retried once after a minute (each is an idempotent reconciler, so a rerun does
#: only what is left), cut off after its timeout, and gives back what it holds when it stops.
_HOOKS: dict[str, Any] = {"on_failure": [_release_held], "on_crashed": [_release_held],
                          "on_cancellation": [_release_held]}
_SAFE = {"persist_result": False, "log_prints": False, "retries": 1, "retry_delay_seconds": 60, **_HOOKS}


# --- flows -----------------------------------------------------------------------------------------------

@flow(name="intake", timeout_seconds=1800, **_SAFE)
def intake(batch: int = 200) -> dict[str, Any]:
    """Take in new requests from the drop folder (and replies from the inbox when configured).

    batch: files/messages read per round.
    """
    return _publishing(_log(take_in_task(batch)))


@flow(name="followups", timeout_seconds=3600, **_SAFE)
def followups(batch: int = 500, lateness_days: int | None = None, reminder_after_days: int | None = None,
              max_reminders: int | None = None) -> dict[str, Any]:
    """Fire the measurement checkpoints that are due (each once) and remind unanswered surveys.

    batch: checkpoints per database round; lateness_days: older than this → flagged needs_review,
    not sent (default LDFLOW_LATENESS_DAYS, 14); reminder_after_days (default 3) and max_reminders
    (default 2) for unanswered surveys.
    """
    return _publishing(_log(followups_task(batch, lateness_days, reminder_after_days, max_reminders)))


@flow(name="advance", timeout_seconds=3600, **_SAFE)
def advance(batch: int = 500) -> dict[str, Any]:
    """Measure delivered requests whose checkpoints are all closed. batch: requests per round."""
    return _publishing(_log(advance_task(batch)))


@flow(name="dispatch", timeout_seconds=7800, **_SAFE)
def dispatch(batch: int = 100, lease_seconds: int = 300, linger_seconds: float = 0) -> dict[str, Any]:
    """Send what the outbox holds. batch: rows claimed per round; lease_seconds: how long a claim
    holds before another relay may take the rows over (a relay that died); linger_seconds: once the
    outbox is empty, keep looking (every second) until this long without work, so mail queued
    meanwhile goes out from this run instead of a new one (prefect.yaml: 30)."""
    return _publishing(_log(dispatch_task(batch, lease_seconds, linger_seconds)))


@flow(name="pipeline", timeout_seconds=14400, **_SAFE)
def pipeline(intake_batch: int = 200, followups_batch: int = 500, dispatch_batch: int = 100,
             lateness_days: int | None = None, reminder_after_days: int | None = None,
             max_reminders: int | None = None, lease_seconds: int = 300) -> dict[str, Any]:
    """One pass of the whole pipeline: intake, followups, advance, the daily digest, dispatch (sending last, so
    what this pass queued goes out in this pass), a signed audit checkpoint, then the events published.
    Returns each step's summary and publishes the pass's artifacts (counts per step, what needs attention)."""
    done = [
        _log(take_in_task(intake_batch)),
        _log(followups_task(followups_batch, lateness_days, reminder_after_days, max_reminders)),
        _log(advance_task()),
        _log(digest_task()),
        _log(dispatch_task(dispatch_batch, lease_seconds)),
        _log(checkpoint_task()),
    ]
    done.append(_log(publish_events_task()))
    _artifacts(done)
    return {"steps": done, "errors_total": sum(s["errors_total"] for s in done)}


#: The flows by the name ``ldflow run --flow`` takes.
FLOWS: dict[str, Any] = {FlowName.PIPELINE: pipeline, FlowName.INTAKE: intake, FlowName.FOLLOWUPS: followups,
                         FlowName.ADVANCE: advance, FlowName.DISPATCH: dispatch}
