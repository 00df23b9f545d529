"""The request commands that write: intake, diagnosis, design or redirect, sessions, delivery,
results, measurement, closing the loop, declining, cancelling, notes.

Every one takes its input from a YAML/JSON file (``-f FILE``, ``-`` for stdin) and/or flags (flags
win), an ``--actor`` and an optional ``--if-version N``, and calls the request service.
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
    choice,
    done,
    merge_input,
    open_app,
)
from flows.vocabulary import RedirectKindChoice
from states.errors import FieldError, InvalidInput
from states.wording import plural

app = typer.Typer()


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def submit(
    file: FileOpt = None,
    title: Annotated[str | None, typer.Option(help="Short title of the request.")] = None,
    requester_name: Annotated[str | None, typer.Option(help="Requester's name.")] = None,
    requester_email: Annotated[str | None, typer.Option(help="Requester's e-mail.")] = None,
    sponsor_name: Annotated[str | None, typer.Option(help="Sponsor's name (approves the plan).")] = None,
    sponsor_email: Annotated[str | None, typer.Option(help="Sponsor's e-mail.")] = None,
    solution: Annotated[str | None, typer.Option(help="What was asked for, in the requester's words.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new request id.")] = False,
    who: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a new training request as the requester put it (intake). Prints the new id."""
    data, source = merge_input(file, title=title, **{
             "requester.name": requester_name, "requester.email": requester_email,
             "sponsor.name": sponsor_name, "sponsor.email": sponsor_email, "requested_solution": solution})
    request = open_app().service.submit(data, actor(who), source=source)
    if quiet:
        typer.echo(str(request.id))
    else:
        done(request, as_json, f"submitted {request.intake.title!r}")


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def diagnose(
    request_id: IdArg,
    file: FileOpt = None,
    summary: Annotated[str | None, typer.Option(help="Summary of the diagnosis.")] = None,
    action: Annotated[list[str] | None, typer.Option(
        "--action", help="An observable on-the-job action (repeatable; replaces the file's list).")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Diagnose: business goal, observable actions, cause checks. Recommends design and/or redirects."""
    data, source = merge_input(file, summary=summary, observable_actions=action)
    request = open_app().service.diagnose(request_id, data, actor(who), if_version, source)
    paths = [r.path for r in request.recommendations]
    done(request, as_json, "diagnosed; recommended: " + (", ".join(paths) or "nothing conclusive"),
         recommendations=[r.model_dump() for r in request.recommendations])


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def rediagnose(
    request_id: IdArg,
    reason: Annotated[str, typer.Option(help="Why the diagnosis changes.")],
    file: FileOpt = None,
    summary: Annotated[str | None, typer.Option(help="Summary of the diagnosis.")] = None,
    action: Annotated[list[str] | None, typer.Option(
        "--action", help="An observable on-the-job action (repeatable; replaces the file's list).")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Diagnose a diagnosed request again, before design or redirect: the new diagnosis and its
    recommendations replace the old ones, and the stakeholders get the summary again."""
    data, source = merge_input(file, summary=summary, observable_actions=action)
    request = open_app().service.rediagnose(request_id, data, {"reason": reason}, actor(who), if_version, source)
    paths = [r.path for r in request.recommendations]
    done(request, as_json, "re-diagnosed; recommended: " + (", ".join(paths) or "nothing conclusive"),
         recommendations=[r.model_dump() for r in request.recommendations])


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def design(
    request_id: IdArg,
    file: FileOpt = None,
    format: Annotated[str | None, typer.Option("--format", help="Format, e.g. 'workshop with role-play'.")] = None,
    approach: Annotated[str | None, typer.Option(help="The approach in a sentence or two.")] = None,
    objective: Annotated[list[str] | None, typer.Option(
        "--objective", help="An observable objective (repeatable; replaces the file's list).")] = None,
    override: Annotated[str | None, typer.Option(
        "--skill-gap-override", help="Why design although the diagnosis found no skill gap.")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Design a learning solution (needs an approved measurement plan with baselines)."""
    data, source = merge_input(file, format=format, approach=approach, objectives=objective,
                               skill_gap_override=override)
    request = open_app().service.design(request_id, data, actor(who), if_version, source)
    done(request, as_json, f"designed ({request.brief.format if request.brief else ''})")


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def redirect(
    request_id: IdArg,
    file: FileOpt = None,
    kind: Annotated[RedirectKindChoice | None, typer.Option(
        help="What solves it instead of training.", parser=choice(RedirectKindChoice, "kind"))] = None,
    rationale: Annotated[str | None, typer.Option(help="Why this, rather than training.")] = None,
    owner_name: Annotated[str | None, typer.Option(help="Who owns the redirect.")] = None,
    owner_email: Annotated[str | None, typer.Option(help="The owner's e-mail.")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Redirect: solve it without training (job aid, process change, ...). Needs an approved plan."""
    data, source = merge_input(file, kind=kind, rationale=rationale,
                               **{"owner.name": owner_name, "owner.email": owner_email})
    request = open_app().service.redirect(request_id, data, actor(who), if_version, source)
    kind_text = request.redirect_record.kind.value if request.redirect_record and request.redirect_record.kind else ""
    done(request, as_json, f"redirected ({kind_text})")


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def session(
    request_id: IdArg,
    file: FileOpt = None,
    session_id: Annotated[str | None, typer.Option("--id", help="Session id; an existing id reschedules it.")] = None,
    title: Annotated[str | None, typer.Option(help="Session title.")] = None,
    start: Annotated[str | None, typer.Option(help="Start, ISO 8601 with offset (2026-12-01T09:00+01:00).")] = None,
    end: Annotated[str | None, typer.Option(help="End, ISO 8601 with offset.")] = None,
    location: Annotated[str | None, typer.Option(help="Where (room, link).")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Schedule or reschedule a delivery session: attendees get a calendar invite (same event, new SEQUENCE)."""
    data, source = merge_input(file, id=session_id, title=title, start=start, end=end, location=location)
    request = open_app().service.schedule_session(request_id, data, actor(who), if_version, source)
    latest = request.sessions[-1] if request.sessions else None
    chosen = next((x for x in request.sessions if x.plan.id == (data.get("id") or "")), latest)
    what = (f"session {chosen.plan.id} scheduled {chosen.plan.start:%Y-%m-%d %H:%M}Z (sequence {chosen.sequence})"
            if chosen else "session scheduled")
    done(request, as_json, what)


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def deliver(
    request_id: IdArg,
    file: FileOpt = None,
    start: Annotated[str | None, typer.Option(help="Start date (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="End date (YYYY-MM-DD); checkpoints count from it.")] = None,
    reached: Annotated[int | None, typer.Option(help="Audience reached (people).")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Delivery format.")] = None,
    notes: Annotated[str | None, typer.Option(help="Notes.")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record delivery; measurement checkpoints are scheduled from the end date."""
    data, source = merge_input(file, start_date=start, end_date=end, audience_reached=reached, format=format,
                               notes=notes)
    request = open_app().service.deliver(request_id, data, actor(who), if_version, source)
    due = ", ".join(f"{c.item_id}:{c.offset} {c.due_at:%Y-%m-%d}" for c in request.checkpoints)
    done(request, as_json, f"delivered; checkpoints scheduled: {due}",
         checkpoints=[{"key": c.key, "due_at": c.due_at.isoformat()} for c in request.checkpoints])


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def record(
    request_id: IdArg,
    checkpoint: Annotated[str | None, typer.Option(
        "--checkpoint", "-c", help="Checkpoint key, e.g. m1:P30D (see `ldflow show ID`).")] = None,
    value: Annotated[float | None, typer.Option(help="The measured value.")] = None,
    note: Annotated[str | None, typer.Option(help="A note on the result.")] = None,
    missed: Annotated[str | None, typer.Option(
        "--missed", help="Close the checkpoint as missed, with this reason.")] = None,
    comparison: Annotated[float | None, typer.Option(
        "--comparison", help="The comparison group's value at this checkpoint (an item isolated by a control "
                             "group).")] = None,
    early: Annotated[str | None, typer.Option(
        "--early", help="Record a value before the checkpoint is due (a correction), with this reason; it is "
                        "kept in the history. Without it an early value is refused (exit 3).")] = None,
    file: FileOpt = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a checkpoint result (--value) or close it as missed (--missed REASON).

    A value is recorded once the checkpoint is due (its due date is in `ldflow show ID`); before then it
    is refused unless --early REASON says why.
    """
    data, source = merge_input(file, checkpoint=checkpoint, value=value, note=note, missed_reason=missed,
                               comparison_value=comparison, early_reason=early)
    key = data.pop("checkpoint", None)
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput([FieldError("checkpoint", "is required (e.g. --checkpoint m1:P30D)")], source)
    request = open_app().service.record(request_id, key.strip(), data, actor(who), if_version, source)
    c = request.checkpoint(key.strip())
    open_count = sum(1 for x in request.checkpoints if not x.closed)
    what = f"recorded {c.item_id}:{c.offset} = {c.value:g}" if c.value is not None else \
        f"closed {c.item_id}:{c.offset} as missed"
    if c.early_reason:
        what += f" (early, due {c.due_at:%Y-%m-%d}: {c.early_reason})"
    done(request, as_json, f"{what}; {plural(open_count, 'checkpoint')} still open", checkpoint=c.key,
         open_checkpoints=open_count)


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def measure(
    request_id: IdArg,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close measurement: compare results with targets (every checkpoint must be closed)."""
    request = open_app().service.measure(request_id, actor(who), if_version)
    outcomes = ", ".join(f"{r.item_id} {r.outcome.value}" for r in request.results)
    done(request, as_json, f"measured: {outcomes}",
         results=[r.model_dump(mode="json") for r in request.results],
         roi=request.roi.model_dump(mode="json") if request.roi else None)


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def acknowledge(
    request_id: IdArg,
    file: FileOpt = None,
    recap: Annotated[list[str] | None, typer.Option(
        "--recap", help="A takeaway (repeatable; replaces the file's list).")] = None,
    message: Annotated[str | None, typer.Option(help="A personal message for the stakeholders.")] = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close the loop: recap, action plan with owners, contributions. Sends the results report."""
    data, source = merge_input(file, recap=recap, message=message)
    request = open_app().service.acknowledge(request_id, data, actor(who), if_version, source)
    done(request, as_json, "acknowledged; the results report is queued for the stakeholders")


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def decline(
    request_id: IdArg,
    reason: Annotated[str | None, typer.Option(help="Why the request is declined.")] = None,
    file: FileOpt = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decline a received or diagnosed request, with a reason."""
    data, source = merge_input(file, reason=reason)
    request = open_app().service.decline(request_id, data, actor(who), if_version, source)
    done(request, as_json, "declined")


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def cancel(
    request_id: IdArg,
    reason: Annotated[str | None, typer.Option(help="Why the request is cancelled.")] = None,
    file: FileOpt = None,
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel any open request, with a reason (open checkpoints are closed as missed)."""
    data, source = merge_input(file, reason=reason)
    request = open_app().service.cancel(request_id, data, actor(who), if_version, source)
    done(request, as_json, "cancelled")


@app.command(cls=WriteCommand, rich_help_panel="Requests")
def note(
    request_id: IdArg,
    text: Annotated[str, typer.Argument(help="The note.", show_default=False)],
    who: ActorOpt = None,
    if_version: IfVersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a note to a request's history."""
    request = open_app().service.add_note(request_id, text, actor(who), expect_version=if_version)
    done(request, as_json, "note added")
