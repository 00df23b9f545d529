"""A solution mix: ``ldflow companion add|done|drop ID …`` (companion pieces next to the main path).

``add`` takes the piece from a YAML/JSON file (``-f FILE``, ``-`` for stdin) and/or flags (flags win):
its kind (a redirect kind, or ``design`` for a small designed piece), what it is, its owner (name and
e-mail) and its due date; the owner is mailed what they own and by when, and reminded
``LDFLOW_OWNER_REMINDER_DAYS`` before the date by the pipeline's follow-ups.
"""

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
)
from states.kinds import CompanionKind

app = typer.Typer(help="A solution mix: companion pieces next to the main path (design or redirect), "
                       "each with a kind, an owner, a due date and a status.", no_args_is_help=True)

PieceArg = Annotated[str, typer.Argument(metavar="PIECE", help="The piece's id (c1, c2 …; see `ldflow show ID`).")]
KINDS = ", ".join(k.value for k in CompanionKind)


@app.command("add", cls=WriteCommand)
def add(
    request_id: IdArg,
    file: FileOpt = None,
    kind: Annotated[str | None, typer.Option(metavar="KIND", help=f"What kind of piece: {KINDS}.")] = None,
    what: Annotated[str | None, typer.Option(help="The piece in a few words ('a decision card').")] = None,
    owner_name: Annotated[str | None, typer.Option(help="The owner's name.")] = None,
    owner_email: Annotated[str | None, typer.Option(help="The owner's e-mail (they are told).")] = None,
    due: Annotated[str | None, typer.Option(metavar="YYYY-MM-DD", help="When it is due.")] = None,
    piece_id: Annotated[str | None, typer.Option("--id", help="The piece's id (default c1, c2 …).")] = None,
    note: Annotated[str | None, typer.Option(help="Anything the owner should know.")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a companion piece to a diagnosed request (until it is measured); its owner is told."""
    data, source = merge_input(file, kind=kind, what=what, due=due, id=piece_id, note=note,
                               **{"owner.name": owner_name, "owner.email": owner_email})
    request = open_app().service.add_companion(request_id, data, actor(who), if_version, source)
    piece = request.companions[-1]
    done(request, as_json, f"companion piece {piece.id} added: {piece.what}, {piece.owner.name}, due {piece.due}",
         piece=piece.id)


@app.command("done", cls=WriteCommand)
def complete(
    request_id: IdArg,
    piece: PieceArg,
    outcome: Annotated[str, typer.Option("--note", help="What was done (optional).")] = "",
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark a companion piece done."""
    request = open_app().service.complete_companion(request_id, piece, outcome, actor(who), if_version)
    done(request, as_json, f"companion piece {piece} done", piece=piece)


@app.command("drop", cls=WriteCommand)
def drop(
    request_id: IdArg,
    piece: PieceArg,
    reason: Annotated[str | None, typer.Option(help="Why the piece is dropped (required).")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drop a companion piece, with a reason."""
    data, source = merge_input(None, reason=reason)
    request = open_app().service.drop_companion(request_id, piece, data, actor(who), if_version, source)
    done(request, as_json, f"companion piece {piece} dropped", piece=piece)
