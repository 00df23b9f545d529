"""Terminal views of requests for people (the CLI and the demo), with Rich.

Every user-provided string goes through :func:`_t` so that text such as
``[urgent]`` is shown as typed, never read as Rich markup. The export writers
(CSV, JSON) are in :mod:`flows.exports`, xAPI statements in :mod:`flows.xapi`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from connectors.db.audit import AuditRecord
from connectors.db.store import RequestSummary
from states import events as ev
from states.lifecycle import State
from states.request import TrainingRequest
from states.results import Outcome

# Keyed by the enums (a StrEnum member is its value): tests/unit/test_views.py checks every member has one.
STATE_STYLE: Final[dict[str, str]] = {
    State.RECEIVED: "cyan", State.DIAGNOSED: "blue", State.REDIRECTED: "magenta", State.DESIGNED: "magenta",
    State.DELIVERED: "yellow", State.MEASURED: "green", State.ACKNOWLEDGED: "bold green", State.DECLINED: "red",
    State.CANCELLED: "red",
}
OUTCOME_STYLE: Final[dict[str, str]] = {
    Outcome.MET: "green", Outcome.PARTLY_MET: "yellow", Outcome.NOT_MET: "red", Outcome.NO_DATA: "dim",
}


def console(stderr: bool = False) -> Console:
    """A console for people. Piped into a file or a pager (no terminal, no $COLUMNS) the
    tables get 120 columns instead of Rich's 80, which squeezes the e-mail columns."""
    import os
    import sys

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 120
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def _t(value: Any) -> str:
    return escape("" if value is None else str(value))


