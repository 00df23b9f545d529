"""Surveys to respondent groups: who is asked, one mail per respondent per day, answers, the window's close.

Functions over the aggregate (like :mod:`states.stalls`), called by ``TrainingRequest`` and the service:

* ``group`` — the people a plan item asks (:mod:`states.groups` says what each group means);
* ``send_due`` — the due checkpoints of one request, sent together: every respondent gets **one**
  survey mail with every question due to them (one notification per set of questions, sent to each
  recipient on their own with their reply code and signed links); the item's owner gets the
  collection to-do, unless they are asked the question themselves (then only the survey);
* ``remind_due`` — the same bundling for reminders, which go only to those who have not answered;
* ``answer`` — one respondent's answer: only from someone asked, within the scale; a second answer
  replaces the first (``SurveyAnswered`` with ``replaces``, in the history); when everyone asked has
  answered the checkpoint closes with its aggregate;
* ``window_end`` and ``close_at_window`` — a survey closes at the end of its response window (the
  item's ``survey.window``, default 14 days after due, never before the grace after the last
  reminder): with what it has (n, response rate, mean, median, share at a threshold), or as missed
  when below the item's minimum n or response rate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from states import events as ev
from states import lifecycle, wording
from states.checkpoints import Checkpoint, CheckpointStatus, collect_todo
from states.durations import parse_duration
from states.errors import FieldError, InvalidInput
from states.groups import DEFAULT_WINDOW, Respondent, SurveyAnswer, SurveyRules, Tally, group_of, tally
from states.lifecycle import Command
from states.models import Instrument, PlanItem
from states.notifications import Recipient, recipient, recipients

if TYPE_CHECKING:
    from states.request import TrainingRequest

_DEFAULT_RULES = SurveyRules()


def rules_of(item: PlanItem) -> SurveyRules:
    return item.survey or _DEFAULT_RULES


def group(request: TrainingRequest, item: PlanItem) -> list[Recipient]:
    """The people ``item`` asks (empty for ``owner``: the owner collects the number, no survey)."""
    intake, roster = request.intake, request.roster
    if item.respondent == Respondent.STAKEHOLDER:  # a plan made before groups: everyone, as then
        return request._stakeholders()
    g = group_of(item.respondent)
    if g == Respondent.LEARNERS:
        if roster is not None:
            return [Recipient(name=x.name, email=x.email, role="learner") for x in roster.learners]
        return [recipient(intake.audience.contact or intake.requester)]
    if g == Respondent.MANAGERS and roster is not None:
        managers = recipients(m for m in (roster.manager_of(x) for x in roster.learners) if m is not None)
        if managers:
            return managers
    if g in (Respondent.MANAGERS, Respondent.SPONSOR):
        return [recipient(intake.sponsor)]
    if g == Respondent.STAKEHOLDERS:
        return recipients(item.stakeholders or intake.stakeholders or [intake.sponsor])
    return []


def window_end(c: Checkpoint, item: PlanItem) -> datetime:
    """When the survey's answers stop counting: its due date + the item's window (default 14 days)."""
    return parse_duration(item.survey.window if item.survey else DEFAULT_WINDOW).after(c.due_at)


def current_tally(c: Checkpoint, item: PlanItem) -> Tally:
    return tally([a.value for a in c.answers], len(c.asked), rules_of(item).threshold)


# --- sending ---------------------------------------------------------------------------------------------

def _bundles(pairs: Iterable[tuple[Checkpoint, PlanItem, list[Recipient]]]
             ) -> list[tuple[list[tuple[Checkpoint, PlanItem]], list[Recipient]]]:
    """The recipients grouped by the questions they are asked: one notification per set of questions."""
    questions: dict[str, tuple[Checkpoint, PlanItem]] = {}
    per_person: dict[str, tuple[Recipient, list[str]]] = {}
    for c, item, people in pairs:
        questions[c.key] = (c, item)
        for p in people:
            per_person.setdefault(p.email.lower(), (p, []))[1].append(c.key)
    by_set: dict[tuple[str, ...], list[Recipient]] = {}
    for person, keys in per_person.values():
        by_set.setdefault(tuple(keys), []).append(person)
    return [([questions[k] for k in keys], people) for keys, people in by_set.items()]


def _suffix(kind: str, asked: list[tuple[Checkpoint, PlanItem]], tail: str = "") -> str:
    """The notification key: ``survey:<item>:<offset>`` for one question (as before groups); with
    several, the first one's and a digest of the set."""
    first = asked[0][0]
    key = f"{kind}:{first.item_id}:{first.offset}{tail}"
    if len(asked) > 1:
        digest = hashlib.sha256("|".join(c.key for c, _ in asked).encode()).hexdigest()[:10]
        key += f":and{len(asked) - 1}-{digest}"
    return key


