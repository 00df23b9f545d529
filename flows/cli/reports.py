"""``ldflow report`` and ``ldflow export-xapi``: what goes to the stakeholders and to an LRS."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from connectors.files import atomic_write, atomic_write_bytes
from flows.cli.common import choice, open_app, output_file
from flows.vocabulary import ReportFormat
from states.errors import FieldError, InvalidInput

app = typer.Typer()


@app.command(rich_help_panel="Reading",
             short_help="The stakeholder report of a measured request (text, HTML or PDF).")
def report(
    request_id: Annotated[int, typer.Argument(metavar="ID", help="Request id.", show_default=False)],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML report to this file.")] = None,
    format: Annotated[ReportFormat, typer.Option(
        "--format", help="What to print.", parser=choice(ReportFormat, "format"))] = ReportFormat.TEXT,
    as_json: Annotated[bool, typer.Option(
        "--json", help="The report's data as JSON on stdout (results, ROI, touchpoints, recipients).")] = False,
    pdf: Annotated[bool, typer.Option(
        "--pdf", help="The report as a PDF (what the acknowledgement mail attaches); needs --output.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the report to this file instead of stdout: 0600, whole or not at all; never "
                               "over the database or an existing file of the data directory.")] = None,
) -> None:
    """The stakeholder report of a measured request: results against baseline and target, ROI,
    recap, action plan and contributions (what `acknowledge` sends to the stakeholders).
    `--pdf -o FILE` writes it as the PDF the acknowledgement mail carries."""
    from flows.queries import stakeholder_report, stakeholder_report_pdf

    if as_json and format != ReportFormat.TEXT:
        raise InvalidInput([FieldError("json", f"--json prints the data; it does not go with --format {format}")])
    if pdf and (as_json or format != ReportFormat.TEXT):
        raise InvalidInput([FieldError("pdf", "--pdf writes the PDF; it does not go with --json or --format")])
    if pdf and output is None:
        raise InvalidInput([FieldError("output", "--pdf needs --output FILE (a PDF is not printed on the terminal)")])
    app_ = open_app()
    target = output_file(output, app_.settings) if output is not None else None
    html_target = output_file(html, app_.settings) if html is not None else None
    if pdf and target is not None:
        data = stakeholder_report_pdf(app_, request_id)
        atomic_write_bytes(target, data)
        typer.echo(f"PDF report written to {output} ({len(data) // 1024 + 1} KB)", err=True)
        if html_target is None:
            return
    built = stakeholder_report(app_, request_id)
    if not pdf:
        shown = json.dumps(built.data, indent=2, ensure_ascii=False, default=str) + "\n" if as_json \
            else built.html if format == ReportFormat.HTML else built.text
        if target is None:
            sys.stdout.write(shown)
        else:
            atomic_write(target, lambda stream: stream.write(shown))
            typer.echo(f"report written to {output}", err=True)
    if html is not None and html_target is not None:
        atomic_write(html_target, lambda stream: stream.write(built.html))
        typer.echo(f"HTML report written to {html}", err=True)


@app.command("export-xapi", rich_help_panel="Reading",
             short_help="xAPI 1.0.3 statements for delivered and measured events.")
def export_xapi(
    request_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="One request (default: all).",
                                                     show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file (default stdout): 0600, whole or not at all; never over the "
                               "database or an existing file of the data directory.")]
    = None,
) -> None:
    """xAPI 1.0.3 statements (JSON array) for delivered and measured events; one registration per request."""
    from flows.queries import xapi_statements

    app_ = open_app()
    target = output_file(output, app_.settings) if output is not None else None
    data = json.dumps(xapi_statements(app_, request_id), indent=2, ensure_ascii=False) + "\n"
    if output is None or target is None:
        sys.stdout.write(data)
        return
    atomic_write(target, lambda stream: stream.write(data))
    typer.echo(f"exported xAPI statements to {output}", err=True)
