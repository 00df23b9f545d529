"""The request page's action forms: one per command the CLI has, posting the fields its YAML takes.

Simple commands are fields (a reason, a note, the delivery's dates …); the structured ones (a
diagnosis, a measurement plan, a design brief, a session, the acknowledgement, an amendment) are a
YAML text area holding exactly what ``-f FILE`` holds on the CLI. :func:`form_data` turns the posted
form into that data; :func:`run` calls the same ``Service`` method as the CLI command. Which forms a
request shows is read from the lifecycle table (:func:`shown`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.loader import parse_mapping
from flows.service import Service
from states.errors import FieldError, InvalidInput, LdflowError
from states.kinds import CompanionKind, RedirectKind
from states.lifecycle import Command
from states.request import TrainingRequest


@dataclass(frozen=True)
class Field:
    name: str  # dotted for a nested field (owner.email), as the CLI's flags
    label: str
    kind: str = "text"  # text | textarea | date | number | select | yaml
    options: tuple[str, ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class Action:
    command: Command
    label: str
    fields: tuple[Field, ...]
    danger: bool = False
    example: str = ""  # the YAML area's starting text (what the CLI's -f file holds)


def _reason(label: str = "Reason") -> Field:
    return Field("reason", label, "textarea")


_YAML = "yaml"
ACTIONS: dict[Command, Action] = {a.command: a for a in (
    Action(Command.DIAGNOSE, "Diagnose", (Field(_YAML, "Diagnosis (YAML, as `ldflow diagnose -f`)", "yaml"),),
           example="# as examples/diagnosis.yaml\nbusiness_goal: {}  # metric, current_value, target_value, "
                   "target_date, data_source\nobservable_actions: []  # what people will do differently on the job\n"
                   "cause_checks: {}  # expectations_clear: {answer: yes|no|unknown, evidence: ...} ...\n"
                   "summary: ''\n"),
    Action(Command.REDIAGNOSE, "Re-diagnose", (Field(_YAML, "Diagnosis (YAML)", "yaml"), _reason()),
           example="# the whole diagnosis again, as examples/diagnosis.yaml\nobservable_actions: []\n"
                   "cause_checks: {}\n"),
    Action(Command.DRAFT_PLAN, "Draft the measurement plan",
           (Field(_YAML, "Measurement plan (YAML, as `ldflow plan draft -f`)", "yaml"),),
           example="# as examples/plan.yaml; one item per metric:\n# - {id, framework: kirkpatrick, level, metric, "
                   "unit, baseline: {value, date, source},\n#    target: {value, date}, instrument, respondent, "
                   "checkpoints: [P30D], owner: {name, email}}\nitems: []\n"),
    Action(Command.APPROVE_PLAN, "Approve the plan", (
        Field("approver", "Approver (the sponsor's e-mail)"), Field("comment", "The approver's comment", "textarea"),
        Field("reason", "Reason, when an admin records the sponsor's approval on their behalf", "textarea",
              hint="Only an admin may approve for someone else; the history and the report say so."))),
    Action(Command.DESIGN, "Design", (Field(_YAML, "Design brief (YAML, as `ldflow design -f`)", "yaml"),),
           example="# as examples/design.yaml\nobjectives: []\nformat: ''\napproach: ''\npractice_activities: []\n"),
    Action(Command.REDIRECT, "Redirect", (
        Field("kind", "Kind", "select", tuple(k.value for k in RedirectKind)),
        Field("rationale", "Rationale", "textarea"), Field("owner.name", "Owner's name"),
        Field("owner.email", "Owner's e-mail"))),
    Action(Command.SCHEDULE_SESSION, "Schedule a session",
           (Field(_YAML, "Session (YAML, as `ldflow session -f`)", "yaml"),),
           example="# as examples/session.yaml: id, title, start and end with a UTC offset, location, attendees\n"),
    Action(Command.DELIVER, "Record the delivery", (
        Field("start_date", "Start date", "date"), Field("end_date", "End date", "date"),
        Field("audience_reached", "Audience reached (people)", "number"), Field("format", "Format"),
        Field("notes", "Notes", "textarea"))),
    Action(Command.SET_ROSTER, "Give or change the roster", (
        Field(_YAML, "Roster (YAML, as `ldflow roster -f roster.yaml`; a CSV file goes through the CLI)", "yaml"),),
           example="# the learners surveyed, with their team and manager\n"
                   "learners:\n  - {name: '', email: '', team: ''}\n"
                   "teams:\n  - {team: '', manager: {name: '', email: ''}}\n"),
    Action(Command.RECORD_RESULT, "Record a result", (
        Field("checkpoint", "Checkpoint", "select"), Field("value", "Value", "number"),
        Field("note", "Note"), Field("early_reason", "Before it is due? Say why (a correction, an early figure)"),
        Field("missed_reason", "…or close it as missed, with this reason"))),
    Action(Command.MEASURE, "Measure (compare the results with the targets)", ()),
    Action(Command.ACKNOWLEDGE, "Acknowledge and send the report",
           (Field(_YAML, "The three touchpoints (YAML, as `ldflow acknowledge -f`)", "yaml"),),
           example="# as examples/acknowledgement.yaml\nrecap: []  # the takeaways\naction_plan: []  # - {step, owner, "
                   "due}\ncontributions: []  # - {stakeholder, contribution}\nmessage: ''\n"),
    Action(Command.ADD_NOTE, "Add a note", (Field("text", "Note", "textarea"),)),
    Action(Command.AMEND, "Amend", (Field(_YAML, "Corrections with a reason (YAML, as `ldflow amend -f`)", "yaml"),),
           example="# as examples/amendment.yaml: the fields to correct, and why\nreason: ''\n"),
    Action(Command.ADD_COMPANION, "Add a companion piece (the solution mix)", (
        Field("kind", "Kind", "select", tuple(k.value for k in CompanionKind)),
        Field("what", "What (a few words: 'a decision card for discounts')"), Field("owner.name", "Owner's name"),
        Field("owner.email", "Owner's e-mail (they are told, and reminded before the date)"),
        Field("due", "Due date", "date"), Field("note", "Note for the owner", "textarea"))),
    Action(Command.COMPLETE_COMPANION, "Mark a companion piece done", (
        Field("piece", "Piece id (c1, c2 …)"), Field("note", "What was done"))),
    Action(Command.DROP_COMPANION, "Drop a companion piece", (
        Field("piece", "Piece id (c1, c2 …)"), Field("reason", "Reason", "textarea"))),
    Action(Command.DECLINE, "Decline", (_reason(),), danger=True),
    Action(Command.CANCEL, "Cancel", (_reason(),), danger=True),
    Action(Command.REOPEN, "Re-open", (_reason(),)),
)}


def _has_open_piece(request: TrainingRequest) -> bool:
    return any(c.status.value == "open" for c in request.companions)


#: Forms the table allows in a state but that have nothing to act on until the request holds it: approving
#: needs a drafted plan waiting (the table allows the command from receipt on), closing a companion piece
#: needs an open one.
_NEEDS: dict[Command, Callable[[TrainingRequest], bool]] = {
    Command.APPROVE_PLAN: lambda r: r.plan is not None and r.plan_approved_by is None,
    Command.COMPLETE_COMPANION: _has_open_piece,
    Command.DROP_COMPANION: _has_open_piece,
}


def shown(request: TrainingRequest) -> list[Action]:
    """The forms the lifecycle table allows now, in its order (the pipeline's own commands aside), each
    only once there is something for it to act on (``_NEEDS``)."""
    return [ACTIONS[c] for c in request.allowed_commands()
            if c in ACTIONS and (c not in _NEEDS or _NEEDS[c](request))]


def find(name: str) -> Action | None:
    try:
        return ACTIONS.get(Command(name))
    except ValueError:
        return None


def form_data(action: Action, form: Mapping[str, Any]) -> dict[str, Any]:
    """The posted fields as the CLI's data: empty fields left out, dotted names nested, the YAML area
    parsed by the one input loader (its errors name the ``yaml`` field)."""
    data: dict[str, Any] = {}
    for f in action.fields:
        raw = form.get(f.name)
        value = raw.strip() if isinstance(raw, str) else ""
        if not value:
            continue
        if f.kind == "yaml":
            try:
                data.update(parse_mapping(value, "the form", "yaml"))
            except InvalidInput as exc:
                raise InvalidInput([FieldError(_YAML, e.message) for e in exc.errors]) from None
            except LdflowError as exc:
                raise InvalidInput([FieldError(_YAML, str(exc))]) from None
            continue
        target = data
        *parents, leaf = f.name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return data


Runner = Callable[[Service, int, dict[str, Any], str, int | None, bool], TrainingRequest]


def _record(s: Service, rid: int, data: dict[str, Any], actor: str, version: int | None, admin: bool) -> \
        TrainingRequest:
    key = str(data.pop("checkpoint", "") or "").strip()
    if not key:
        raise InvalidInput([FieldError("checkpoint", "choose the checkpoint the result is for")])
    return s.record(rid, key, data, actor, version, "the form")


def _rediagnose(s: Service, rid: int, data: dict[str, Any], actor: str, version: int | None, admin: bool) -> \
        TrainingRequest:
    reason = {"reason": data.pop("reason", "")}
    return s.rediagnose(rid, data, reason, actor, version, "the form")


def _note(s: Service, rid: int, data: dict[str, Any], actor: str, version: int | None, admin: bool) -> \
        TrainingRequest:
    text = str(data.get("text", "")).strip()
    if not text:
        raise InvalidInput([FieldError("text", "write the note")])
    return s.add_note(rid, text, actor, "web", version)


RUNNERS: dict[Command, Runner] = {
    Command.DIAGNOSE: lambda s, rid, d, a, v, admin: s.diagnose(rid, d, a, v, "the form"),
    Command.REDIAGNOSE: _rediagnose,
    Command.DRAFT_PLAN: lambda s, rid, d, a, v, admin: s.draft_plan(rid, d, a, v, "the form"),
    Command.APPROVE_PLAN: lambda s, rid, d, a, v, admin: s.approve_plan(rid, d, a, v, "the form", admin=admin),
    Command.DESIGN: lambda s, rid, d, a, v, admin: s.design(rid, d, a, v, "the form"),
    Command.REDIRECT: lambda s, rid, d, a, v, admin: s.redirect(rid, d, a, v, "the form"),
    Command.SCHEDULE_SESSION: lambda s, rid, d, a, v, admin: s.schedule_session(rid, d, a, v, "the form"),
    Command.DELIVER: lambda s, rid, d, a, v, admin: s.deliver(rid, d, a, v, "the form"),
    Command.SET_ROSTER: lambda s, rid, d, a, v, admin: s.set_roster(rid, d, a, v, "the form"),
    Command.RECORD_RESULT: _record,
    Command.MEASURE: lambda s, rid, d, a, v, admin: s.measure(rid, a, v),
    Command.ACKNOWLEDGE: lambda s, rid, d, a, v, admin: s.acknowledge(rid, d, a, v, "the form"),
    Command.ADD_NOTE: _note,
    Command.AMEND: lambda s, rid, d, a, v, admin: s.amend(rid, d, a, v, "the form"),
    Command.ADD_COMPANION: lambda s, rid, d, a, v, admin: s.add_companion(rid, d, a, v, "the form"),
    Command.COMPLETE_COMPANION: lambda s, rid, d, a, v, admin: s.complete_companion(
        rid, str(d.get("piece", "")), str(d.get("note", "")), a, v),
    Command.DROP_COMPANION: lambda s, rid, d, a, v, admin: s.drop_companion(
        rid, str(d.get("piece", "")), {k: x for k, x in d.items() if k != "piece"}, a, v, "the form"),
    Command.DECLINE: lambda s, rid, d, a, v, admin: s.decline(rid, d, a, v, "the form"),
    Command.CANCEL: lambda s, rid, d, a, v, admin: s.cancel(rid, d, a, v, "the form"),
    Command.REOPEN: lambda s, rid, d, a, v, admin: s.reopen(rid, d, a, v, "the form"),
}


def run(service: Service, action: Action, request_id: int, data: dict[str, Any], actor: str,
        version: int | None, admin: bool) -> TrainingRequest:
    """Run ``action`` through the service, as the CLI command does."""
    return RUNNERS[action.command](service, request_id, data, actor, version, admin)
