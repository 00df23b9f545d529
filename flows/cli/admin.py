"""``ldflow audit``, ``ldflow db`` and ``ldflow demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import EXIT_AUDIT_BROKEN, JsonOpt, open_app, print_json
from states.wording import plural

app = typer.Typer()
audit_app = typer.Typer(help="The tamper-evident audit history.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Walk the hash chain; exit 6 and name the first broken link if it was tampered with."""
    report = open_app().service.verify()
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        typer.echo(f"audit chain ok: {plural(report.events_checked, 'event')}, "
                   f"{plural(report.requests_checked, 'request')} checked")
    else:
        where = f"event {report.broken_seq}" + (f" (request {report.request_id})" if report.request_id else "")
        typer.echo(f"audit chain BROKEN at {where}: {report.reason}", err=True)
    if not report.ok:
        raise typer.Exit(EXIT_AUDIT_BROKEN)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Apply the database migrations (Alembic) up to the newest revision."""
    from flows.bootstrap import safe_url, upgrade_schema

    app_ = open_app(migrate=False)
    before, after = upgrade_schema(app_, revision)
    state = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    typer.echo(f"database {safe_url(app_.settings.url)}: {state} revision {after}")


@app.command(rich_help_panel="Other")
def demo(
    home: Annotated[Path | None, typer.Option(help="Data directory for the demo (default: ./.ldflow-demo).")]
    = None,
    fresh: Annotated[bool, typer.Option("--fresh/--keep", help="Start from an empty demo directory.")] = True,
    web: Annotated[bool, typer.Option("--web", help="Then serve the web app over the demo's data (a demo admin "
                                                    "account is made; its password is printed once) until Ctrl-C.")]
    = False,
) -> None:
    """Take sample requests through the whole lifecycle (SQLite, local mail folder, simulated clock)."""
    from flows import demo as demo_module

    code = demo_module.main(home, fresh=fresh)
    if web and code == 0:
        code = demo_module.serve_web(home)
    raise typer.Exit(code)
