"""``ldflow clock``: the simulated clock (demo and tests only: needs ``LDFLOW_SIMULATED_CLOCK``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from states.errors import FieldError, InvalidInput

if TYPE_CHECKING:
    from flows.clock import FileClock

app = typer.Typer(help="The simulated clock (demo and tests only: needs LDFLOW_SIMULATED_CLOCK).",
                  no_args_is_help=True)


def _file_clock() -> FileClock:
    from flows.clock import FileClock
    from flows.settings import load_settings

    settings = load_settings()
    if not settings.simulated_clock:
        raise InvalidInput([FieldError("LDFLOW_SIMULATED_CLOCK", "the simulated clock is off: set it to a file "
                                       "path to simulate time (demo and tests only, never in production)")])
    return FileClock(settings.simulated_clock)


def _show(at: datetime) -> None:
    typer.echo(f"simulated now: {at.isoformat()}")


@app.command("show")
def clock_show() -> None:
    """Print the simulated now (UTC)."""
    _show(_file_clock().now())


@app.command("advance")
def clock_advance(
    by: Annotated[str, typer.Argument(metavar="DURATION", help="ISO 8601 duration (P30D, PT6H) or days (30).")],
) -> None:
    """Move the simulated clock forward."""
    from states.durations import parse_duration

    text = by.strip()
    if text.isdigit():
        text = f"P{text}D"
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise InvalidInput([FieldError("DURATION", str(exc))]) from None
    clock = _file_clock()
    at = duration.after(clock.now())
    clock.set(at)
    _show(at)


@app.command("set")
def clock_set(
    at: Annotated[str, typer.Argument(metavar="TIME", help="ISO 8601 time with offset, e.g. 2026-05-01T09:00Z.")],
) -> None:
    """Set the simulated clock to a time (with a UTC offset)."""
    try:
        parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput([FieldError("TIME", f"{at!r} is not an ISO 8601 time")]) from None
    if parsed.tzinfo is None:
        raise InvalidInput([FieldError("TIME", "give a UTC offset (e.g. 2026-05-01T09:00Z): no floating times")])
    clock = _file_clock()
    clock.set(parsed)
    _show(clock.now())
