"""``ldflow analytics``: the pipeline's figures from the audit history (text, ``--json``, ``--csv``)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from flows.cli.common import open_app, print_json
from states.errors import FieldError, InvalidInput

app = typer.Typer()


@app.command(rich_help_panel="Reading", short_help="Pipeline analytics: funnel, redirect rate, cycle times, "
                                                   "measurement, outcomes, ROI.")
def analytics(
    date_from: Annotated[str | None, typer.Option("--from", help="Received on or after (YYYY-MM-DD, UTC).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Received on or before (YYYY-MM-DD, UTC).")] = None,
    sponsor: Annotated[str | None, typer.Option(
        help="Only this sponsor's requests (e-mail); with the list of their requests and results.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only requests this person owns work of (e-mail).")] = None,
    type_: Annotated[str | None, typer.Option(
        "--type", help="design, redirect, or a redirect kind (job_aid, tool_fix …).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The figures as JSON on stdout.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="The figures as CSV (section, key, measure, value).")]
    = False,
) -> None:
    """Funnel, redirect rate by kind and cause, cycle time per state (median, p90), trend by month,
    measurement, outcomes per level and sponsor, the ROI portfolio: computed from the audit history
    of the requests received in the date range. Department filters are not offered: the intake has none."""
    from flows import analytics as query
    from flows import analytics_text

    if as_json and as_csv:
        raise InvalidInput([FieldError("csv", "give --json or --csv, not both")])
    flt = query.analytics_filter(date_from=date_from, date_to=date_to, sponsor=sponsor, owner=owner, type_=type_)
    app = open_app()
    store, clocks = app.store, query.clocks_of(app.settings, app.now())
    view = query.sponsor_view(store, flt, clocks) if flt.sponsor else None
    figures = view["figures"] if view is not None else query.figures(store, flt, clocks)
    if as_json:
        print_json({**figures, "sponsor_requests": view["requests"]} if view is not None else figures)
    elif as_csv:
        sys.stdout.write(analytics_text.csv_text(figures))
    else:
        typer.echo(analytics_text.text(figures, view), nl=False)
