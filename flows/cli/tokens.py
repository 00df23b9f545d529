"""``ldflow tokens``: personal access tokens for the JSON API (create, list, revoke)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import JsonOpt, WriteCommand, actor, iso_or_none, open_app, print_json

if TYPE_CHECKING:
    from connectors.ports import ApiToken

MakerOpt = Annotated[str | None, typer.Option(
    "--actor", envvar="LDFLOW_ACTOR", show_envvar=False,
    help="Who makes the token, recorded with it (default: $LDFLOW_ACTOR, else the OS user).")]

app = typer.Typer(help="Personal access tokens for the JSON API (/api/v1): each acts as its owner with a role "
                       "(viewer reads; partner runs every request command; admin may do everything).",
                  no_args_is_help=True)


def _as_json(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "owner": t.owner, "role": t.role, "prefix": t.prefix,
            "created_at": t.created_at.isoformat(), "created_by": t.created_by,
            "last_used_at": iso_or_none(t.last_used_at), "revoked_at": iso_or_none(t.revoked_at)}


@app.command("create", cls=WriteCommand)
def tokens_create(
    name: Annotated[str, typer.Option(help="A name for the token (letters, digits, . _ -), e.g. ci-reports.")],
    role: Annotated[str, typer.Option(metavar="partner|viewer|admin", help="What the token may do.")],
    owner: Annotated[str, typer.Option(help="The person the token acts as: recorded as the actor of its "
                                            "writes, through the channel 'api'.")],
    who: MakerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a token and print its secret, once: it is stored only as a hash and cannot be shown again.
    The secret alone goes to stdout (TOKEN=$(ldflow tokens create ...)); the notice to stderr."""
    made = open_app().tokens.create(name, role, owner, actor(who))
    if as_json:
        print_json({**_as_json(made.token), "token": made.secret})
        return
    typer.echo(made.secret)
    typer.echo(f"token {made.token.name!r} made for {made.token.owner} ({made.token.role}). Copy it now: "
               "it is not shown again. Send it as 'Authorization: Bearer <token>'.", err=True)


@app.command("list")
def tokens_list(as_json: JsonOpt = False) -> None:
    """Every token: name, owner, role, its first characters, made, last used, revoked (never a secret)."""
    tokens = open_app().tokens.list()
    if as_json:
        print_json([_as_json(t) for t in tokens])
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from flows import views

    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(tokens)} token{'' if len(tokens) == 1 else 's'}",
                  caption_justify="left")
    for column in ("name", "owner", "role", "starts", "made", "last used", "revoked"):
        table.add_column(column, no_wrap=column not in ("owner",))
    for t in tokens:
        table.add_row(escape(t.name), escape(t.owner), t.role, f"{escape(t.prefix)}…", views.utc(t.created_at),
                      views.utc(t.last_used_at) if t.last_used_at else "never",
                      views.utc(t.revoked_at) if t.revoked_at else "")
    views.console().print(table)


@app.command("revoke", cls=WriteCommand)
def tokens_revoke(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The token's name (see `ldflow tokens list`).",
                                        show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token: from now on the API answers it with 401. The token stays in the list."""
    token, now = open_app().tokens.revoke(name)
    if as_json:
        print_json({**_as_json(token), "revoked_now": now})
        return
    when = token.revoked_at.strftime("%Y-%m-%d %H:%M UTC") if token.revoked_at else ""
    typer.echo(f"token {token.name!r} revoked" if now else f"token {token.name!r} was revoked already ({when})")
