"""``ldflow audit``, ``ldflow db`` and ``ldflow demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from connectors.files import atomic_write
from connectors.ports import VerifyReport
from flows.cli.common import EXIT_AUDIT_BROKEN, JsonOpt, open_app, output_file, print_json
from states.errors import FieldError, InvalidInput
from states.wording import plural

app = typer.Typer()
audit_app = typer.Typer(help="The tamper-evident audit history.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def _report(report: VerifyReport, as_json: bool, what: str) -> None:
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        typer.echo(f"{what} ok: {plural(report.events_checked, 'event')}, "
                   f"{plural(report.requests_checked, 'request')}, "
                   f"{plural(report.checkpoints_checked, 'signed checkpoint')} checked")
    else:
        if report.checkpoint is not None and report.broken_rseq is None:
            where = f"checkpoint {report.checkpoint}"
        elif report.request_id is not None:
            where = f"request {report.request_id}" + (f" event {report.broken_rseq}" if report.broken_rseq else "")
            where += f" (seq {report.broken_seq})" if report.broken_seq else ""
        else:
            where = "the bundle"
        typer.echo(f"{what} BROKEN at {where}: {report.reason}", err=True)
    if not report.ok:
        raise typer.Exit(EXIT_AUDIT_BROKEN)


@audit_app.command("verify")
def audit_verify(
    as_json: JsonOpt = False,
    bundle: Annotated[Path | None, typer.Option(
        "--bundle", help="Verify this bundle (`ldflow audit export`) offline, without the database.")] = None,
    key: Annotated[str | None, typer.Option(
        "--key", help="With --bundle: the public key (hex, `ldflow audit key`) the checkpoints must be signed "
                      "with (default: the one the bundle names).")] = None,
) -> None:
    """Walk every request's hash chain and check the signed checkpoints; exit 6 naming the first broken event."""
    if bundle is not None:
        from connectors import audit_bundle

        try:
            report, used = audit_bundle.verify(bundle, key.strip().lower() if key else None)
        except audit_bundle.BundleError as exc:
            raise InvalidInput([FieldError("bundle", str(exc))]) from None
        if not as_json:
            typer.echo(f"bundle {bundle}, public key {used}" + ("" if key else " (as the bundle names it)"))
        _report(report, as_json, "audit bundle")
        return
    if key is not None:
        raise InvalidInput([FieldError("key", "--key goes with --bundle (the database is checked with its own key)")])
    _report(open_app().service.verify(), as_json, "audit chains")


@audit_app.command("checkpoint")
def audit_checkpoint(as_json: JsonOpt = False) -> None:
    """Sign the heads of every chain (Ed25519) as the next checkpoint; nothing when nothing changed."""
    cp = open_app().service.checkpoint()
    body = json.loads(cp.body) if cp else None
    if as_json:
        print_json({"written": cp is not None, "checkpoint": body})
    elif body is None:
        typer.echo("no new events since the latest checkpoint: nothing to sign")
    else:
        typer.echo(f"checkpoint {body['n']} signed: {plural(body['events'], 'event')} in "
                   f"{plural(body['requests'], 'request')}, root {body['root']}")


@audit_app.command("key")
def audit_key() -> None:
    """Print the checkpoints' public key (hex, Ed25519): keep it somewhere the database is not."""
    typer.echo(open_app().store.public_key() or "")


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="The bundle file (JSON Lines): 0600, whole or not at all; never over the database "
                               "or an existing file of the data directory.")],
) -> None:
    """Write every event, every checkpoint (a fresh one first) and the public key to a bundle."""
    app_ = open_app()
    target = output_file(output, app_.settings)
    counted: list[tuple[int, int]] = []
    atomic_write(target, lambda stream: counted.append(app_.service.export_audit(stream)))
    events, checkpoints = counted[0]
    typer.echo(f"exported {plural(events, 'event')} and {plural(checkpoints, 'signed checkpoint')} to {output}",
               err=True)


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
