"""What the command modules share: exit codes, options, input, the application, output.

Cheap to import (``ldflow --help`` < 0.5 s): pydantic, SQLAlchemy and Prefect are imported inside
the commands, through :func:`open_app`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from connectors.loader import load_file  # the one input loader (CLI, drop folder, mail)
from states.errors import FieldError, InvalidInput, LdflowError

if TYPE_CHECKING:
    from flows.bootstrap import App
    from flows.settings import Settings
    from states.request import TrainingRequest

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_AUDIT_BROKEN = 6

E = TypeVar("E", bound=Enum)


# --- writes know they write ------------------------------------------------------------------------

class NothingWritten(Exception):
    """The error of a write command, which wrote nothing: the message says so."""

    def __init__(self, error: LdflowError) -> None:
        super().__init__(str(error))
        self.error = error


class WriteCommand(TyperCommand):
    """A command that writes (``@app.command(cls=WriteCommand)``): its errors, from reading the
    options to the refusal of the change, end with "nothing was written"."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except LdflowError as exc:
            raise NothingWritten(exc) from exc

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LdflowError as exc:
            raise NothingWritten(exc) from exc


# --- options ---------------------------------------------------------------------------------------

def choice(enum: type[E], name: str) -> Callable[[Any], E]:
    """The parser of an option whose values are ``enum``'s: ``--help`` lists them (the option is
    annotated with the enum), and a wrong one is invalid input (exit 2) naming ``name``."""
    values = [str(member.value) for member in enum]

    def parse(value: Any) -> E:
        if isinstance(value, enum):
            return value
        try:
            return enum(value)
        except ValueError:
            raise InvalidInput([FieldError(name, f"{value!r} is not one of {', '.join(values)}")]) from None

    return parse


def choices(enum: type[Enum]) -> str:
    """``a|b|c``: an enum's values, for the metavar of an option checked by the application."""
    return "|".join(str(member.value) for member in enum)


ActorOpt = Annotated[str | None, typer.Option(
    "--actor", envvar="LDFLOW_ACTOR", show_envvar=False,
    help="Who is acting, recorded on the audit event (default: $LDFLOW_ACTOR, else the OS user).")]
IfVersionOpt = Annotated[int | None, typer.Option(
    "--if-version", min=1, help="Refuse (exit 5) unless the request is at this version.")]
FileOpt = Annotated[str | None, typer.Option(
    "--file", "-f", metavar="PATH", help="YAML or JSON file with the fields ('-' reads stdin); flags override it.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
IdArg = Annotated[int, typer.Argument(metavar="ID", help="Request id.", show_default=False)]


# --- input -----------------------------------------------------------------------------------------

def merge_input(file: str | None, **flags: Any) -> tuple[dict[str, Any], str]:
    """The file's fields (if any) with every flag that was given laid over them; a dotted flag name
    (``owner.email``) sets a nested field."""
    data, source = load_file(file) if file else ({}, "")
    for name, value in flags.items():
        if value is None or value == []:
            continue
        target = data
        *parents, leaf = name.split(".")
        for parent in parents:
            node = target.get(parent)
            if not isinstance(node, dict):
                node = {}
                target[parent] = node
            target = node
        target[leaf] = value.value if isinstance(value, Enum) else value
    return data, source


def actor(value: str | None) -> str:
    """Who is acting: the option, else ``$LDFLOW_ACTOR``, else the OS user."""
    if value is not None:
        return value
    from flows.settings import env_actor

    return env_actor()


# --- the application ---------------------------------------------------------------------------------

def open_app(*, migrate: bool = True) -> App:
    """The application for this command, from the environment's settings (the composition root)."""
    from flows import bootstrap

    app = bootstrap.build(migrate=migrate)
    app.service = app.service.via("cli")  # every event a command records says it came through the CLI
    return app


# --- output ----------------------------------------------------------------------------------------

def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def done(request: TrainingRequest, as_json: bool, message: str, **extra: Any) -> None:
    """The one-line result of a write."""
    if as_json:
        print_json({"id": request.id, "state": request.state.value, "version": request.version, **extra})
    else:
        typer.echo(f"request {request.id}: {message} (state {request.state.value}, version {request.version})")


def iso_or_none(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def output_file(path: Path, settings: Settings) -> Path:
    """``--output`` checked: never the database, its WAL/SHM/journal (existing or not), nor any file that
    exists under the data directory (InvalidInput naming the option, exit 2; a new file there is fine);
    its folder is created 0700 if missing."""
    from connectors.files import private_dir

    target = path.expanduser().resolve()
    home = settings.home.expanduser().resolve()
    database: list[Path] = []
    url = settings.url
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):].split("?", 1)[0]).resolve()
        database = [db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    hit = next((d for d in database if target == d or (target.exists() and d.exists() and os.path.samefile(target, d))),
               None)
    if hit is not None:
        raise InvalidInput([FieldError("output", f"{path} is the database file {hit}; write the export elsewhere")])
    if target.exists() and target.is_relative_to(home):
        raise InvalidInput([FieldError("output", f"{path} is a file of the data directory {home}; "
                                                 "ldflow does not overwrite it")])
    private_dir(target.parent)
    return target
