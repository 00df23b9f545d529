"""Correcting a request and re-opening one: ``ldflow amend`` and ``ldflow reopen``.

Both take their input from a YAML/JSON file (``-f FILE``, ``-`` for stdin) and/or flags (flags
win), an ``--actor`` and an optional ``--if-version N``, and call the request service.
"""

from __future__ import annotations

from typing import Annotated, Any

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
)
from states.errors import FieldError, InvalidInput

app = typer.Typer()


def _item_flags(item: str | None, owner_name: str | None, owner_email: str | None,
                respondent: str | None) -> dict[str, Any]:
    """The ``--item`` flags as dotted fields (``items.m1.owner.email`` …)."""
    given = {"owner.name": owner_name, "owner.email": owner_email, "respondent": respondent}
    if item is None:
        if any(v is not None for v in given.values()):
            raise InvalidInput([FieldError("item", "give the plan item's id (--item m1) to change its people")])
        return {}
    return {f"items.{item}.{name}": value for name, value in given.items()}


def _companion_flags(piece: str | None, owner_name: str | None, owner_email: str | None) -> dict[str, Any]:
    """The ``--companion`` flags as dotted fields (``companions.c1.owner.email`` …)."""
    given = {"owner.name": owner_name, "owner.email": owner_email}
    if piece is None:
        if any(v is not None for v in given.values()):
            raise InvalidInput([FieldError("companion", "give the companion piece's id (--companion c1) to change "
                                                        "its owner")])
        return {}
    return {f"companions.{piece}.{name}": value for name, value in given.items()}


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def amend(
    request_id: IdArg,
    file: FileOpt = None,
    reason: Annotated[str | None, typer.Option(help="Why the request is amended (required).")] = None,
    title: Annotated[str | None, typer.Option(help="The corrected title.")] = None,
    requester_name: Annotated[str | None, typer.Option(help="The requester's name.")] = None,
    requester_email: Annotated[str | None, typer.Option(help="The requester's e-mail.")] = None,
    sponsor_name: Annotated[str | None, typer.Option(help="The new sponsor's name.")] = None,
    sponsor_email: Annotated[str | None, typer.Option(help="The new sponsor's e-mail.")] = None,
    item: Annotated[str | None, typer.Option(help="A plan item's id, for the --item-… flags.")] = None,
    item_owner_name: Annotated[str | None, typer.Option(help="The item's new owner's name.")] = None,
    item_owner_email: Annotated[str | None, typer.Option(help="The item's new owner's e-mail.")] = None,
    respondent: Annotated[str | None, typer.Option(
        metavar="learners|managers|sponsor|stakeholders|owner",
        help="Who answers the item's survey (the older learner, manager, stakeholder are still read).")] = None,
    redirect_owner_name: Annotated[str | None, typer.Option(help="The redirect's new owner's name.")] = None,
    redirect_owner_email: Annotated[str | None, typer.Option(help="The redirect's new owner's e-mail.")] = None,
    companion: Annotated[str | None, typer.Option(help="An open companion piece's id, for the --companion-… "
                                                       "flags.")] = None,
    companion_owner_name: Annotated[str | None, typer.Option(help="The piece's new owner's name.")] = None,
    companion_owner_email: Annotated[str | None, typer.Option(help="The piece's new owner's e-mail.")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Correct an open request, with a reason: title, requester, sponsor, stakeholders, audience,
    business goal (-f), a plan item's owner or respondent, the redirect's owner, an open companion
    piece's owner (told what they own, as the redirect's new owner is). The history keeps
    each change's before and after. A new sponsor before plan approval becomes the approver (and is
    sent the approval request); after approval the approval stands."""
    data, source = merge_input(file, reason=reason, title=title, **{
        "requester.name": requester_name, "requester.email": requester_email,
        "sponsor.name": sponsor_name, "sponsor.email": sponsor_email,
        "redirect_owner.name": redirect_owner_name, "redirect_owner.email": redirect_owner_email,
        **_item_flags(item, item_owner_name, item_owner_email, respondent),
        **_companion_flags(companion, companion_owner_name, companion_owner_email)})
    service = open_app().service
    request = service.amend(request_id, data, actor(who), if_version, source)
    changes = service.history(request_id)[-1].payload.get("changes", {})  # the amended event just written
    done(request, as_json, f"amended {', '.join(changes)}", changes=changes)


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def reopen(
    request_id: IdArg,
    reason: Annotated[str | None, typer.Option(help="Why the request is re-opened (required).")] = None,
    file: FileOpt = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-open a declined or cancelled request, with a reason: it goes back to received (diagnose it
    again); its plan, intake and history stay. Cancelled sessions and checkpoints stay closed."""
    data, source = merge_input(file, reason=reason)
    request = open_app().service.reopen(request_id, data, actor(who), if_version, source)
    done(request, as_json, "re-opened")
