"""The reading commands: ``show``, ``list``, ``history``, ``export``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Annotated

import typer

from connectors.files import atomic_write
from flows.cli.common import IdArg, JsonOpt, choice, choices, open_app, output_file, print_json
from flows.vocabulary import ExportFormat, ExportRows, SortKey
from states.errors import FieldError, InvalidInput
from states.lifecycle import State
from states.wording import plural

app = typer.Typer()


@app.command(rich_help_panel="Reading")
def show(request_id: IdArg, as_json: JsonOpt = False) -> None:
    """Everything about one request: intake, diagnosis, plan, design/redirect, delivery, results."""
    request = open_app().service.show(request_id)
    if as_json:
        print_json(request.model_dump(mode="json"))
        return
    from flows import views

    views.console().print(views.request_view(request))


# --state and --sort are checked by the query, with the dates, so that one call names every wrong
# filter at once; their metavars list the choices.
@app.command("list", rich_help_panel="Reading")
def list_requests(
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", metavar=f"[{choices(State)}]", help="Only requests in this state (repeatable).")] = None,
    requester: Annotated[str | None, typer.Option(help="Only this requester (e-mail).")] = None,
    sponsor: Annotated[str | None, typer.Option(help="Only this sponsor (e-mail).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Created on or after (YYYY-MM-DD, UTC).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Created on or before (YYYY-MM-DD, UTC).")] = None,
    sort: Annotated[str, typer.Option(
        metavar=f"[-]{{{choices(SortKey)}}}", help="Sort key; prefix '-' for descending (e.g. -updated).")] = "id",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Rows per page.")] = 20,
    page: Annotated[int, typer.Option(min=1, help="Page number (from 1).")] = 1,
    offset: Annotated[int | None, typer.Option(min=0, help="Skip this many rows (instead of --page).")] = None,
    attention: Annotated[bool, typer.Option(
        "--attention", help="Only requests with an attention item (see `ldflow attention`).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List requests: filter by state, requester, sponsor, creation dates; sorted; paged."""
    from flows.queries import request_filter

    start = offset if offset is not None else (page - 1) * limit
    flt = request_filter(states=state or (), requester=requester, sponsor=sponsor, created_from=date_from,
                         created_to=date_to, sort=sort, limit=limit, offset=start)
    app_ = open_app()
    if attention:
        from flows.attention import attention_rows

        rows, total = attention_rows(app_, flt)
    else:
        rows, total = app_.service.list(flt)
    pages = max(1, -(-total // limit))
    current = start // limit + 1
    if as_json:
        print_json({"total": total, "page": current, "pages": pages, "limit": limit, "offset": start,
                    "items": [{"id": r.id, "title": r.title, "state": r.state, "version": r.version,
                               "requester": r.requester, "sponsor": r.sponsor,
                               "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}
                              for r in rows]})
        return
    from flows import views

    views.console().print(views.list_table(rows, current, pages, total))


@app.command(rich_help_panel="Reading")
def history(request_id: IdArg, as_json: JsonOpt = False) -> None:
    """A request's history as a readable timeline (UTC, actor, event, summary)."""
    records = open_app().service.history(request_id)
    if as_json:
        import dataclasses

        print_json([dataclasses.asdict(r) for r in records])
        return
    from flows.timeline import timeline
    from flows.views import console

    console().print(timeline(request_id, records))


@app.command(rich_help_panel="Reading")
def export(
    request_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="One request (default: all).",
                                                     show_default=False)] = None,
    format: Annotated[ExportFormat, typer.Option(
        "--format", help="Documents with their history (json), or one row per request (csv).",
        parser=choice(ExportFormat, "format"))] = ExportFormat.JSON,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file (default stdout): 0600, whole or not at all; never over the "
                               "database or an existing file of the data directory.")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="The JSON export (the same as --format json).")] = False,
    rows: Annotated[ExportRows, typer.Option(
        "--rows", help="What a row is: a request (its document and history), a survey answer, or a checkpoint's "
                       "result (with n and the response rate).", parser=choice(ExportRows, "rows"))]
    = ExportRows.REQUESTS,
) -> None:
    """Export one request or all: JSON (document + history) or CSV (one row per request)."""
    from flows import exports
    from flows.queries import requests_to_export

    if as_json and format != ExportFormat.JSON:
        raise InvalidInput([FieldError("json", f"--json is the JSON export; it does not go with --format {format}")])

    app_ = open_app()
    target = output_file(output, app_.settings) if output is not None else None
    requests = requests_to_export(app_, request_id)

    def write(stream: IO[str]) -> int:
        if rows == ExportRows.ANSWERS:
            return exports.export_rows(stream, exports.answer_rows(requests), exports.ANSWER_COLUMNS,
                                       format == ExportFormat.CSV)
        if rows == ExportRows.CHECKPOINTS:
            return exports.export_rows(stream, exports.checkpoint_rows(requests), exports.CHECKPOINT_COLUMNS,
                                       format == ExportFormat.CSV)
        return (exports.export_json(stream, requests, app_.service.history) if format == ExportFormat.JSON
                else exports.export_csv(stream, requests))

    if target is None:
        write(sys.stdout)
        return
    counted: list[int] = []
    atomic_write(target, lambda stream: counted.append(write(stream)))  # 0600, temp file + rename
    count = counted[0]
    if output is not None:
        what = {ExportRows.ANSWERS: "answer", ExportRows.CHECKPOINTS: "checkpoint"}.get(rows, "request")
        typer.echo(f"exported {plural(count, what)} to {output}", err=True)
