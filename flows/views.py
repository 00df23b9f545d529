"""Terminal views of requests for people (the CLI and the demo), with Rich: ``show`` and ``list``.

Every user-provided string goes through :func:`_t` so that text such as
``[urgent]`` is shown as typed, never read as Rich markup. The timeline of
``history`` is in :mod:`flows.timeline`; the export writers (CSV, JSON) are in
:mod:`flows.exports`, xAPI statements in :mod:`flows.xapi`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from connectors.db.store import RequestSummary
from states import evidence, wording
from states.lifecycle import State
from states.models import PlanItem
from states.request import TrainingRequest
from states.results import Outcome
from states.wording import money, plural, printable

# Keyed by the enums (a StrEnum member is its value): tests/unit/test_views.py checks every member has one.
STATE_STYLE: Final[dict[str, str]] = {
    State.RECEIVED: "cyan", State.DIAGNOSED: "blue", State.REDIRECTED: "magenta", State.DESIGNED: "magenta",
    State.DELIVERED: "yellow", State.MEASURED: "green", State.ACKNOWLEDGED: "bold green", State.DECLINED: "red",
    State.CANCELLED: "red",
}
OUTCOME_STYLE: Final[dict[str, str]] = {
    Outcome.MET: "green", Outcome.PARTLY_MET: "yellow", Outcome.NOT_MET: "red", Outcome.WORSE: "bold red",
    Outcome.NO_DATA: "dim",
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
    return escape(printable("" if value is None else str(value)))  # markup and control characters


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


def span(start: datetime | str, end: datetime | str) -> str:
    """``2026-02-16 08:00Z – 11:00Z`` (the end's date only when it differs from the start's)."""
    first, last = utc(start), utc(end)
    return f"{first} – {last[11:] if last[:10] == first[:10] else last}"


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
    if r.companions:
        parts.append(companions_table(r))
    if r.delivery is not None:
        dl = r.delivery
        parts.append(Panel(_kv([("dates", f"{dl.start_date} – {dl.end_date}"), ("format", dl.format),
                                ("audience reached", dl.audience_reached), ("notes", dl.notes)]),
                           title="Delivery", title_align="left"))
    if r.sessions:
        parts.append(sessions_panel(r))
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
    costs_currency = r.plan.costs.currency if r.plan.costs else ""
    for item in r.plan.items:
        if item.baseline:
            base = f"baseline {item.baseline.value:g} ({item.baseline.date}, {_t(item.baseline.source)})"
        elif item.behaviour_or_results:
            base = "[yellow]baseline missing[/]"
        else:
            base = "no baseline needed"
        blocks.append(Text.from_markup(
            f"[bold]{_t(item.id)}[/]  {item.framework.value} level {item.level}: {_t(item.metric)} ({_t(item.unit)})\n"
            f"    {base} → {'guardrail' if item.guardrail else 'target'} {_t(_goal(item))} by {item.target.date}"
            f"{'; isolated by ' + item.isolation.method.value if item.isolation else ''}\n"
            f"    {item.instrument.value}, from the {item.respondent.value}; checkpoints {', '.join(item.checkpoints)}"
            f" after delivery; owner {_t(item.owner.email)}"
            + (f"; {money(item.value_per_unit, costs_currency)} per unit" if item.value_per_unit is not None else "")))
    if r.plan_approved_by:
        status = f"[green]approved by {_t(r.plan_approved_by)} at {utc(r.plan_approved_at)}[/]"
    else:
        status = f"[yellow]awaiting approval by the sponsor {_t(r.intake.sponsor.email)}[/]"
    parts: list[RenderableType] = [*blocks, Text.from_markup(status)]
    if r.plan.costs:
        costs = r.plan.costs
        lines = ", ".join(f"{x.category.value} {money(x.amount, costs.currency)}" for x in costs.itemised())
        parts.append(Text(printable(f"fully loaded costs: {money(costs.total, costs.currency)} ({lines})")))
    if r.plan_draft is not None:
        ids = ", ".join(i.id for i in r.plan_draft.plan.items)
        parts.append(Text.from_markup(f"[yellow]version {r.plan_draft.version} drafted (items {_t(ids)}), awaiting "
                                      f"approval by the sponsor {_t(r.intake.sponsor.email)}[/]"))
    title = f"Measurement plan (version {r.plan_version})" if r.plan_version > 1 or r.plan_draft else \
        "Measurement plan"
    return Panel(Group(*parts), title=title, title_align="left")


def sessions_panel(r: TrainingRequest) -> Panel:
    """Each session: id, status and time (UTC) on one line, then its title, place and attendees."""
    blocks: list[RenderableType] = []
    for s in r.sessions:
        p = s.plan
        if s.cancelled:
            status = "[red]cancelled[/]"
        else:
            status = f"updated {plural(s.sequence, 'time')}" if s.sequence else "scheduled"
        attendees = ", ".join(a.email for a in p.attendees) or \
            f"{(r.intake.audience.contact or r.intake.requester).email} (default)"
        where = f"\n    at {_t(p.location)}" if p.location else ""
        blocks.append(Text.from_markup(f"[bold]{_t(p.id)}[/]  {status}  {span(p.start, p.end)}\n    {_t(p.title)}"
                                       f"{where}\n    attendees {_t(attendees)}"))
    return Panel(Group(*blocks), title="Sessions (times in UTC)", title_align="left")


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
        if c.asked:  # a group survey: how many of those asked have answered
            result = f"{result} ({len(c.answers)} of {len(c.asked)} answered)".strip()
        table.add_row(f"{_t(c.item_id)}:{_t(c.offset)}", utc(c.due_at), _t(c.status.value), utc(c.sent_at),
                      result, _t(c.note))
    return table


def results_table(r: TrainingRequest) -> RenderableType:
    table = Table(title="Results", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("item", "metric", "baseline", "target", "result", "outcome"):
        table.add_column(col)
    for res in r.results:
        style = OUTCOME_STYLE.get(res.outcome.value, "white")
        goal = _t(res.goal) if res.goal else _num(res.target)
        table.add_row(_t(res.item_id), f"{_t(res.metric)} ({_t(res.unit)})", _num(res.baseline),
                      f"guardrail {goal}" if res.guardrail else goal, _num(res.result),
                      f"[{style}]{res.outcome.value}[/]")
    notes = [Text(f"{res.item_id}: {evidence.effect_sentence(res.model_dump(mode='json'))}")
             for res in r.results if res.isolation and res.result is not None]
    if r.roi is None:
        return Group(table, *notes)
    roi = r.roi
    return Group(table, *notes, Text(printable(f"benefits {money(roi.benefits, roi.currency)}, costs "
                                               f"{money(roi.costs, roi.currency)}: benefit-cost ratio "
                                               f"{roi.benefit_cost_ratio:g}, ROI {roi.roi_percent:g}%")),
                 *(Text(printable(x)) for x in evidence.roi_sentences(roi.model_dump(mode="json"))[1:]))


def _goal(item: PlanItem) -> str:
    t = item.target
    return wording.goal(evidence.direction_of(item).value, t.value, item.unit, t.low, t.high)


def companions_table(r: TrainingRequest) -> Table:
    """The solution mix's companion pieces: id, kind, what, owner, due, status (and why dropped)."""
    t = Table(title="Companion pieces (the solution mix)", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("id", "kind", "what", "owner", "due", "status"):
        t.add_column(name, overflow="fold")
    for c in r.companions:
        status = c.status.value + (f": {c.reason}" if c.reason else "") + (f": {c.outcome}" if c.outcome else "")
        t.add_row(_t(c.id), _t(wording.piece_kind(c.kind.value)), _t(c.what), _t(_person(c.owner)), str(c.due),
                  _t(status))
    return t


def acknowledgement_panel(r: TrainingRequest) -> Panel:
    a = r.acknowledgement
    assert a is not None
    steps = "\n".join(f"• {s.step} — {s.owner}" + (f" <{s.email}>" if s.email else "")
                      + (f" by {s.due}" if s.due else "") for s in a.action_plan)
    return Panel(_kv([("recap", "\n".join(f"• {x}" for x in a.recap)), ("action plan", steps),
                      ("thanks", "\n".join(f"• {c.stakeholder}: {c.contribution}" for c in a.contributions)),
                      ("message", a.message)]), title="Closing the loop", title_align="left")


# --- list ---------------------------------------------------------------------------------------------

# Columns of `ldflow list` in the order they are given up when the terminal is too narrow (id, title and
# state always stay; the title folds into the width that is left, at least _TITLE_MIN columns).
_DROP_ORDER: Final = ("created", "requester / sponsor", "v", "updated")
_TITLE_MIN: Final = 24


class _FittedList:
    """The request list, laid out for the width it is printed at: id and title first, then what fits."""

    def __init__(self, rows: list[RequestSummary], caption: str) -> None:
        self.rows, self.caption = rows, caption

    def _cells(self) -> dict[str, list[str]]:
        rows = self.rows
        return {"id": [str(r.id) for r in rows], "title": [_t(r.title) for r in rows],
                "state": [_state(r.state) for r in rows], "v": [str(r.version) for r in rows],
                "updated": [utc(r.updated_at) for r in rows],
                "requester / sponsor": [f"{_t(r.requester)}\n{_t(r.sponsor)}" for r in rows],
                "created": [utc(r.created_at)[:10] for r in rows]}

    def table(self, width: int) -> Table:
        """The table for ``width`` columns, dropping columns in ``_DROP_ORDER`` until it fits."""
        cells = self._cells()
        plain = {"state": [r.state for r in self.rows], "requester / sponsor": [
            max(r.requester, r.sponsor, key=len) for r in self.rows]}

        def need(name: str) -> int:
            values = plain.get(name, cells[name])
            return max([len(name), *(len(v) for v in values)])

        shown = ["id", "title", "state", "v", "requester / sponsor", "created", "updated"]
        title_need = min(need("title"), _TITLE_MIN)
        for name in _DROP_ORDER:
            if self._fixed(shown, need) + title_need <= width:
                break
            shown.remove(name)
        title_need = max(8, min(title_need, width - self._fixed(shown, need)))  # narrower still: the title folds
        table = Table(box=box.SIMPLE_HEAD, caption=self.caption, caption_justify="left")
        for name in shown:
            table.add_column(name, justify="right" if name in ("id", "v") else "left", no_wrap=name != "title",
                             overflow="fold", min_width=title_need if name == "title" else None)
        for i in range(len(self.rows)):
            table.add_row(*(cells[name][i] for name in shown))
        return table

    @staticmethod
    def _fixed(shown: list[str], need: Callable[[str], int]) -> int:
        """The width of every column but the title, with the padding and edges of ``shown``."""
        return sum(need(c) for c in shown if c != "title") + 3 * len(shown) + 1

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


def list_table(rows: list[RequestSummary], page: int, pages: int, total: int) -> RenderableType:
    """`ldflow list`: id and title first; the other columns are shown as the width allows."""
    return _FittedList(rows, f"page {page} of {pages}, {total} total")
