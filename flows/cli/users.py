"""``ldflow users``: the web app's staff accounts (admin, partner, viewer)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.common import JsonOpt, WriteCommand, open_app, print_json
from states.errors import FieldError, InvalidInput

if TYPE_CHECKING:
    from connectors.ports import User

app = typer.Typer(help="Staff accounts of the web app: roles admin (accounts and every action), partner "
                       "(every request action), viewer (read only).", no_args_is_help=True)

EmailArg = Annotated[str, typer.Argument(metavar="EMAIL", help="The account's e-mail address.", show_default=False)]


def _read_password(from_stdin: bool) -> str:
    """The password without echo (asked twice), or the first line of stdin: never an argument, so it
    stays out of the shell's history and the process list."""
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise InvalidInput([FieldError("password", "no terminal to ask on: give --password-stdin and pipe it")])
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise InvalidInput([FieldError("password", "the two entries differ")])
    return first


def _row(user: User) -> dict[str, object]:
    return {"email": user.email, "name": user.name, "role": user.role, "active": user.active}


@app.command("add", cls=WriteCommand)
def users_add(
    email: EmailArg,
    name: Annotated[str, typer.Option(help="The person's name.")],
    role: Annotated[str, typer.Option(metavar="admin|partner|viewer", help="What the account may do.")] = "partner",
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="Read the password from stdin's first line.")] = False,
    no_password: Annotated[bool, typer.Option("--no-password",
                                              help="No password: the account signs in by mailed link only.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add an account. The password is asked without echo (or read with --password-stdin), never
    taken on the command line."""
    password = None if no_password else _read_password(password_stdin)
    user = open_app().accounts.add(email, name, role, password)
    if as_json:
        print_json(_row(user))
        return
    typer.echo(f"account {user.email} added ({user.role})")


@app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List the accounts: e-mail, name, role, active."""
    found = open_app().accounts.list()
    if as_json:
        print_json([_row(u) for u in found])
        return
    if not found:
        typer.echo("no accounts (add one: ldflow users add EMAIL --name NAME --role admin)")
    for u in found:
        typer.echo(f"{u.email}  {u.name}  {u.role}{'' if u.active else '  (disabled)'}")


@app.command("disable", cls=WriteCommand)
def users_disable(email: EmailArg) -> None:
    """Disable an account: it cannot sign in, and its open sessions end."""
    user = open_app().accounts.disable(email)
    typer.echo(f"account {user.email} disabled")


@app.command("enable", cls=WriteCommand)
def users_enable(email: EmailArg) -> None:
    """Enable a disabled account again."""
    user = open_app().accounts.enable(email)
    typer.echo(f"account {user.email} enabled")


@app.command("role", cls=WriteCommand)
def users_role(email: EmailArg,
               role: Annotated[str, typer.Argument(metavar="ROLE", help="admin, partner or viewer.")]) -> None:
    """Give an account another role (its open sessions end)."""
    user = open_app().accounts.set_role(email, role)
    typer.echo(f"account {user.email} is now {user.role}")


@app.command("password", cls=WriteCommand)
def users_password(email: EmailArg, password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from stdin's first line.")] = False) -> None:
    """Set an account's password (asked without echo; its open sessions end)."""
    password = _read_password(password_stdin)
    user = open_app().accounts.set_password(email, password)
    typer.echo(f"password of {user.email} changed")
