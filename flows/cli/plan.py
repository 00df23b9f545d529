"""``ldflow plan``: draft, approve and show the measurement plan (revised in new versions until measured)."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli.common import (
    ActorOpt,
    FileOpt,
    IdArg,
    IfVersionOpt,
    JsonOpt,
    WriteCommand,
    actor,
    done,
    merge_input,
    open_app,
    print_json,
)
from states.wording import plural

app = typer.Typer(help="Draft, approve, revise and show the measurement plan (a new version needs a new approval).",
                  no_args_is_help=True)


@app.command("draft", cls=WriteCommand)
def plan_draft(
    request_id: IdArg,
    file: Annotated[str, typer.Option("--file", "-f", metavar="PATH",
                                      help="YAML or JSON measurement plan ('-' reads stdin).")],
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Draft the measurement plan, or (once approved) a new version of it; either awaits the sponsor's
    approval, and until then the approved version stays in force."""
    data, source = merge_input(file)
    request = open_app().service.draft_plan(request_id, data, actor(who), if_version, source)
    sponsor = request.intake.sponsor.email
    warnings = list(request.plan_review)
    if request.plan_draft is not None:
        items = plural(len(request.plan_draft.plan.items), "item")
        done(request, as_json, f"measurement plan v{request.plan_draft.version} drafted ({items}); awaiting "
             f"approval by {sponsor}; v{request.plan_version} stays in force until then", warnings=warnings)
    else:
        assert request.plan is not None
        items = plural(len(request.plan.items), "item")
        done(request, as_json, f"measurement plan drafted ({items}); awaiting approval by {sponsor}",
             warnings=warnings)
    if warnings and not as_json:  # warnings, not refusals: the plan is drafted; the sponsor sees them too
        typer.echo(f"plan review: {plural(len(warnings), 'warning')} (also in the sponsor's approval request):",
                   err=True)
        for warning in warnings:
            typer.echo(f"  - warning: {warning}", err=True)


@app.command("approve", cls=WriteCommand)
def plan_approve(
    request_id: IdArg,
    by: Annotated[str | None, typer.Option("--by", help="The approver's e-mail (must be the sponsor).")] = None,
    comment: Annotated[str | None, typer.Option(help="The approver's comment.")] = None,
    reason: Annotated[str | None, typer.Option(
        help="Why an admin records the sponsor's approval on their behalf (needed when --actor is not --by).")] = None,
    file: FileOpt = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the sponsor's approval of the drafted measurement plan. The actor is the sponsor, or an
    admin account (``ldflow users``) recording it on their behalf with --reason (shown as such in the
    history and the report)."""
    data, source = merge_input(file, approver=by, comment=comment, reason=reason)
    app = open_app()
    who_acts = actor(who)
    request = app.service.approve_plan(request_id, data, who_acts, if_version, source,
                                       admin=app.accounts.is_admin(who_acts))
    version = f" v{request.plan_version}" if request.plan_version > 1 else ""
    done(request, as_json, f"measurement plan{version} approved by {request.plan_approved_by}")


@app.command("show")
def plan_show(request_id: IdArg, as_json: JsonOpt = False) -> None:
    """Show the measurement plan and its approval."""
    request = open_app().service.show(request_id)
    if as_json:
        print_json({"id": request.id, "plan": request.plan.model_dump(mode="json") if request.plan else None,
                    "version": request.plan_version, "approved_by": request.plan_approved_by,
                    "draft": request.plan_draft.model_dump(mode="json") if request.plan_draft else None,
                    "approved_at": request.plan_approved_at.isoformat() if request.plan_approved_at else None})
        return
    from flows import views

    views.console().print(views.plan_panel(request))