def _context(asked: list[tuple[Checkpoint, PlanItem]]) -> dict[str, Any]:
    first_c, first_item = asked[0]
    context = first_c.context(first_item)
    rules = [item.survey for _, item in asked]
    if first_item.survey is not None:
        context["scale"] = f"{first_item.survey.scale_min:g} to {first_item.survey.scale_max:g}"
    context["questions"] = [{**c.context(item), "number": i,
                             "scale": f"{r.scale_min:g} to {r.scale_max:g}" if r is not None else ""}
                            for i, ((c, item), r) in enumerate(zip(asked, rules, strict=True), start=1)]
    return context


def _subject(asked: list[tuple[Checkpoint, PlanItem]], reminder: bool) -> str:
    c, item = asked[0]
    what = item.metric if len(asked) == 1 else f"{wording.plural(len(asked), 'question')} on your programme"
    return f"Reminder: quick check-in on {what}" if reminder else \
        f"Quick check-in ({wording.after_delivery(c.offset)}): {what}"


def _in_plan_order(request: TrainingRequest, pairs: list[tuple[Checkpoint, PlanItem, list[Recipient]]]) -> None:
    """The questions of a mail in the plan's order (then by due date)."""
    order = {item.id: i for i, item in enumerate(request.plan.items)} if request.plan is not None else {}
    pairs.sort(key=lambda p: (order.get(p[1].id, 0), p[0].due_at))


def send_due(request: TrainingRequest, keys: list[str], at: datetime, lateness: timedelta) -> int:
    """Send the due checkpoints among ``keys`` together (see the module docstring); the far-too-late
    ones are flagged for review. Returns how many checkpoints were sent."""
    if not lifecycle.allows(Command.SEND_CHECKPOINT, request.state):
        return 0
    sending: list[tuple[Checkpoint, PlanItem, list[Recipient]]] = []
    for key in keys:
        c = request.checkpoint(key)
        if not c.is_due(at):
            continue
        request.updated_at = at
        if c.too_late(at, lateness):
            c.status = CheckpointStatus.NEEDS_REVIEW
            c.review_reason = f"too late to send: {wording.plural((at - c.due_at).days, 'day')} past due"
            request._events.append(ev.CheckpointFlagged(checkpoint=c.key, due_at=c.due_at.isoformat(),
                                                        late_by_days=(at - c.due_at).days))
            continue
        item = request._item(c)
        people = group(request, item)
        c.status, c.sent_at, c.asked = CheckpointStatus.SENT, at, [p.email.lower() for p in people]
        sending.append((c, item, people))
        owner = recipient(item.owner)
        if owner.email.lower() not in c.asked:  # who answers the question themselves gets no to-do for it
            request._notify(f"checkpoint_reminder:{c.item_id}:{c.offset}", "checkpoint_reminder", [owner],
                            f"Collect the {wording.offset_adjective(c.offset)} result: {item.metric}",
                            c.context(item), calendar=collect_todo(request.id or 0, c, item, at, owner))
        request._events.append(ev.SurveySent(checkpoint=c.key, to=tuple(c.asked)))
    _in_plan_order(request, sending)
    for asked, people in _bundles(p for p in sending if p[2]):
        request._notify(_suffix("survey", asked), "survey", people, _subject(asked, False), _context(asked))
    return len(sending)