def utc(at: datetime | str | None) -> str:
    """A UTC time for people: ``2026-11-10 09:00Z``."""
    if at is None:
        return ""
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            return str(at)
    from datetime import UTC

    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def _state(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{_t(state)}[/]"


def _kv(rows: list[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in rows:
        if value not in (None, "", []):
            table.add_row(key, value if isinstance(value, Text | Table) else _t(value))
    return table


def _person(p: Any) -> str:
    role = f", {p.role}" if getattr(p, "role", "") else ""
    return f"{p.name} <{p.email}>{role}"


# --- show ---------------------------------------------------------------------------------------------

def request_view(r: TrainingRequest) -> RenderableType:
    parts: list[RenderableType] = [
        Text.from_markup(f"[bold]#{r.id} {_t(r.intake.title)}[/]  {_state(r.state.value)}  version {r.version}  "
                         f"created {utc(r.created_at)}  updated {utc(r.updated_at)}"),
        intake_panel(r), goal_panel(r)]
    if r.diagnosis is not None:
        parts.append(diagnosis_panel(r))
    if r.plan is not None:
        parts.append(plan_panel(r))
    if r.brief is not None:
        b = r.brief
        parts.append(Panel(_kv([("format", b.format), ("approach", b.approach), ("duration", b.duration),
                                ("objectives", "\n".join(f"• {o}" for o in b.objectives)),
                                ("practice", "\n".join(f"• {p}" for p in b.practice_activities)),
                                ("skill-gap override", b.skill_gap_override)]),
                           title="Design brief", title_align="left"))
    if r.redirect_record is not None:
        rd = r.redirect_record
        parts.append(Panel(_kv([("kind", rd.kind.value if rd.kind else ""), ("rationale", rd.rationale),
                                ("owner", _person(rd.owner) if rd.owner else "")]),
                           title="Redirect", title_align="left"))
    if r.delivery is not None:
        dl = r.delivery
        parts.append(Panel(_kv([("dates", f"{dl.start_date} – {dl.end_date}"), ("format", dl.format),
                                ("audience reached", dl.audience_reached), ("notes", dl.notes)]),
                           title="Delivery", title_align="left"))
    if r.checkpoints:
        parts.append(checkpoints_table(r))
    if r.results:
        parts.append(results_table(r))
    if r.acknowledgement is not None:
        parts.append(acknowledgement_panel(r))
    if r.closing_reason:
        parts.append(Panel(_t(r.closing_reason), title=f"Reason ({r.state.value})", title_align="left"))
    return Group(*parts)


def intake_panel(r: TrainingRequest) -> Panel:
    i = r.intake
    audience = i.audience.description + (f" ({i.audience.size} people)" if i.audience.size is not None else "")
    return Panel(_kv([
        ("requester", _person(i.requester)), ("sponsor", _person(i.sponsor)),
        ("stakeholders", "\n".join(_person(p) for p in i.stakeholders)),
        ("asked for", i.requested_solution), ("audience", audience.strip()), ("why now", i.why_now),
        ("tried already", i.tried_already)]), title="Intake", title_align="left")


def goal_panel(r: TrainingRequest) -> Panel:
    g = r.intake.business_goal
    unit = f" {g.unit}" if g.unit else ""
    missing = g.missing()
    rows: list[tuple[str, Any]] = [
        ("metric", g.metric),
        ("current → target", f"{_num(g.current_value)}{unit} → {_num(g.target_value)}{unit}"
         if g.current_value is not None or g.target_value is not None else ""),
        ("by", g.target_date), ("data source", g.data_source)]
    if missing:
        rows.append(("still missing", Text(", ".join(m.replace("_", " ") for m in missing), style="yellow")))
    return Panel(_kv(rows), title="Business goal", title_align="left")


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def diagnosis_panel(r: TrainingRequest) -> Panel:
    d = r.diagnosis
    assert d is not None
    checks = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    checks.add_column("cause check")
    checks.add_column("answer")
    checks.add_column("evidence")
    for name, answer in d.cause_checks.items():
        checks.add_row(_t(name), _t(answer.answer.value), _t(answer.evidence))
    recs = "\n".join(f"• {r_.path}: " + "; ".join(r_.reasons) for r_ in r.recommendations)
    body = Group(_kv([("summary", d.summary), ("observable actions", "\n".join(f"• {a}" for a in
                                                                              d.observable_actions)),
                      ("recommended", recs or "nothing conclusive")]), checks)
    return Panel(body, title="Diagnosis", title_align="left")


def plan_panel(r: TrainingRequest) -> Panel:
    if r.plan is None:
        return Panel("no measurement plan drafted yet (`ldflow plan draft ID -f plan.yaml`)",
                     title="Measurement plan", title_align="left")
    blocks: list[RenderableType] = []
    for item in r.plan.items:
        if item.baseline:
            base = f"baseline {item.baseline.value:g} ({item.baseline.date}, {_t(item.baseline.source)})"
        elif item.behaviour_or_results:
            base = "[yellow]baseline missing[/]"
        else:
            base = "no baseline needed"
        blocks.append(Text.from_markup(
            f"[bold]{_t(item.id)}[/]  {item.framework.value} level {item.level}: {_t(item.metric)} ({_t(item.unit)})\n"
            f"    {base} → target {item.target.value:g} by {item.target.date}\n"
            f"    {item.instrument.value}, from the {item.respondent.value}; checkpoints {', '.join(item.checkpoints)}"
            f" after delivery; owner {_t(item.owner.email)}"
            + (f"; {item.value_per_unit:,.2f} per unit" if item.value_per_unit is not None else "")))
    if r.plan_approved_by:
        status = f"[green]approved by {_t(r.plan_approved_by)} at {utc(r.plan_approved_at)}[/]"
    else:
        status = f"[yellow]awaiting approval by the sponsor {_t(r.intake.sponsor.email)}[/]"
    parts: list[RenderableType] = [*blocks, Text.from_markup(status)]
    if r.plan.costs:
        parts.append(Text(f"program cost: {r.plan.costs.program_cost:,.2f} {r.plan.costs.currency}"))
    return Panel(Group(*parts), title="Measurement plan", title_align="left")


def checkpoints_table(r: TrainingRequest) -> Table:
    table = Table(title="Checkpoints", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("checkpoint", "due", "status", "sent", "result", "note"):
        table.add_column(col, no_wrap=col in ("checkpoint", "due", "status", "sent"))
    for c in r.checkpoints:
        if c.value is not None:
            result = f"{c.value:g}"
        elif c.missed_reason:
            result = f"missed: {_t(c.missed_reason)}"
        else:
            result = ""
        table.add_row(f"{_t(c.item_id)}:{_t(c.offset)}", utc(c.due_at), _t(c.status.value), utc(c.sent_at),
                      result, _t(c.note))
    return table


def results_table(r: TrainingRequest) -> RenderableType:
    table = Table(title="Results", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("item", "metric", "baseline", "target", "result", "outcome"):
        table.add_column(col)
    for res in r.results:
        style = OUTCOME_STYLE.get(res.outcome.value, "white")
        table.add_row(_t(res.item_id), f"{_t(res.metric)} ({_t(res.unit)})", _num(res.baseline), _num(res.target),
                      _num(res.result), f"[{style}]{res.outcome.value}[/]")
    if r.roi is None:
        return table
    roi = r.roi
    return Group(table, Text(f"benefits {roi.benefits:,.2f} {roi.currency}, costs {roi.costs:,.2f}: "
                             f"benefit-cost ratio {roi.benefit_cost_ratio:g}, ROI {roi.roi_percent:g}%"))


def acknowledgement_panel(r: TrainingRequest) -> Panel:
    a = r.acknowledgement
    assert a is not None
    steps = "\n".join(f"• {s.step} — {s.owner}" + (f" by {s.due}" if s.due else "") for s in a.action_plan)
    return Panel(_kv([("recap", "\n".join(f"• {x}" for x in a.recap)), ("action plan", steps),
                      ("thanks", "\n".join(f"• {c.stakeholder}: {c.contribution}" for c in a.contributions)),
                      ("message", a.message)]), title="Closing the loop", title_align="left")


# --- list ---------------------------------------------------------------------------------------------

def list_table(rows: list[RequestSummary], page: int, pages: int, total: int) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, caption=f"page {page} of {pages}, {total} total", caption_justify="left")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("title", min_width=28)
    table.add_column("state", no_wrap=True)
    table.add_column("v", justify="right", no_wrap=True)
    table.add_column("requester / sponsor", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    for r in rows:
        table.add_row(str(r.id), _t(r.title), _state(r.state), str(r.version), f"{_t(r.requester)}\n{_t(r.sponsor)}",
                      utc(r.created_at)[:10], utc(r.updated_at))
    return table


# --- history ------------------------------------------------------------------------------------------

def _num_any(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _mail(e: Any, key: Callable[[Any], str]) -> str:
    detail = f": {e.detail}" if e.detail else ""
    return f"{str(e.template).replace('_', ' ')} to {', '.join(e.to or ())}{detail}"


def _acknowledged(e: ev.Acknowledged, key: Callable[[Any], str]) -> str:
    a = e.acknowledgement
    return (f"{len(a.get('recap', []))} takeaways, {len(a.get('action_plan', []))} next steps, "
            f"{len(a.get('contributions', []))} thanks")


# What each kind of event was about, in one line; ``key`` shows a checkpoint key without the request id.
# Kinds without an entry (sessions) are shown as their payload.
_SUMMARIES: Final[dict[type[ev.Fact] | type[ev.TransitionEvent], Callable[[Any, Callable[[Any], str]], str]]] = {
    ev.Submitted: lambda e, key: f"{e.intake.get('title', '')!r} from {e.intake.get('requester', {}).get('email', '')}",
    ev.Diagnosed: lambda e, key: "recommended: " + (", ".join(r.get("path") for r in e.recommendations)
                                                    or "nothing conclusive"),
    ev.PlanDrafted: lambda e, key: (f"{len(e.plan.get('items', []))} item(s): "
                                    + ", ".join(str(i.get("id")) for i in e.plan.get("items", []))),
    ev.PlanApproved: lambda e, key: f"approver {e.approver}" + (f": {e.comment}" if e.comment else ""),
    ev.Designed: lambda e, key: f"format: {e.brief.get('format', '')}",
    ev.Redirected: lambda e, key: f"{e.redirect.get('kind')}: {e.redirect.get('rationale', '')}",
    ev.Delivered: lambda e, key: (f"{e.delivery.get('start_date')} – {e.delivery.get('end_date')}, "
                                  f"{e.delivery.get('audience_reached')} reached, {e.delivery.get('format')}"),
    ev.CheckpointScheduled: lambda e, key: f"{e.item}:{e.offset} due {utc(e.due_at)}",
    ev.SurveySent: lambda e, key: f"{key(e.checkpoint)} to {', '.join(e.to)}",
    ev.ReminderSent: lambda e, key: f"{key(e.checkpoint)} reminder {e.reminder}",
    ev.CheckpointFlagged: lambda e, key: f"{key(e.checkpoint)} {e.late_by_days} days late: needs review",
    ev.ResultRecorded: lambda e, key: (f"{key(e.checkpoint)} = {_num_any(e.value)}"
                                       + (f" ({e.note})" if e.note else "")),
    ev.CheckpointMissed: lambda e, key: f"{key(e.checkpoint)} missed: {e.reason}",
    ev.Measured: lambda e, key: ", ".join(f"{r.get('item_id')} {r.get('outcome')}" for r in e.results),
    ev.Acknowledged: _acknowledged,
    ev.Declined: lambda e, key: str(e.reason),
    ev.Cancelled: lambda e, key: str(e.reason),
    ev.NoteAdded: lambda e, key: str(e.text) + (f" (from {e.source})" if e.source else ""),
    ev.EmailSent: _mail,
    ev.EmailBounced: _mail,
    ev.InviteSent: _mail,
}


def summarize(record: AuditRecord) -> str:
    """One line saying what an event was about (the payload itself for a kind without a summary, or one
    that does not fit its event class)."""
    prefix = f"{record.request_id}:"

    def key(value: Any) -> str:  # checkpoint keys without the request id in front
        text = str(value)
        return text[len(prefix):] if text.startswith(prefix) else text

    try:
        event = ev.read(record.type, record.payload, record.from_state)
        summary = _SUMMARIES.get(type(event))
        if summary is not None:
            return summary(event, key)
    except (AttributeError, TypeError, ValueError):
        pass
    text = json.dumps(record.payload, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 100 else text[:99] + "…"


def timeline(request_id: int, records: list[AuditRecord]) -> RenderableType:
    """One entry per event: number, UTC time, event (with the state change) and actor, then what it was about."""
    lines: list[RenderableType] = [Text.from_markup(f"[bold]History of request {request_id}[/] (times in UTC)")]
    for rec in records:
        event = f"[bold]{_t(rec.type)}[/]"
        if rec.trigger:
            event += f" ({_t(rec.from_state)} → {_state(rec.to_state or '')})"
        head = Text.from_markup(f"{rec.seq:>5}  {utc(rec.at)}  {event}  [dim]by[/] {_t(rec.actor)}")
        lines.append(head)
        what = summarize(rec)
        if what.strip():
            lines.append(Padding(Text(what), (0, 0, 0, 8)))
    if not records:
        lines.append(Text("no events"))
    return Group(*lines)
