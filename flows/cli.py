"""``ldflow``: the command line for L&D operations teams.

Every write takes its input from a YAML/JSON file (``-f FILE``, ``-`` for
stdin) and/or flags (flags win), an ``--actor`` (default ``$LDFLOW_ACTOR``,
else the OS user) and an optional ``--if-version N`` optimistic check. Every
read command takes ``--json``. Times are UTC.

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

This module must stay cheap to import (``ldflow --help`` < 0.5 s): pydantic
models, SQLAlchemy and Prefect are imported inside the commands.
"""

import json
import os
import re
import sys
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import typer

from connectors.loader import load_file  # the one input loader (CLI, drop folder, mail)
from states.errors import FieldError, InvalidInput, LdflowError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_AUDIT_BROKEN = 6

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
plan_app = typer.Typer(help="Draft, approve and show the measurement plan (planned before design starts).",
                       no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit history.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
outbox_app = typer.Typer(help="Outgoing mail: list it, retry what failed or has an unknown outcome, close "
                              "what the mail server's log shows as sent.", no_args_is_help=True)
inbound_app = typer.Typer(help="Incoming mail and drop-folder files: what was quarantined and why.",
                          no_args_is_help=True)
app.add_typer(plan_app, name="plan", rich_help_panel="Requests")
app.add_typer(audit_app, name="audit", rich_help_panel="Other")
app.add_typer(db_app, name="db", rich_help_panel="Other")
app.add_typer(outbox_app, name="outbox", rich_help_panel="Mail")
app.add_typer(inbound_app, name="inbound", rich_help_panel="Mail")


class ConfigurationError(LdflowError):
    """Settings or database problems (exit 1)."""

    exit_code = EXIT_ERROR


# --- shared options --------------------------------------------------------------------------------

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

# Set by write commands, so that a refusal can say that nothing was written.
_WRITING = {"now": False}


def _input(file: str | None, **flags: Any) -> tuple[dict[str, Any], str]:
    """The file's fields (if any) with every flag that was given laid over them."""
    _WRITING["now"] = True
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
        target[leaf] = value
    return data, source


# --- application wiring (lazy) ---------------------------------------------------------------------

def _settings() -> Any:
    from pydantic import ValidationError

    from flows.settings import load_settings

    try:
        return load_settings()
    except ValidationError as exc:
        lines = [f"LDFLOW_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError("invalid settings:\n  " + "\n  ".join(lines)) from None


def _safe_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _engine(settings: Any) -> Any:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from connectors.db.engine import make_engine

    url = settings.url
    try:
        return make_engine(url, synchronous=settings.sqlite_synchronous)
    except (ArgumentError, NoSuchModuleError, ValueError, ModuleNotFoundError) as exc:
        raise ConfigurationError(f"cannot use the database URL {_safe_url(url)}: {exc} "
                                 "(set LDFLOW_DATABASE_URL, e.g. postgresql://user@host/db)") from None


class _App:
    """Settings, engine, store and service for one command."""

    def __init__(self, *, migrate: bool = True) -> None:
        from connectors.db import schema
        from connectors.db.store import SqlStore
        from flows.clock import FileClock, SystemClock
        from flows.service import Service

        self.settings = _settings()
        self.engine = _engine(self.settings)
        if migrate:
            _db_call(self.settings, lambda: schema.ensure_schema(self.engine))
        self.store = SqlStore(self.engine)
        clock = FileClock(self.settings.simulated_clock) if self.settings.simulated_clock else SystemClock()
        from flows.events import instrument  # Prefect events after each commit, when an API is configured

        self.service = Service(instrument(self.store), clock)


def _db_call(settings: Any, fn: Any) -> Any:
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        return fn()
    except (OperationalError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigurationError(f"cannot reach the database {_safe_url(settings.url)}: {reason}") from None


def _actor(actor: str | None) -> str:
    if actor is not None:
        return actor
    from flows.settings import env_actor

    return env_actor()


# --- output ----------------------------------------------------------------------------------------

def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def _done(request: Any, as_json: bool, message: str, **extra: Any) -> None:
    """The one-line result of a write."""
    if as_json:
        _print_json({"id": request.id, "state": request.state.value, "version": request.version, **extra})
    else:
        typer.echo(f"request {request.id}: {message} (state {request.state.value}, version {request.version})")


# --- writes ----------------------------------------------------------------------------------------

@app.command(rich_help_panel="Requests")
def submit(
    file: FileOpt = None,
    title: Annotated[str | None, typer.Option(help="Short title of the request.")] = None,
    requester_name: Annotated[str | None, typer.Option(help="Requester's name.")] = None,
    requester_email: Annotated[str | None, typer.Option(help="Requester's e-mail.")] = None,
    sponsor_name: Annotated[str | None, typer.Option(help="Sponsor's name (approves the plan).")] = None,
    sponsor_email: Annotated[str | None, typer.Option(help="Sponsor's e-mail.")] = None,
    solution: Annotated[str | None, typer.Option(help="What was asked for, in the requester's words.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new request id.")] = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a new training request as the requester put it (intake). Prints the new id."""
    data, source = _input(file, title=title, **{
        "requester.name": requester_name, "requester.email": requester_email,
        "sponsor.name": sponsor_name, "sponsor.email": sponsor_email, "requested_solution": solution})
    request = _App().service.submit(data, _actor(actor), source=source)
    if quiet:
        typer.echo(str(request.id))
    else:
        _done(request, as_json, f"submitted {request.intake.title!r}")


@app.command(rich_help_panel="Requests")
def diagnose(
    request_id: IdArg,
    file: FileOpt = None,
    summary: Annotated[str | None, typer.Option(help="Summary of the diagnosis.")] = None,
    action: Annotated[list[str] | None, typer.Option(
        "--action", help="An observable on-the-job action (repeatable; replaces the file's list).")] = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Diagnose: business goal, observable actions, cause checks. Recommends design and/or redirects."""
    data, source = _input(file, summary=summary, observable_actions=action)
    request = _App().service.diagnose(request_id, data, _actor(actor), if_version, source)
    paths = [r.path for r in request.recommendations]
    _done(request, as_json, "diagnosed; recommended: " + (", ".join(paths) or "nothing conclusive"),
          recommendations=[r.model_dump() for r in request.recommendations])


@plan_app.command("draft")
def plan_draft(
    request_id: IdArg,
    file: Annotated[str, typer.Option("--file", "-f", metavar="PATH",
                                      help="YAML or JSON measurement plan ('-' reads stdin).")],
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Draft (or redraft) the measurement plan; it then awaits the sponsor's approval."""
    data, source = _input(file)
    request = _App().service.draft_plan(request_id, data, _actor(actor), if_version, source)
    assert request.plan is not None
    _done(request, as_json, f"measurement plan drafted ({len(request.plan.items)} item(s)); awaiting approval by "
                            f"{request.intake.sponsor.email}")


@plan_app.command("approve")
def plan_approve(
    request_id: IdArg,
    by: Annotated[str | None, typer.Option("--by", help="The approver's e-mail (must be the sponsor).")] = None,
    comment: Annotated[str | None, typer.Option(help="The approver's comment.")] = None,
    file: FileOpt = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the sponsor's approval of the drafted measurement plan."""
    data, source = _input(file, approver=by, comment=comment)
    request = _App().service.approve_plan(request_id, data, _actor(actor), if_version, source)
    _done(request, as_json, f"measurement plan approved by {request.plan_approved_by}")


@plan_app.command("show")
def plan_show(request_id: IdArg, as_json: JsonOpt = False) -> None:
    """Show the measurement plan and its approval."""
    request = _App().service.show(request_id)
    if as_json:
        _print_json({"id": request.id, "plan": request.plan.model_dump(mode="json") if request.plan else None,
                     "approved_by": request.plan_approved_by,
                     "approved_at": request.plan_approved_at.isoformat() if request.plan_approved_at else None})
        return
    from flows import views

    views.console().print(views.plan_panel(request))


@app.command(rich_help_panel="Requests")
def design(
    request_id: IdArg,
    file: FileOpt = None,
    format: Annotated[str | None, typer.Option("--format", help="Format, e.g. 'workshop with role-play'.")] = None,
    approach: Annotated[str | None, typer.Option(help="The approach in a sentence or two.")] = None,
    objective: Annotated[list[str] | None, typer.Option(
        "--objective", help="An observable objective (repeatable; replaces the file's list).")] = None,
    override: Annotated[str | None, typer.Option(
        "--skill-gap-override", help="Why design although the diagnosis found no skill gap.")] = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Design a learning solution (needs an approved measurement plan with baselines)."""
    data, source = _input(file, format=format, approach=approach, objectives=objective,
                          skill_gap_override=override)
    request = _App().service.design(request_id, data, _actor(actor), if_version, source)
    _done(request, as_json, f"designed ({request.brief.format if request.brief else ''})")


@app.command(rich_help_panel="Requests")
def redirect(
    request_id: IdArg,
    file: FileOpt = None,
    kind: Annotated[str | None, typer.Option(
        help="job_aid, process_change, tool_fix, expectations_feedback, coaching, incentive_change, "
             "task_simplification, communication or job_redesign.")] = None,
    rationale: Annotated[str | None, typer.Option(help="Why this, rather than training.")] = None,
    owner_name: Annotated[str | None, typer.Option(help="Who owns the redirect.")] = None,
    owner_email: Annotated[str | None, typer.Option(help="The owner's e-mail.")] = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Redirect: solve it without training (job aid, process change, ...). Needs an approved plan."""
    data, source = _input(file, kind=kind, rationale=rationale,
                          **{"owner.name": owner_name, "owner.email": owner_email})
    request = _App().service.redirect(request_id, data, _actor(actor), if_version, source)
    kind_text = request.redirect_record.kind.value if request.redirect_record and request.redirect_record.kind else ""
    _done(request, as_json, f"redirected ({kind_text})")


@app.command(rich_help_panel="Requests")
def session(
    request_id: IdArg,
    file: FileOpt = None,
    session_id: Annotated[str | None, typer.Option("--id", help="Session id; an existing id reschedules it.")] = None,
    title: Annotated[str | None, typer.Option(help="Session title.")] = None,
    start: Annotated[str | None, typer.Option(help="Start, ISO 8601 with offset (2026-12-01T09:00+01:00).")] = None,
    end: Annotated[str | None, typer.Option(help="End, ISO 8601 with offset.")] = None,
    location: Annotated[str | None, typer.Option(help="Where (room, link).")] = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Schedule or reschedule a delivery session: attendees get a calendar invite (same event, new SEQUENCE)."""
    data, source = _input(file, id=session_id, title=title, start=start, end=end, location=location)
    request = _App().service.schedule_session(request_id, data, _actor(actor), if_version, source)
    latest = request.sessions[-1] if request.sessions else None
    chosen = next((x for x in request.sessions if x.plan.id == (data.get("id") or "")), latest)
    what = (f"session {chosen.plan.id} scheduled {chosen.plan.start:%Y-%m-%d %H:%M}Z (sequence {chosen.sequence})"
            if chosen else "session scheduled")
    _done(request, as_json, what)


@app.command(rich_help_panel="Requests")
def deliver(
    request_id: IdArg,
    file: FileOpt = None,
    start: Annotated[str | None, typer.Option(help="Start date (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="End date (YYYY-MM-DD); checkpoints count from it.")] = None,
    reached: Annotated[int | None, typer.Option(help="Audience reached (people).")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Delivery format.")] = None,
    notes: Annotated[str | None, typer.Option(help="Notes.")] = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record delivery; measurement checkpoints are scheduled from the end date."""
    data, source = _input(file, start_date=start, end_date=end, audience_reached=reached, format=format,
                          notes=notes)
    request = _App().service.deliver(request_id, data, _actor(actor), if_version, source)
    due = ", ".join(f"{c.item_id}:{c.offset} {c.due_at:%Y-%m-%d}" for c in request.checkpoints)
    _done(request, as_json, f"delivered; checkpoints scheduled: {due}",
          checkpoints=[{"key": c.key, "due_at": c.due_at.isoformat()} for c in request.checkpoints])


@app.command(rich_help_panel="Requests")
def record(
    request_id: IdArg,
    checkpoint: Annotated[str | None, typer.Option(
        "--checkpoint", "-c", help="Checkpoint key, e.g. m1:P30D (see `ldflow show ID`).")] = None,
    value: Annotated[float | None, typer.Option(help="The measured value.")] = None,
    note: Annotated[str | None, typer.Option(help="A note on the result.")] = None,
    missed: Annotated[str | None, typer.Option(
        "--missed", help="Close the checkpoint as missed, with this reason.")] = None,
    file: FileOpt = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a checkpoint result (--value) or close it as missed (--missed REASON)."""
    data, source = _input(file, checkpoint=checkpoint, value=value, note=note, missed_reason=missed)
    key = data.pop("checkpoint", None)
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput([FieldError("checkpoint", "is required (e.g. --checkpoint m1:P30D)")], source)
    request = _App().service.record(request_id, key.strip(), data, _actor(actor), if_version, source)
    c = request.checkpoint(key.strip())
    open_count = sum(1 for x in request.checkpoints if not x.closed)
    what = f"recorded {c.item_id}:{c.offset} = {c.value:g}" if c.value is not None else \
        f"closed {c.item_id}:{c.offset} as missed"
    _done(request, as_json, f"{what}; {open_count} checkpoint(s) still open", checkpoint=c.key,
          open_checkpoints=open_count)


@app.command(rich_help_panel="Requests")
def measure(
    request_id: IdArg,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close measurement: compare results with targets (every checkpoint must be closed)."""
    _WRITING["now"] = True
    request = _App().service.measure(request_id, _actor(actor), if_version)
    outcomes = ", ".join(f"{r.item_id} {r.outcome.value}" for r in request.results)
    _done(request, as_json, f"measured: {outcomes}",
          results=[r.model_dump(mode="json") for r in request.results],
          roi=request.roi.model_dump(mode="json") if request.roi else None)


@app.command(rich_help_panel="Requests")
def acknowledge(
    request_id: IdArg,
    file: FileOpt = None,
    recap: Annotated[list[str] | None, typer.Option(
        "--recap", help="A takeaway (repeatable; replaces the file's list).")] = None,
    message: Annotated[str | None, typer.Option(help="A personal message for the stakeholders.")] = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close the loop: recap, action plan with owners, contributions. Sends the results report."""
    data, source = _input(file, recap=recap, message=message)
    request = _App().service.acknowledge(request_id, data, _actor(actor), if_version, source)
    _done(request, as_json, "acknowledged; the results report is queued for the stakeholders")


@app.command(rich_help_panel="Requests")
def decline(
    request_id: IdArg,
    reason: Annotated[str | None, typer.Option(help="Why the request is declined.")] = None,
    file: FileOpt = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decline a received or diagnosed request, with a reason."""
    data, source = _input(file, reason=reason)
    request = _App().service.decline(request_id, data, _actor(actor), if_version, source)
    _done(request, as_json, "declined")


@app.command(rich_help_panel="Requests")
def cancel(
    request_id: IdArg,
    reason: Annotated[str | None, typer.Option(help="Why the request is cancelled.")] = None,
    file: FileOpt = None,
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel any open request, with a reason (open checkpoints are closed as missed)."""
    data, source = _input(file, reason=reason)
    request = _App().service.cancel(request_id, data, _actor(actor), if_version, source)
    _done(request, as_json, "cancelled")


@app.command(rich_help_panel="Requests")
def note(
    request_id: IdArg,
    text: Annotated[str, typer.Argument(help="The note.", show_default=False)],
    actor: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a note to a request's history."""
    _WRITING["now"] = True
    request = _App().service.add_note(request_id, text, _actor(actor), expect_version=if_version)
    _done(request, as_json, "note added")


# --- reads -----------------------------------------------------------------------------------------

@app.command(rich_help_panel="Reading")
def show(request_id: IdArg, as_json: JsonOpt = False) -> None:
    """Everything about one request: intake, diagnosis, plan, design/redirect, delivery, results."""
    request = _App().service.show(request_id)
    if as_json:
        _print_json(request.model_dump(mode="json"))
        return
    from flows import views

    views.console().print(views.request_view(request))


_SORT_KEYS = ("id", "created", "updated", "state", "title")


def _date_option(value: str | None, field: str) -> Any:
    if value is None:
        return None
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput([FieldError(field, f"{value!r} is not a date (YYYY-MM-DD)")]) from None


@app.command("list", rich_help_panel="Reading")
def list_requests(
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", help="Only requests in this state (repeatable).")] = None,
    requester: Annotated[str | None, typer.Option(help="Only this requester (e-mail).")] = None,
    sponsor: Annotated[str | None, typer.Option(help="Only this sponsor (e-mail).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Created on or after (YYYY-MM-DD, UTC).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Created on or before (YYYY-MM-DD, UTC).")] = None,
    sort: Annotated[str, typer.Option(
        help="id, created, updated, state or title; prefix '-' for descending (e.g. -updated).")] = "id",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Rows per page.")] = 20,
    page: Annotated[int, typer.Option(min=1, help="Page number (from 1).")] = 1,
    offset: Annotated[int | None, typer.Option(min=0, help="Skip this many rows (instead of --page).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List requests: filter by state, requester, sponsor, creation dates; sorted; paged."""
    from connectors.db.store import ListFilter
    from states.lifecycle import State

    errors = []
    known_states = [s.value for s in State]
    bad = [s for s in state or [] if s not in known_states]
    if bad:
        errors.append(FieldError("state", f"unknown state(s) {', '.join(bad)}; known: {', '.join(known_states)}"))
    if sort.lstrip("-") not in _SORT_KEYS:
        errors.append(FieldError("sort", f"{sort!r} is not one of {', '.join(_SORT_KEYS)} (prefix '-' to reverse)"))
    try:
        created_from = _date_option(date_from, "from")
    except InvalidInput as exc:
        errors += exc.errors
        created_from = None
    try:
        created_to = _date_option(date_to, "to")
    except InvalidInput as exc:
        errors += exc.errors
        created_to = None
    if errors:
        raise InvalidInput(errors)
    start = offset if offset is not None else (page - 1) * limit
    flt = ListFilter(states=tuple(state or ()), requester=requester, sponsor=sponsor, created_from=created_from,
                     created_to=created_to, sort=sort, limit=limit, offset=start)
    rows, total = _App().service.list(flt)
    pages = max(1, -(-total // limit))
    current = start // limit + 1
    if as_json:
        _print_json({"total": total, "page": current, "pages": pages, "limit": limit, "offset": start,
                     "items": [{"id": r.id, "title": r.title, "state": r.state, "version": r.version,
                                "requester": r.requester, "sponsor": r.sponsor,
                                "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}
                               for r in rows]})
        return
    from flows import views

    views.console().print(views.list_table(rows, current, pages, total))


@app.command(rich_help_panel="Reading")
def history(request_id: IdArg, as_json: JsonOpt = False) -> None:
    """A request's history as a readable timeline (UTC, actor, event, summary)."""
    records = _App().service.history(request_id)
    if as_json:
        import dataclasses

        _print_json([dataclasses.asdict(r) for r in records])
        return
    from flows import views

    views.console().print(views.timeline(request_id, records))


@app.command(rich_help_panel="Reading")
def export(
    request_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="One request (default: all).",
                                                     show_default=False)] = None,
    format: Annotated[str, typer.Option("--format", help="json (documents with history) or csv (one row each).")]
    = "json",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default stdout).")]
    = None,
) -> None:
    """Export one request or all: JSON (document + history) or CSV (one row per request)."""
    if format not in ("json", "csv"):
        raise InvalidInput([FieldError("format", f"{format!r} is not json or csv")])
    from flows import exports

    ctx = _App()
    if request_id is not None:
        requests_iter: Any = iter([ctx.service.show(request_id)])
    else:
        requests_iter = ctx.store.iter_requests()
    tmp = None
    stream: IO[str]
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".part")
        stream = tmp.open("w", encoding="utf-8", newline="")
    else:
        stream = sys.stdout
    try:
        count = (exports.export_json(stream, requests_iter, ctx.store.history) if format == "json"
                 else exports.export_csv(stream, requests_iter))
    except BaseException:
        if tmp is not None:
            stream.close()
            tmp.unlink(missing_ok=True)
        raise
    if tmp is not None and output is not None:
        stream.close()
        tmp.replace(output)
        typer.echo(f"exported {count} request(s) to {output}", err=True)


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Walk the hash chain; exit 6 and name the first broken link if it was tampered with."""
    ctx = _App()
    report = ctx.service.verify()
    if as_json:
        _print_json(report.as_dict())
    elif report.ok:
        typer.echo(f"audit chain ok: {report.events_checked} events, {report.requests_checked} requests checked")
    else:
        where = f"event {report.broken_seq}" + (f" (request {report.request_id})" if report.request_id else "")
        typer.echo(f"audit chain BROKEN at {where}: {report.reason}", err=True)
    if not report.ok:
        raise typer.Exit(EXIT_AUDIT_BROKEN)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Apply the database migrations (Alembic) up to the newest revision."""
    from connectors.db import schema

    ctx = _App(migrate=False)
    before = _db_call(ctx.settings, lambda: schema.current_revision(ctx.engine))
    after = _db_call(ctx.settings, lambda: schema.upgrade(ctx.engine, revision))
    state = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    typer.echo(f"database {_safe_url(ctx.settings.url)}: {state} revision {after}")


# --- mail: outbox and inbound ----------------------------------------------------------------------

OUTBOX_STATUSES = ("pending", "sending", "transmitting", "sent", "failed", "unknown")


def _now(ctx: "_App") -> Any:
    from datetime import UTC

    return ctx.service.clock.now().astimezone(UTC)


def _iso_or_none(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class _OutboxChanged(LdflowError):
    """An outbox row changed between reading and writing it (exit 5, like any conflict)."""

    exit_code = EXIT_CONFLICT


def _outbox_rows(ctx: "_App", keys: list[str]) -> dict[str, Any]:
    """The outbox rows for ``keys``; NotFound (exit 4) naming every unknown key."""
    from sqlalchemy import select

    from connectors.db.tables import outbox
    from states.errors import NotFound

    with ctx.engine.connect() as conn:
        rows = {r.key: r for r in conn.execute(select(outbox).where(outbox.c.key.in_(keys)))}
    missing = [k for k in keys if k not in rows]
    if missing:
        raise NotFound(f"outbox key(s) {', '.join(repr(k) for k in missing)} (see `ldflow outbox list`)")
    return rows


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(
        "--status", help="Only rows with this status: pending, sending, transmitting, sent, failed or unknown.")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many rows (newest first).")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """The outbox: one row per e-mail ldflow sends (id, key, template, status, attempts, last error, sent)."""
    if status is not None and status not in OUTBOX_STATUSES:
        raise InvalidInput([FieldError("status", f"{status!r} is not one of {', '.join(OUTBOX_STATUSES)}")])
    from sqlalchemy import select

    from connectors.db.tables import outbox

    ctx = _App()
    query = select(outbox.c.id, outbox.c.key, outbox.c.request_id, outbox.c.template, outbox.c.status,
                   outbox.c.attempts, outbox.c.last_error, outbox.c.sent_at, outbox.c.message_id)
    if status is not None:
        query = query.where(outbox.c.status == status)
    with ctx.engine.connect() as conn:
        rows = list(conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)))
    if as_json:
        _print_json([{"id": r.id, "key": r.key, "request_id": r.request_id, "template": r.template,
                      "status": r.status, "attempts": r.attempts, "last_error": r.last_error,
                      "sent_at": _iso_or_none(r.sent_at), "message_id": r.message_id} for r in rows])
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from flows import views

    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(rows)} row(s)" + (f" with status {status}" if status else ""),
                  caption_justify="left")
    for name, justify in (("id", "right"), ("key", "left"), ("template", "left"), ("status", "left"),
                          ("attempts", "right"), ("last error", "left"), ("sent", "left")):
        table.add_column(name, justify=justify, no_wrap=name not in ("last error", "key"))  # type: ignore[arg-type]
    style = {"unknown": "bold yellow", "failed": "red", "sent": "green"}
    for r in rows:
        table.add_row(str(r.id), escape(r.key), escape(r.template),
                      f"[{style[r.status]}]{r.status}[/]" if r.status in style else escape(r.status),
                      str(r.attempts), escape((r.last_error or "")[:300]),
                      views.utc(r.sent_at) if r.sent_at is not None else "")
    views.console().print(table)


@outbox_app.command("retry")
def outbox_retry(
    key: Annotated[list[str] | None, typer.Option(
        "--key", help="An outbox key to send again (repeatable); the row must be unknown or failed.")] = None,
    all_unknown: Annotated[bool, typer.Option(
        "--all-unknown", help="Every row whose outcome is unknown.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Put rows back to pending so the next dispatch sends them (same Message-ID).

    Rows whose outcome is unknown are never resent automatically: check the mail server's log
    first; if it went out, use `ldflow outbox mark-sent KEY` instead."""
    from connectors.db import outbox as ob
    from connectors.db.engine import write_transaction

    _WRITING["now"] = True
    keys = list(dict.fromkeys(key or []))
    if not keys and not all_unknown:
        raise InvalidInput([FieldError("key", "name the rows to retry: --key KEY (repeatable) or --all-unknown")])
    ctx = _App()
    now = _now(ctx)
    if keys:
        rows = _outbox_rows(ctx, keys)
        wrong = [f"{k} is {rows[k].status}" for k in keys if rows[k].status not in (ob.UNKNOWN, ob.FAILED)]
        if wrong:
            raise InvalidInput([FieldError("key", f"only unknown or failed rows can be retried: {'; '.join(wrong)}")])
    with write_transaction(ctx.engine) as conn:
        count = ob.requeue(conn, now, keys=keys, statuses=(ob.UNKNOWN, ob.FAILED)) if keys else 0
        if all_unknown:
            count += ob.requeue(conn, now, statuses=(ob.UNKNOWN,))
    if as_json:
        _print_json({"requeued": count})
    else:
        typer.echo(f"{count} outbox row(s) back to pending; the next dispatch sends them")


@outbox_app.command("mark-sent")
def outbox_mark_sent(
    key: Annotated[str, typer.Argument(metavar="KEY", help="The outbox key (see `ldflow outbox list`).",
                                       show_default=False)],
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close a row whose outcome is unknown as sent, without sending (after checking the mail server's log)."""
    from connectors.db import outbox as ob
    from connectors.db.engine import write_transaction
    from connectors.email.render import message_id_for
    from states.events import EmailSent

    _WRITING["now"] = True
    ctx = _App()
    row = _outbox_rows(ctx, [key])[key]
    if row.status != ob.UNKNOWN:
        raise InvalidInput([FieldError("key", f"{key} is {row.status}: only a row whose outcome is unknown can be "
                                              "marked sent")])
    now = _now(ctx)
    message_id = row.message_id or message_id_for(key, ctx.settings.mail_from.rsplit("@", 1)[-1])
    who = _actor(actor)
    with write_transaction(ctx.engine) as conn:
        done = [a for a in json.loads(row.recipients_done or "[]") if isinstance(a, str)]
        if not ob.mark_sent(conn, row.id, None, message_id=message_id, now=now, recipients_done=done,
                            note=f"marked sent by {who} (outcome was unknown: {row.last_error or 'no detail'})"):
            raise _OutboxChanged(f"outbox {key} changed meanwhile (retried or closed by someone else); "
                                 "see `ldflow outbox list`")
        ctx.store.record_events(conn, row.request_id, [EmailSent(
            key=key, template=row.template, detail="marked sent by an operator after an unknown outcome")],
            who, now)
    if as_json:
        _print_json({"key": key, "status": ob.SENT, "message_id": message_id})
    else:
        typer.echo(f"outbox {key}: marked sent (Message-ID {message_id})")


@inbound_app.command("quarantined")
def inbound_quarantined(
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many (newest first).")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Incoming mail and files that were quarantined, with the reason and where the raw copy is."""
    from connectors.db.inbound import list_quarantined

    ctx = _App()
    with ctx.engine.connect() as conn:
        rows = list_quarantined(conn, limit)
    if as_json:
        _print_json([{k: (_iso_or_none(v) if k == "received_at" else v) for k, v in r.items()} for r in rows])
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from flows import views

    table = Table(box=box.SIMPLE_HEAD, caption=f"{len(rows)} quarantined", caption_justify="left")
    for name in ("id", "received", "source", "message-id", "reason", "raw copy"):
        table.add_column(name, justify="right" if name == "id" else "left", no_wrap=name in ("id", "received"))
    for r in rows:
        table.add_row(str(r["id"]), views.utc(r["received_at"]), escape(r["source"] or ""),
                      escape(r["message_id"] or ""), escape((r["reason"] or "")[:500]), escape(r["raw_path"] or ""))
    views.console().print(table)


@app.command(rich_help_panel="Other")
def demo(
    home: Annotated[Path | None, typer.Option(help="Data directory for the demo (default: ./.ldflow-demo).")]
    = None,
    fresh: Annotated[bool, typer.Option("--fresh/--keep", help="Start from an empty demo directory.")] = True,
) -> None:
    """Take sample requests through the whole lifecycle (SQLite, local mail folder, simulated clock)."""
    import importlib

    try:
        demo_module = importlib.import_module("flows.demo")
    except ModuleNotFoundError as exc:
        if exc.name != "flows.demo":
            raise
        raise ConfigurationError("the demo is not installed (flows/demo.py is missing)") from None
    raise typer.Exit(demo_module.main(home, fresh=fresh))


def _register_pipeline() -> None:
    from flows import cli_pipeline

    cli_pipeline.register(app)


_register_pipeline()


# --- entry point -----------------------------------------------------------------------------------

def _fail(code: int, lines: list[str]) -> NoReturn:
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    raise SystemExit(code)


def report_error(exc: LdflowError) -> NoReturn:
    """Print a domain error for a person (no traceback) and exit with its code."""
    from states.errors import InvalidTransition, TransitionRefused

    tail = ["nothing was written."] if _WRITING["now"] else []
    if isinstance(exc, InvalidInput):
        where = f" in {exc.source}" if exc.source else ""
        _fail(exc.exit_code, [f"error: invalid input{where}:"] + [f"  - {e}" for e in exc.errors] + tail)
    if isinstance(exc, InvalidTransition):
        _fail(exc.exit_code, [f"refused: {exc}", *tail])
    if isinstance(exc, TransitionRefused):
        _fail(exc.exit_code, [f"refused: cannot {exc.trigger} a {exc.state} request; missing:"]
              + [f"  - {m}" for m in exc.missing] + tail)
    _fail(exc.exit_code, [f"error: {exc}", *tail])


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app and turns every user mistake into a message and an exit code."""
    try:
        app(args=argv, prog_name="ldflow")
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


if __name__ == "__main__":
    main()