def remind_due(request: TrainingRequest, keys: list[str], at: datetime, after: timedelta,
               max_reminders: int) -> int:
    """Remind the people who have not answered the unanswered surveys among ``keys`` (``after`` since the
    survey or last reminder, at most ``max_reminders``); one reminder mail per person. Returns how many
    checkpoints were reminded."""
    if not lifecycle.allows(Command.REMIND_CHECKPOINT, request.state):
        return 0
    reminding: list[tuple[Checkpoint, PlanItem, list[Recipient]]] = []
    for key in keys:
        c = request.checkpoint(key)
        if not c.may_remind(at, after, max_reminders):
            continue
        item = request._item(c)
        answered = {a.email for a in c.answers}
        # the group as it is now, among those asked (the owner, when the owner collects the number)
        people = [p for p in group(request, item) or [recipient(item.owner)] if p.email.lower() not in answered
                  and (not c.asked or p.email.lower() in c.asked)]
        c.reminders_sent += 1
        c.last_reminder_at = at
        request.updated_at = at
        reminding.append((c, item, people))
        request._events.append(ev.ReminderSent(checkpoint=c.key, reminder=c.reminders_sent))
    _in_plan_order(request, reminding)
    for asked, people in _bundles(p for p in reminding if p[2]):
        n = asked[0][0].reminders_sent
        request._notify(_suffix("survey_reminder", asked, f":{n}"), "survey_reminder", people,
                        _subject(asked, True), {**_context(asked), "reminder_number": n})
    return len(reminding)


# --- answering -------------------------------------------------------------------------------------------

def is_group_survey(c: Checkpoint) -> bool:
    """A checkpoint whose survey was sent to a group (``asked`` recorded; older ones were not)."""
    return bool(c.asked)


def answer(request: TrainingRequest, key: str, email: str, value: float, note: str, at: datetime,
           via: str = "") -> None:
    """``email``'s answer ``value`` to checkpoint ``key`` (see the module docstring)."""
    c = request.checkpoint(key)
    item = request._item(c)
    email = email.lower()
    rules = item.survey
    if rules is not None and not rules.scale_min <= value <= rules.scale_max:
        raise InvalidInput([FieldError("value", f"{value:g} is outside the scale "
                                                f"{rules.scale_min:g}–{rules.scale_max:g}")])
    missing = lifecycle.refusal(Command.RECORD_RESULT, request.state)
    open_ = c.status == CheckpointStatus.SENT or (c.status == CheckpointStatus.CLOSED and c.tally is not None
                                                  and at < window_end(c, item))
    if not open_:
        missing.append(f"an open survey ({c.key} is {c.status.value})")
    if email not in c.asked:
        missing.append(f"an answer from someone asked ({email} is not among the "
                       f"{wording.plural(len(c.asked), 'respondent')} of {c.key})")
    lifecycle.refuse(Command.RECORD_RESULT, request.state, missing)
    before = next((a for a in c.answers if a.email == email), None)
    new = SurveyAnswer(email=email, value=value, note=note, at=at.isoformat(), via=via)
    c.answers = [a for a in c.answers if a.email != email] + [new] if before is not None else [*c.answers, new]
    request.updated_at = at
    request._events.append(ev.SurveyAnswered(checkpoint=c.key, respondent=email, value=value, note=note,
                                             replaces=before.value if before is not None else None))
    # everyone asked has answered (or an answer changed after that): the aggregate follows
    if c.status == CheckpointStatus.CLOSED or len(c.answers) >= len(c.asked):
        _close(request, c, item, at)


def _close(request: TrainingRequest, c: Checkpoint, item: PlanItem, at: datetime) -> None:
    t = current_tally(c, item)
    c.tally, c.value, c.status, c.closed_at = t, t.result, CheckpointStatus.CLOSED, at
    request._events.append(ev.SurveyClosed(checkpoint=c.key, responses=t.n, asked=t.asked,
                                           response_rate=t.response_rate, value=t.result))


def shortfall(t: Tally, rules: SurveyRules) -> str:
    """Why the answers are not enough to count (empty when they are)."""
    if t.n == 0:
        return ""
    short = []
    if t.n < rules.min_responses:
        short.append(f"below the minimum of {wording.plural(rules.min_responses, 'answer')}")
    if t.response_rate < rules.min_response_rate:
        short.append(f"below the minimum response rate of {rules.min_response_rate:g}%")
    if not short:
        return ""
    return f"{t.n} of {t.asked} answered ({t.response_rate:g}%), " + " and ".join(short)


def close_at_window(request: TrainingRequest, c: Checkpoint, item: PlanItem, at: datetime) -> str | None:
    """At the window's end: closed with what the answers give (returns None) or the reason it is missed."""
    t = current_tally(c, item)
    if t.n == 0:
        return "no answer"
    reason = shortfall(t, rules_of(item))
    if reason:
        c.tally = t
        return reason
    _close(request, c, item, at)
    return None


def survey_item(item: PlanItem) -> bool:
    return item.instrument == Instrument.SURVEY
