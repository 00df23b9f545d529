"""The timeline of ``ldflow history``: one entry per audit event, with what it was about in words.

Every user-provided string is escaped, so that text such as ``[urgent]`` is shown as typed, never
read as Rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from connectors.db.audit import AuditRecord
from flows.attribution import shown
from flows.views import STATE_STYLE, span, utc
from states import events as ev
from states.wording import plural, printable


def _t(value: Any) -> str:
    return escape(printable("" if value is None else str(value)))  # markup and control characters


def _state(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{_t(state)}[/]"


def _some(addresses: tuple[str, ...] | list[str], shown: int = 3) -> str:
    """A few addresses, and how many more (a roster's survey goes to hundreds)."""
    listed = ", ".join(addresses[:shown])
    return listed + (f" and {len(addresses) - shown} more" if len(addresses) > shown else "")


def _num_any(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _mail(e: Any, key: Callable[[Any], str]) -> str:
    detail = f": {e.detail}" if e.detail else ""
    to = f" to {', '.join(e.to)}" if e.to else ""
    return f"{str(e.template).replace('_', ' ')}{to}{detail}"


def _session(e: ev.SessionScheduled | ev.SessionRescheduled, key: Callable[[Any], str]) -> str:
    s = e.session
    where = f" at {s['location']}" if s.get("location") else ""
    people = [p.get("email", "") for p in s.get("attendees") or []]
    invited = f"; invited {', '.join(people)}" if people else "; invited the audience contact or requester"
    update = f" (update {e.sequence} of the invite)" if e.sequence else ""
    return f"{s.get('id', '')} {s.get('title', '')!r}, {span(s['start'], s['end'])}{where}{invited}{update}"


def _acknowledged(e: ev.Acknowledged, key: Callable[[Any], str]) -> str:
    a = e.acknowledgement
    return (f"{plural(len(a.get('recap', [])), 'takeaway')}, {plural(len(a.get('action_plan', [])), 'next step')}, "
            f"thanks for {plural(len(a.get('contributions', [])), 'contribution')}")


def _value(value: Any) -> str:
    """An amended field's value in words: a person as "Name <email>", a list joined, a goal's fields."""
    if isinstance(value, dict) and "email" in value:
        role = f", {value['role']}" if value.get("role") else ""
        return f"{value.get('name', '')}{role} <{value['email']}>".strip()
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in value.items() if v not in (None, "")) \
            or "nothing"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "nobody"
    return "nothing" if value in (None, "") else _num_any(value)


def _behalf(e: ev.PlanApproved | ev.PlanRevisionApproved) -> str:
    return f" (recorded on their behalf by the admin {e.recorded_by}; reason: {e.reason})" if e.recorded_by else ""


def _field_words(name: str) -> str:
    """``items.m1.owner`` → "item m1 owner", ``companions.c1.owner`` → "companion piece c1 owner",
    ``business_goal`` → "business goal"."""
    parts = name.split(".")
    if parts[0] == "items" and len(parts) == 3:
        return f"item {parts[1]} {parts[2]}"
    if parts[0] == "companions" and len(parts) == 3:
        return f"companion piece {parts[1]} {parts[2]}"
    return " ".join(parts).replace("_", " ")


def _amended(e: ev.Amended, key: Callable[[Any], str]) -> str:
    lines = []
    for name, change in e.changes.items():
        before, after = change.get("before"), change.get("after")
        if isinstance(before, dict) and isinstance(after, dict) and "email" not in after:
            # a goal or an audience: the parts that changed
            lines += [f"{_field_words(name)} {_field_words(k)}: {_value(before.get(k))} → {_value(after.get(k))}"
                      for k in after if after.get(k) != before.get(k)]
        else:
            lines.append(f"{_field_words(name)}: {_value(before)} → {_value(after)}")
    return f"{'; '.join(lines)} (because: {e.reason})"


# What each kind of event was about, in one line; ``key`` shows a checkpoint key without the request id.
# Every class of states.events.EVENTS has one (tests/unit/test_views.py checks); a stored row of an unknown
# type, or one whose payload does not fit its class, is shown as its payload.
_SUMMARIES: Final[dict[type[ev.Fact] | type[ev.TransitionEvent], Callable[[Any, Callable[[Any], str]], str]]] = {
    ev.Submitted: lambda e, key: f"{e.intake.get('title', '')!r} from {e.intake.get('requester', {}).get('email', '')}",
    ev.Diagnosed: lambda e, key: "recommended: " + (", ".join(r.get("path") for r in e.recommendations)
                                                    or "nothing conclusive"),
    ev.PlanDrafted: lambda e, key: (f"{plural(len(e.plan.get('items', [])), 'item')}: "
                                    + ", ".join(str(i.get("id")) for i in e.plan.get("items", []))),
    ev.PlanApproved: lambda e, key: f"approved by {e.approver}" + (f": {e.comment}" if e.comment else "")
    + _behalf(e),
    ev.Rediagnosed: lambda e, key: ("recommended: " + (", ".join(r.get("path") for r in e.recommendations)
                                                      or "nothing conclusive") + f"; why: {e.reason}"),
    ev.PlanRevised: lambda e, key: (f"plan v{e.version} drafted, {plural(len(e.plan.get('items', [])), 'item')}: "
                                    + ", ".join(str(i.get("id")) for i in e.plan.get("items", []))
                                    + "; the approved version stays in force until the sponsor approves it"),
    ev.PlanRevisionApproved: lambda e, key: (f"plan v{e.version} approved by {e.approver}; it is now in force"
                                             + (f": {e.comment}" if e.comment else "") + _behalf(e)),
    ev.CheckpointSuperseded: lambda e, key: f"{key(e.checkpoint)} superseded: plan v{e.version} no longer has it",
    ev.Designed: lambda e, key: f"format: {e.brief.get('format', '')}",
    ev.Redirected: lambda e, key: f"{e.redirect.get('kind')}: {e.redirect.get('rationale', '')}",
    ev.Delivered: lambda e, key: (f"{e.delivery.get('start_date')} – {e.delivery.get('end_date')}, "
                                  f"{e.delivery.get('audience_reached')} reached, {e.delivery.get('format')}"),
    ev.CheckpointScheduled: lambda e, key: f"{e.item}:{e.offset} due {utc(e.due_at)}",
    ev.SurveySent: lambda e, key: f"{key(e.checkpoint)} to {_some(e.to)}",
    ev.SurveyAnswered: lambda e, key: (f"{key(e.checkpoint)} answered {_num_any(e.value)} by {e.respondent}"
                                       + (f" (replaces {_num_any(e.replaces)})" if e.replaces is not None else "")
                                       + (f": {e.note}" if e.note else "")),
    ev.SurveyClosed: lambda e, key: (f"{key(e.checkpoint)} closed with {e.responses} of {e.asked} answers "
                                     f"({e.response_rate:g}%) = {_num_any(e.value)}"),
    ev.RosterSet: lambda e, key: (f"{plural(e.learners, 'learner')}" + "".join(
        f", {len(v)} {name}" for name, v in (("added", e.added), ("removed", e.removed), ("changed", e.changed))
        if v)),
    ev.ReminderSent: lambda e, key: f"{key(e.checkpoint)} reminder {e.reminder}",
    ev.CheckpointFlagged: lambda e, key: f"{key(e.checkpoint)} {plural(e.late_by_days, 'day')} late: needs review",
    ev.ResultRecorded: lambda e, key: (f"{key(e.checkpoint)} = {_num_any(e.value)}"
                                       + (f", comparison group {_num_any(e.comparison_value)}"
                                          if e.comparison_value is not None else "")
                                       + (f" ({e.note})" if e.note else "")
                                       + (f"; early, due {utc(e.due_at)}: {e.early_reason}" if e.early_reason else "")),
    ev.CheckpointMissed: lambda e, key: f"{key(e.checkpoint)} missed: {e.reason}",
    ev.CheckpointStalled: lambda e, key: f"{key(e.checkpoint)} needs review: {e.reason}",
    ev.PlanChangesRequested: lambda e, key: f"changes to plan v{e.version} asked for by {e.by}: {e.comment}",
    ev.AnswerChanged: lambda e, key: (f"{key(e.checkpoint)} answer changed from {_num_any(e.before)} to "
                                      f"{_num_any(e.value)}" + (f" ({e.note})" if e.note else "")),
    ev.Measured: lambda e, key: ", ".join(f"{r.get('item_id')} {r.get('outcome')}" for r in e.results),
    ev.Acknowledged: _acknowledged,
    ev.Declined: lambda e, key: str(e.reason),
    ev.Cancelled: lambda e, key: str(e.reason),
    ev.Reopened: lambda e, key: f"re-opened: {e.reason}",
    ev.Amended: _amended,
    ev.NoteAdded: lambda e, key: str(e.text) + (f" (from {e.source})" if e.source else ""),
    ev.CompanionAdded: lambda e, key: (f"companion piece {e.piece.get('id')}: {e.piece.get('what')} "
                                       f"({str(e.piece.get('kind', '')).replace('_', ' ')}), owner "
                                       f"{(e.piece.get('owner') or {}).get('name', '')} "
                                       f"<{(e.piece.get('owner') or {}).get('email', '')}>, due {e.piece.get('due')}"),
    ev.CompanionDone: lambda e, key: f"companion piece {e.piece} done" + (f": {e.outcome}" if e.outcome else ""),
    ev.CompanionDropped: lambda e, key: f"companion piece {e.piece} dropped: {e.reason}",
    ev.CompanionReminded: lambda e, key: f"the owner of companion piece {e.piece} reminded (due {e.due})",
    ev.ActionStepReminded: lambda e, key: f"the owner of action step {e.step} reminded (due {e.due})",
    ev.SessionScheduled: _session,
    ev.SessionRescheduled: _session,
    ev.SessionCancelled: lambda e, key: f"{e.session} cancelled; the attendees are sent the cancellation",
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
    """One entry per event: number, UTC time, event (with the state change) and actor, then what it was about.
    On a narrow terminal the head folds under the event column and the summary under the head."""
    lines: list[RenderableType] = [Text.from_markup(f"[bold]History of request {request_id}[/] (times in UTC)")]
    for rec in records:
        event = f"[bold]{_t(rec.type)}[/]"
        if rec.trigger:
            event += f" ({_t(rec.from_state)} → {_state(rec.to_state or '')})"
        head = Table.grid(padding=(0, 2))
        head.add_column(justify="right", no_wrap=True, min_width=5)
        head.add_column(no_wrap=True)
        head.add_column(overflow="fold")
        who = _t(shown(rec.actor, rec.payload.get("via")))  # "Ann (via link)", old "(via api)" actors alike
        head.add_row(str(rec.seq), utc(rec.at), Text.from_markup(f"{event}  [dim]by[/] {who}"))
        lines.append(head)
        what = summarize(rec)
        if what.strip():
            lines.append(Padding(Text(printable(what)), (0, 0, 0, 8)))
    if not records:
        lines.append(Text("no events"))
    return Group(*lines)
