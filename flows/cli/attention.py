"""``ldflow attention``: what waits on a person (stalled checkpoints, SLA breaches and near-breaches)."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.common import JsonOpt, open_app, print_json

app = typer.Typer()

_LABEL = {"needs_review": "needs review", "breached": "SLA breached", "near": "SLA near breach"}


@app.command(rich_help_panel="Reading")
def attention(
    as_json: JsonOpt = False,
    owner: Annotated[str | None, typer.Option(help="Only the items of this L&D owner (e-mail).")] = None,
) -> None:
    """What waits on a person: checkpoints that need review (too late to send, or unanswered after the
    last reminder) and running SLA clocks past or near their breach (LDFLOW_SLA_POLICY)."""
    from flows import attention as attention_list
    from flows import sla
    from states.wording import plural, printable

    app_ = open_app()
    policy = sla.load_policy(app_.settings)
    items = attention_list.attention_list(app_, policy=policy)
    if owner:
        who = owner.strip().lower()
        items = [i for i in items if who in i.owners]
    if as_json:
        print_json({"policy": policy.source, "total": len(items), "items": [i.as_dict() for i in items]})
        return
    if not items:
        typer.echo(f"Nothing needs attention (SLA policy: {policy.source}).")
        return
    requests = len({i.request_id for i in items})
    typer.echo(f"{plural(len(items), 'item')} on {plural(requests, 'request')} need attention "
               f"(SLA policy: {printable(policy.source)}):")
    last = 0
    for item in items:
        if item.request_id != last:
            typer.echo(f"\n#{item.request_id} {printable(item.title)}")
            last = item.request_id
        typer.echo(f"  {_LABEL.get(item.status, item.status):<16} {printable(item.text)}")
