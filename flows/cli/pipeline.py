"""``ldflow run`` and ``ldflow serve``: the pipeline on this machine.

``ldflow run`` without ``PREFECT_API_URL`` runs the steps in this process without Prefect (no
server to start, nothing left behind when it is killed); with it, the flow runs as a Prefect flow
run on that server. ``ldflow serve`` is the Prefect-orchestrated long-running mode.
Prefect and SQLAlchemy cost about a second to import, so they are imported inside the commands,
after :mod:`flows.prefect_settings` has set Prefect's defaults.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.common import EXIT_ERROR, choice
from flows.vocabulary import FlowName

app = typer.Typer()
PANEL = "Pipeline"


class _Progress:
    """A Rich progress display on stderr, shown only once a step reports enough work to wait for."""

    THRESHOLD = 200

    def __init__(self) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, step: str, done: int, total: int | None) -> None:
        if self._progress is None:
            if (total or done) < self.THRESHOLD or not sys.stderr.isatty():
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from flows.views import console

            self._progress = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=console(stderr=True), transient=True)
            self._progress.start()
        if step not in self._tasks:
            self._tasks[step] = self._progress.add_task(step, total=total)
        self._progress.update(self._tasks[step], completed=done, total=total)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _summary_table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="pipeline pass", title_justify="left")
    table.add_column("step", style="bold")
    table.add_column("done")
    table.add_column("problems", justify="right")
    for step in result["steps"]:
        counts = ", ".join(f"{k} {v}" for k, v in step["counts"].items() if v or k in ("sent", "measured",
                                                                                     "submitted"))
        table.add_row(step["step"], counts or "nothing due", str(step["errors_total"] or ""))
    return table


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    from flows.views import console

    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
        return
    out = console()
    out.print(_summary_table(result))
    for step in result["steps"]:
        for error in step["errors"][:10]:
            out.print(f"[yellow]{step['step']}:[/] {error}", markup=True, highlight=False)


@app.command(rich_help_panel=PANEL, short_help="One pass of the pipeline.")
def run(
    flow_name: Annotated[FlowName, typer.Option(
        "--flow", help="Which flow.", parser=choice(FlowName, "flow"))] = FlowName.PIPELINE,
    batch: Annotated[int | None, typer.Option(min=1, help="Batch size per database round (default per step).")]
    = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Show Prefect's flow and task logs (with PREFECT_API_URL).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """One pass of the pipeline: take in new requests, fire due follow-ups, measure requests whose
    checkpoints are closed, send the outbox, publish the Prefect events. No server needed: without
    PREFECT_API_URL the steps run in this process; with it, as a flow run on that Prefect server."""
    orchestrated = bool(os.environ.get("PREFECT_API_URL"))
    if orchestrated:
        from flows import prefect_settings

        prefect_settings.apply(logging_level="INFO" if verbose else "WARNING")
    from flows import bootstrap
    from flows.views import console

    err = console(stderr=True)
    app_ = bootstrap.current()  # the app the flow's tasks use in this process (fails early on bad settings)
    progress = _Progress()
    app_.progress = progress
    try:
        result = _run_orchestrated(flow_name, batch) if orchestrated else _run_in_process(app_, flow_name, batch)
    except Exception as exc:  # a failed flow run: say so without a traceback
        if os.environ.get("LDFLOW_DEBUG"):
            raise
        err.print(f"[red]error:[/] the {flow_name} flow run failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(EXIT_ERROR) from None
    finally:
        progress.stop()
        app_.progress = None
    if "steps" not in result:
        result = {"steps": [result], "errors_total": result["errors_total"]}
    result["now"] = app_.now().isoformat()
    _print_result(result, as_json)
    # Problems with single items (a quarantined file, a refused recipient) are recorded and shown
    # above; they do not make the pass a failure. A failed flow run exits 1 (see above).


def _run_in_process(app_: Any, flow_name: FlowName, batch: int | None) -> dict[str, Any]:
    from flows.steps import run_in_process

    return run_in_process(app_, flow_name.value, batch)


def _run_orchestrated(flow_name: FlowName, batch: int | None) -> dict[str, Any]:
    from flows.pipeline import FLOWS

    params: dict[str, Any] = {}
    if batch is not None:
        params = ({"followups_batch": batch, "dispatch_batch": batch, "intake_batch": batch}
                  if flow_name == FlowName.PIPELINE else {"batch": batch})
    result: dict[str, Any] = FLOWS[flow_name](**params)
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_local_server(log_path: Path, err: Any) -> Any:
    """A Prefect server for this machine (the temporary in-process one has no scheduler).

    It runs in its own session, so Ctrl-C reaches ``serve`` first, which pauses its deployments
    and then stops the server; and it is sent SIGTERM by the kernel when ``serve`` dies, even by
    SIGKILL (:func:`_dies_with`), so it never outlives ``serve``.
    """
    import subprocess

    from flows.prefect_settings import use_api
    from flows.settings import ConfigurationError

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
                            preexec_fn=_dies_with(os.getpid()))
    err.print(f"[dim]starting a local Prefect server on {url} (log: {log_path})…[/]")
    try:
        if _wait_until_healthy(proc, url, log_path):
            use_api(url)
            err.print(f"Prefect UI: http://127.0.0.1:{port}")
            return proc
    except BaseException:  # Ctrl-C (or anything) while waiting: the server must not outlive serve
        _stop(proc)
        raise
    _stop(proc)
    raise ConfigurationError(f"the local Prefect server did not answer within the timeout; see {log_path}")


def _dies_with(parent: int) -> Any:
    """A ``preexec_fn`` for a child that must not outlive ``parent``: on Linux, PR_SET_PDEATHSIG
    asks the kernel for SIGTERM when the parent dies (also by SIGKILL); a parent already gone by
    then (a race with the fork) makes the child exit at once. A no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return None

    def arrange() -> None:  # runs in the child between fork and exec
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return arrange


