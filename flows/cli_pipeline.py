"""Pipeline commands of the CLI: ``run``, ``serve``, ``report``, ``clock``, ``export-xapi``.

Registered by ``flows.cli``. Imports stay inside the commands: Prefect and
SQLAlchemy cost about a second to import and ``ldflow --help`` must start fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from states.errors import FieldError, InvalidInput

STEPS = ("pipeline", "intake", "followups", "advance", "dispatch")
PANEL = "Pipeline"


def _cli() -> Any:
    from flows import cli

    return cli


def _prefect_env(verbose: bool) -> None:
    """Quiet, self-contained Prefect defaults (before Prefect is imported); explicit settings win."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _runtime() -> Any:
    cli = _cli()
    settings = cli._settings()
    from flows import pipeline

    return cli._db_call(settings, lambda: pipeline.runtime(settings))


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


def run(
    flow_name: Annotated[str, typer.Option("--flow", help=f"Which flow: {', '.join(STEPS)}.")] = "pipeline",
    batch: Annotated[int | None, typer.Option(min=1, help="Batch size per database round (default per step).")]
    = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's flow and task logs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """One pass of the pipeline as a Prefect flow run: take in new requests, fire due follow-ups,
    measure requests whose checkpoints are closed, send the outbox. No server needed: without
    PREFECT_API_URL Prefect starts a temporary local one (first start ~15 s)."""
    if flow_name not in STEPS:
        raise InvalidInput([FieldError("flow", f"{flow_name!r} is not one of {', '.join(STEPS)}")])
    _prefect_env(verbose)
    from flows.views import console

    err = console(stderr=True)
    rt = _runtime()
    if not os.environ.get("PREFECT_API_URL"):
        err.print("[dim]starting a temporary Prefect server (no PREFECT_API_URL set; ~15 s the first time)…[/]")
    from flows import pipeline

    progress = _Progress()
    pipeline.set_progress(progress)
    params: dict[str, Any] = {}
    if batch is not None:
        params = ({"followups_batch": batch, "dispatch_batch": batch, "intake_batch": batch}
                  if flow_name == "pipeline" else {"batch": batch})
    try:
        result = pipeline.FLOWS[flow_name](**params)
    except Exception as exc:  # a failed flow run: say so without a traceback
        if os.environ.get("LDFLOW_DEBUG"):
            raise
        err.print(f"[red]error:[/] the {flow_name} flow run failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    finally:
        progress.stop()
        pipeline.set_progress(None)
    if "steps" not in result:
        result = {"steps": [result], "errors_total": result["errors_total"]}
    result["now"] = rt.now().isoformat()
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        out = console()
        out.print(_summary_table(result))
        for step in result["steps"]:
            for error in step["errors"][:10]:
                out.print(f"[yellow]{step['step']}:[/] {error}", markup=True, highlight=False)
    # Problems with single items (a quarantined file, a refused recipient) are recorded and shown
    # above; they do not make the pass a failure. A failed flow run exits 1 (see above).


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_local_server(log_path: Path, err: Any) -> Any:
    """A Prefect server for this machine (the temporary in-process one has no scheduler).

    It runs in its own session, so Ctrl-C reaches ``serve`` first, which pauses its deployments
    and then stops the server.
    """
    import subprocess
    import time
    import urllib.request

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    err.print(f"[dim]starting a local Prefect server on {url} (log: {log_path})…[/]")
    deadline = time.monotonic() + float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _cli().ConfigurationError(f"the local Prefect server stopped (exit {proc.returncode}); "
                                            f"see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    os.environ["PREFECT_API_URL"] = url
                    err.print(f"Prefect UI: http://127.0.0.1:{port}")
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise _cli().ConfigurationError(f"the local Prefect server did not answer within the timeout; see {log_path}")


def serve(
    interval: Annotated[int, typer.Option(min=10, help="Seconds between pipeline passes.")] = 300,
    dispatch_interval: Annotated[int, typer.Option(min=10, help="Seconds between outbox sends.")] = 60,
) -> None:
    """Keep the pipeline running on this machine: serve the flows as Prefect deployments with their
    schedules (pipeline every --interval, dispatch every --dispatch-interval; intake, followups and
    advance on demand). Without PREFECT_API_URL a local Prefect server is started for the purpose
    (and stopped on exit). Stop with Ctrl-C."""
    _prefect_env(True)
    from flows.views import console

    err = console(stderr=True)
    import sqlalchemy

    if tuple(int(x) for x in sqlalchemy.__version__.split(".")[:2]) >= (2, 1):
        # Measured: Prefect 3.8.8's scheduler service fails on SQLAlchemy 2.1 ("Can't evaluate bulk DML
        # statement") and creates no scheduled runs; on 2.0.x it works.
        err.print(f"[yellow]warning:[/] SQLAlchemy {sqlalchemy.__version__} is installed: the Prefect 3.8.8 "
                  "server cannot create scheduled runs with it (install 'sqlalchemy>=2.0.30,<2.1' where the "
                  "Prefect server runs); runs started by hand or by event triggers still work.")
    server = None
    if not os.environ.get("PREFECT_API_URL"):  # before Prefect is imported: it reads the URL once
        server = _start_local_server(_cli()._settings().home / "prefect-server.log", err)
    try:
        _runtime()  # fail early, with a clear message, on bad settings or an unreachable database
        from prefect import serve as prefect_serve

        from flows import pipeline

        deployments = [
            pipeline.pipeline.to_deployment(name="ldflow-pipeline", paused=False, interval=interval,
                                            description="One pass of the whole pipeline."),
            pipeline.dispatch.to_deployment(name="ldflow-dispatch", paused=False, interval=dispatch_interval,
                                            description="Send what the outbox holds."),
            pipeline.intake.to_deployment(name="ldflow-intake", paused=False,
                                          description="Take in the drop folder / inbox."),
            pipeline.followups.to_deployment(name="ldflow-followups", paused=False,
                                             description="Fire due checkpoints."),
            pipeline.advance.to_deployment(name="ldflow-advance", paused=False,
                                           description="Measure closed requests."),
        ]
        prefect_serve(*deployments)
    except KeyboardInterrupt:
        err.print("stopped.")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except Exception:
                server.kill()


def report(
    request_id: Annotated[int, typer.Argument(metavar="ID", help="Request id.", show_default=False)],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML report to this file.")] = None,
    format: Annotated[str, typer.Option("--format", help="What to print: text or html.")] = "text",
) -> None:
    """The stakeholder report of a measured request: results against baseline and target, ROI,
    recap, action plan and contributions (what `acknowledge` sends to the stakeholders)."""
    if format not in ("text", "html"):
        raise InvalidInput([FieldError("format", f"{format!r} is not text or html")])
    from flows import report as report_module

    ctx = _cli()._App()
    built = report_module.build(ctx.service.show(request_id), templates_dir=ctx.settings.templates_dir)
    sys.stdout.write(built.html if format == "html" else built.text)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(built.html, encoding="utf-8")
        typer.echo(f"HTML report written to {html}", err=True)


clock_app = typer.Typer(help="The simulated clock (demo and tests only: needs LDFLOW_SIMULATED_CLOCK).",
                        no_args_is_help=True)


def _file_clock() -> Any:
    from flows.clock import FileClock

    settings = _cli()._settings()
    if not settings.simulated_clock:
        raise InvalidInput([FieldError("LDFLOW_SIMULATED_CLOCK", "the simulated clock is off: set it to a file "
                                       "path to simulate time (demo and tests only, never in production)")])
    return FileClock(settings.simulated_clock)


def _show(at: Any) -> None:
    typer.echo(f"simulated now: {at.isoformat()}")


@clock_app.command("show")
def clock_show() -> None:
    """Print the simulated now (UTC)."""
    _show(_file_clock().now())


@clock_app.command("advance")
def clock_advance(
    by: Annotated[str, typer.Argument(metavar="DURATION", help="ISO 8601 duration (P30D, PT6H) or days (30).")],
) -> None:
    """Move the simulated clock forward."""
    from states.durations import parse_duration

    text = by.strip()
    if text.isdigit():
        text = f"P{text}D"
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise InvalidInput([FieldError("DURATION", str(exc))]) from None
    clock = _file_clock()
    at = duration.after(clock.now())
    clock.set(at)
    _show(at)


@clock_app.command("set")
def clock_set(
    at: Annotated[str, typer.Argument(metavar="TIME", help="ISO 8601 time with offset, e.g. 2026-05-01T09:00Z.")],
) -> None:
    """Set the simulated clock to a time (with a UTC offset)."""
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput([FieldError("TIME", f"{at!r} is not an ISO 8601 time")]) from None
    if parsed.tzinfo is None:
        raise InvalidInput([FieldError("TIME", "give a UTC offset (e.g. 2026-05-01T09:00Z): no floating times")])
    clock = _file_clock()
    clock.set(parsed)
    _show(clock.now())


def export_xapi(
    request_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="One request (default: all).",
                                                     show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default stdout).")]
    = None,
) -> None:
    """xAPI 1.0.3 statements (JSON array) for delivered and measured events; one registration per request."""
    from flows import xapi

    ctx = _cli()._App()
    data = json.dumps(xapi.statements(ctx.service, request_id), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(data)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    tmp.write_text(data, encoding="utf-8")
    tmp.replace(output)
    typer.echo(f"exported xAPI statements to {output}", err=True)


def register(app: Any) -> None:
    """Add the pipeline commands to the Typer ``app``."""
    app.command("run", rich_help_panel=PANEL, short_help="One pass of the pipeline (a Prefect flow run).")(run)
    app.command("serve", rich_help_panel=PANEL,
                short_help="Keep the pipeline running: serve the flows with their schedules.")(serve)
    app.command("report", rich_help_panel="Reading",
                short_help="The stakeholder report of a measured request (text or HTML).")(report)
    app.command("export-xapi", rich_help_panel="Reading",
                short_help="xAPI 1.0.3 statements for delivered and measured events.")(export_xapi)
    app.add_typer(clock_app, name="clock", rich_help_panel="Other")
