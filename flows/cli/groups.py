"""Respondent groups: ``roster`` (give or change the delivery's learners) and ``results`` (each
checkpoint's result with n and the response rate beside every survey result)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flows.cli.common import ActorOpt, IdArg, IfVersionOpt, JsonOpt, WriteCommand, actor, done, open_app, print_json
from states.errors import FieldError, InvalidInput
from states.wording import plural

app = typer.Typer()


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def roster(
    request_id: IdArg,
    file: Annotated[str | None, typer.Option(
        "--file", "-f", help="roster.csv (name,email,team,manager_name,manager_email) or YAML/JSON "
                             "(learners, teams).")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give or change the delivery's roster: the learners surveyed and their managers."""
    from connectors.rosters import load_roster

    if not file:
        raise InvalidInput([FieldError("file", "give the roster with -f roster.csv (or .yaml/.json)")])
    data, source = load_roster(file)
    request = open_app().service.set_roster(request_id, data, actor(who), if_version, source)
    assert request.roster is not None
    done(request, as_json, f"roster: {plural(len(request.roster.learners), 'learner')}")


def num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def result_rows(request: Any) -> list[dict[str, Any]]:
    """One row per checkpoint: its status and value, and for a survey n, asked, rate, mean, median, share."""
    from states.surveys import current_tally

    items = {i.id: i for i in request.plan.items} if request.plan is not None else {}
    rows = []
    for c in request.checkpoints:
        item = items.get(c.item_id)
        t = c.tally if c.tally is not None else (current_tally(c, item) if c.asked and item else None)
        rows.append({"checkpoint": c.key, "item": c.item_id, "metric": item.metric if item else "",
                     "unit": item.unit if item else "", "status": c.status.value, "value": c.value,
                     "missed_reason": c.missed_reason,
                     **({"responses": t.n, "asked": t.asked, "response_rate": t.response_rate, "mean": t.mean,
                         "median": t.median, "share_at_or_above": t.share_at_or_above, "threshold": t.threshold}
                        if t is not None else {})})
    return rows


@app.command(rich_help_panel="Reading")
def results(request_id: IdArg, as_json: JsonOpt = False) -> None:
    """Each checkpoint's result; a survey's with n, the response rate, mean, median and share."""
    request = open_app().service.show(request_id)
    rows = result_rows(request)
    if as_json:
        print_json({"id": request_id, "checkpoints": rows})
        return
    if not rows:
        typer.echo(f"request {request_id}: no checkpoints yet (they are scheduled at delivery)")
        return
    for r in rows:
        line = f"{r['checkpoint']}  {r['status']:<12} {num(r['value'])} {r['unit']}".rstrip()
        if "responses" in r:
            line += (f"  n={r['responses']} of {r['asked']} ({r['response_rate']:g}%), mean {num(r['mean'])}, "
                     f"median {num(r['median'])}")
            if r["threshold"] is not None:
                line += f", {num(r['share_at_or_above'])}% at or above {r['threshold']:g}"
        if r["missed_reason"]:
            line += f"  missed: {r['missed_reason']}"
        typer.echo(line)