def _wait_until_healthy(proc: Any, url: str, log_path: Path) -> bool:
    """True once the server answers its health check; False at the start-up timeout."""
    import time
    import urllib.request

    from flows.prefect_settings import startup_timeout
    from flows.settings import ConfigurationError

    deadline = time.monotonic() + startup_timeout()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigurationError(f"the local Prefect server stopped (exit {proc.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def _stop(server: Any) -> None:
    """Stop the local Prefect server (SIGTERM, then SIGKILL after 30 s)."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except Exception:
        server.kill()


def _install_automations(err: Any) -> None:
    """The zombie-detection automation (``flows.fleet``); serving goes on without it, with a warning."""
    from flows.fleet import install_automations

    try:
        install_automations()
    except Exception as exc:  # an old server without automations: runs still run, zombies stay Running
        err.print(f"[yellow]warning:[/] could not install the zombie-detection automation: {exc}")


def _serve_deployments(interval: int, dispatch_interval: int) -> None:
    from prefect import serve as prefect_serve

    from flows import pipeline

    deployments: list[Any] = [
        pipeline.pipeline.to_deployment(name="ldflow-pipeline", paused=False, interval=interval,
                                        description="One pass of the whole pipeline."),
        pipeline.dispatch.to_deployment(name="ldflow-dispatch", paused=False, interval=dispatch_interval,
                                        description="Send what the outbox holds."),
        pipeline.intake.to_deployment(name="ldflow-intake", paused=False,
                                      description="Take in the drop folder / inbox."),
        pipeline.followups.to_deployment(name="ldflow-followups", paused=False, description="Fire due checkpoints."),
        pipeline.advance.to_deployment(name="ldflow-advance", paused=False, description="Measure closed requests."),
    ]
    with _flow_runs_ignore_ctrl_c():
        prefect_serve(*deployments)


@contextlib.contextmanager
def _flow_runs_ignore_ctrl_c() -> Iterator[None]:
    """Keep the terminal's Ctrl-C away from served flow runs, so it stops ``serve`` alone.

    Prefect's runner starts each served flow run as a subprocess in serve's process group, so the
    terminal's SIGINT reached a run in progress too, which died with a KeyboardInterrupt traceback
    on the terminal. Runs of a deployment start as ``python -m prefect.engine`` through the
    runner's ``EngineCommandStarter``: it is given ``isolate_process_group=True`` (the option
    Prefect's own workers use), so the run has a session of its own and the runner ends it on
    shutdown. Runs of an in-memory flow start through ``run_flow_in_subprocess`` (multiprocessing,
    no such option): they are spawned with SIGINT ignored, a disposition that survives fork and
    exec and that Python keeps. Prefect names these module-level references as the places to patch."""
    import signal

    from prefect.runner import _starter_direct
    from prefect.runner import runner as runner_module

    direct: Any = _starter_direct  # modules Prefect documents as the place to patch; not typed for it
    engine: Any = runner_module
    original_spawn = direct.run_flow_in_subprocess
    original_starter = engine.EngineCommandStarter

    def spawn_ignoring_ctrl_c(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
            return original_spawn(*args, **kwargs)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return original_spawn(*args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, previous)

    def isolated_starter(*args: Any, **kwargs: Any) -> Any:
        return original_starter(*args, **{**kwargs, "isolate_process_group": True})

    direct.run_flow_in_subprocess = spawn_ignoring_ctrl_c
    engine.EngineCommandStarter = isolated_starter
    try:
        yield
    finally:
        direct.run_flow_in_subprocess = original_spawn
        engine.EngineCommandStarter = original_starter


@app.command(rich_help_panel=PANEL, short_help="Keep the pipeline running: serve the flows with their schedules.")
def serve(
    interval: Annotated[int, typer.Option(min=10, help="Seconds between pipeline passes.")] = 300,
    dispatch_interval: Annotated[int, typer.Option(min=10, help="Seconds between outbox sends.")] = 60,
) -> None:
    """Keep the pipeline running on this machine: serve the flows as Prefect deployments with their
    schedules (pipeline every --interval, dispatch every --dispatch-interval; intake, followups and
    advance on demand). Without PREFECT_API_URL a local Prefect server is started for the purpose
    (and stopped on exit). Stop with Ctrl-C."""
    from flows import prefect_settings
    from flows.fleet import HEARTBEAT_SECONDS

    # served runs report they are alive, so the zombie automation can tell a dead one
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))
    prefect_settings.apply(logging_level="INFO")
    from flows import bootstrap
    from flows.settings import load_settings
    from flows.views import console

    err = console(stderr=True)
    settings = load_settings()
    server = _start_local_server(settings.home / "prefect-server.log", err) \
        if not os.environ.get("PREFECT_API_URL") else None
    try:
        bootstrap.current(settings)  # fail early, with a clear message, on bad settings or an unreachable database
        _install_automations(err)
        _serve_deployments(interval, dispatch_interval)  # returns once Prefect has taken the Ctrl-C
        err.print("stopped.")
    except KeyboardInterrupt:
        err.print("stopped.")
    finally:
        if server is not None:
            _stop(server)
