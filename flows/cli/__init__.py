"""``ldflow``: the command line for L&D operations teams.

Every write takes its input from a YAML/JSON file (``-f FILE``, ``-`` for stdin) and/or flags (flags
win), an ``--actor`` (default ``$LDFLOW_ACTOR``, else the OS user) and an optional ``--if-version N``
optimistic check. The read commands take ``--json`` (``show``, ``list``, ``history``, ``export``,
``report``, ``plan show``, ``audit verify``, ``outbox list``, ``inbound quarantined``; ``export-xapi`` is
JSON already). Times are UTC.

Exit codes (documented in the README and ``ldflow --help``):

====  ==========================================================================
0     ok
1     other errors: configuration, database unreachable or misconfigured
2     invalid input (missing field, wrong type, vague verb, bad ISO duration,
      malformed file, unknown option); nothing is written
3     transition refused (the partner process was skipped); lists every
      missing item; nothing is written
4     not found (unknown request or checkpoint id)
5     conflict (``--if-version`` mismatch or a concurrent change)
6     audit chain broken (``ldflow audit verify``)
====  ==========================================================================

This package is the root: it builds the Typer app from one module per command group (none of them
imports it back) and turns errors into messages and exit codes. The commands call the application
(:mod:`flows.bootstrap`, :mod:`flows.service` …) and stay cheap to import (``ldflow --help`` < 0.5 s):
pydantic, SQLAlchemy and Prefect are imported inside the commands.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from flows.cli import (
    admin,
    amend,
    analytics,
    attention,
    clock,
    companions,
    fleet,
    groups,
    mail,
    pipeline,
    plan,
    reads,
    reports,
    requests,
    tokens,
    users,
    web,
)
from flows.cli.common import EXIT_ERROR, NothingWritten
from states.errors import InvalidInput, InvalidTransition, LdflowError, TransitionRefused
from states.wording import with_article

EPILOG = ("Exit codes: 0 ok, 1 configuration/database error, 2 invalid input, 3 transition refused, "
          "4 not found, 5 conflict (--if-version), 6 audit chain broken. Times are UTC.")

app = typer.Typer(
    name="ldflow",
    help="Run L&D training requests through a partner process: diagnose, plan measurement, "
         "design or redirect, deliver, measure, close the loop.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(requests.app)
app.add_typer(amend.app)
app.add_typer(groups.app)
app.add_typer(plan.app, name="plan", rich_help_panel="Requests")
app.add_typer(companions.app, name="companion", rich_help_panel="Requests")
app.add_typer(reads.app)
app.add_typer(attention.app)
app.add_typer(reports.app)
app.add_typer(analytics.app)
app.add_typer(admin.app)
app.add_typer(admin.audit_app, name="audit", rich_help_panel="Other")
app.add_typer(admin.db_app, name="db", rich_help_panel="Other")
app.add_typer(clock.app, name="clock", rich_help_panel="Other")
app.add_typer(pipeline.app)
app.add_typer(fleet.app)
app.add_typer(web.app)
app.add_typer(tokens.app, name="tokens", rich_help_panel="Web")
app.add_typer(users.app, name="users", rich_help_panel="Web")
app.add_typer(mail.outbox_app, name="outbox", rich_help_panel="Mail")
app.add_typer(mail.inbound_app, name="inbound", rich_help_panel="Mail")


def _fail(code: int, lines: list[str]) -> NoReturn:
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    raise SystemExit(code)


def report_error(exc: LdflowError, *, nothing_written: bool = False) -> NoReturn:
    """Print a domain error for a person (no traceback) and exit with its code; the error of a
    write command ends with "nothing was written"."""
    tail = ["nothing was written."] if nothing_written else []
    if isinstance(exc, InvalidInput):
        where = f" in {exc.source}" if exc.source else ""
        _fail(exc.exit_code, [f"error: invalid input{where}:"] + [f"  - {e}" for e in exc.errors] + tail)
    if isinstance(exc, InvalidTransition):
        _fail(exc.exit_code, [f"refused: {exc}", *tail])
    if isinstance(exc, TransitionRefused):
        _fail(exc.exit_code, [f"refused: cannot {exc.trigger} {with_article(exc.state)} request; missing:"]
              + [f"  - {m}" for m in exc.missing] + tail)
    _fail(exc.exit_code, [f"error: {exc}", *tail])


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app and turns every user mistake into a message and an exit code."""
    try:
        app(args=argv, prog_name="ldflow")
    except NothingWritten as exc:
        report_error(exc.error, nothing_written=True)
    except LdflowError as exc:
        report_error(exc)
    except KeyboardInterrupt:
        _fail(130, ["interrupted"])
    except BrokenPipeError:
        # The reader went away (``ldflow export | head``): not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(EXIT_ERROR) from None
    except Exception as exc:  # the last line of defence: no traceback for users
        module = type(exc).__module__ or ""
        if module.startswith(("sqlalchemy", "psycopg", "sqlite3")):
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            _fail(EXIT_ERROR, [f"error: database: {reason}"])
        if os.environ.get("LDFLOW_DEBUG"):
            raise
        _fail(EXIT_ERROR, [f"internal error: {type(exc).__name__}: {exc}",
                           "(set LDFLOW_DEBUG=1 to see the traceback, and please report it)"])


__all__ = ["app", "main", "report_error"]
