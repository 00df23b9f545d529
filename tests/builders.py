"""Sample data for tests: plain dicts as a user would hand them to the service.

Every builder returns a fresh, valid dict; pass keyword arguments to override
top-level fields. Shared by unit, integration and e2e tests.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

from states.models import CAUSE_CHECKS

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SPONSOR = "sam.sponsor@example.org"
REQUESTER = "rita.requester@example.org"

Data = dict[str, Any]


def _merge(base: Data, overrides: dict[str, Any]) -> Data:
    out = copy.deepcopy(base)
    out.update(copy.deepcopy(overrides))
    return out


def person(name: str = "Olga Owner", email: str = "olga.owner@example.org", role: str = "") -> Data:
    return {"name": name, "email": email, "role": role}


def business_goal(**overrides: Any) -> Data:
    return _merge({"metric": "first-call resolution", "unit": "%", "current_value": 62.0,
                   "target_value": 75.0, "target_date": "2026-12-31", "data_source": "CRM weekly report"},
                  overrides)


def intake_data(*, requester_email: str = REQUESTER, sponsor_email: str = SPONSOR,
                title: str = "Objection handling course", **overrides: Any) -> Data:
    """A complete intake (the business goal is already fully known)."""
    return _merge({
        "title": title,
        "requester": person("Rita Requester", requester_email, "team lead"),
        "sponsor": person("Sam Sponsor", sponsor_email, "VP Sales"),
        "stakeholders": [person("Hana HR", "hana.hr@example.org", "HR partner")],
        "requested_solution": "A two-day workshop on objection handling for the support team.",
        "business_goal": business_goal(),
        "audience": {"description": "tier-1 support agents", "size": 40},
        "why_now": "Resolution rate dropped after the product launch.",
        "tried_already": "Weekly tips e-mail.",
    }, overrides)


def cause_checks(*, skill_gap: bool = True, answer_all: bool = True) -> Data:
    """Answers to every cause check. ``skill_gap`` decides could_do_if_life_depended."""
    answers = {
        "expectations_clear": "yes",
        "tools_adequate": "yes" if skill_gap else "no",
        "process_adequate": "yes",
        "consequences_aligned": "yes",
        "simpler_way": "no",
        "could_do_if_life_depended": "no" if skill_gap else "yes",
        "used_to_do_it": "no",
        "used_often": "no",
        "job_aid_possible": "no",
    }
    assert set(answers) == set(CAUSE_CHECKS)
    checks = {k: {"answer": v, "evidence": f"observed: {k}"} for k, v in answers.items()}
    if not answer_all:
        checks.pop("used_often")
    return checks


def diagnosis_data(skill_gap: bool = True, **overrides: Any) -> Data:
    return _merge({
        "observable_actions": ["ask three discovery questions before proposing a fix",
                               "restate the customer's objection in their words"],
        "cause_checks": cause_checks(skill_gap=skill_gap),
        "summary": "Agents never learned a structured way to handle objections." if skill_gap
        else "The knowledge base search is broken; agents can do it when the tool works.",
    }, overrides)


def plan_item(item_id: str = "", *, level: int = 3, framework: str = "kirkpatrick", baseline: bool = True,
              checkpoints: list[str] | None = None, **overrides: Any) -> Data:
    item: Data = {
        "framework": framework, "level": level,
        "metric": "first-call resolution", "unit": "%",
        "target": {"value": 75.0, "date": "2026-12-31"},
        "instrument": "system_report", "respondent": "manager",
        "checkpoints": checkpoints if checkpoints is not None else ["P30D", "P90D"],
        "owner": person(),
    }
    if item_id:
        item["id"] = item_id
    if baseline:
        item["baseline"] = {"value": 62.0, "date": "2026-02-01", "source": "CRM weekly report"}
    return _merge(item, overrides)


def plan_data(*, baseline: bool = True, costs: bool = True, **overrides: Any) -> Data:
    """A plan with a behaviour item (m1, with baseline unless ``baseline=False``) and a reaction item (m2)."""
    plan: Data = {"items": [
        plan_item("m1", baseline=baseline, value_per_unit=1000.0),
        plan_item("m2", level=1, baseline=False, metric="relevance rating", unit="1-5",
                  target={"value": 4.2, "date": "2026-06-30"}, instrument="survey", respondent="learner",
                  checkpoints=["P1D"]),
    ]}
    if costs:
        plan["costs"] = {"program_cost": 8000.0, "currency": "EUR"}
    return _merge(plan, overrides)


def approval_data(approver: str = SPONSOR, **overrides: Any) -> Data:
    return _merge({"approver": approver, "comment": "Looks right."}, overrides)


def brief_data(**overrides: Any) -> Data:
    return _merge({
        "objectives": ["handle the five most common objections using the LAER model"],
        "format": "blended: 2 x 90 min live practice + job aid",
        "approach": "Scenario-based practice with real call recordings; managers coach weekly.",
        "practice_activities": ["role-play triads", "call-recording review"],
        "duration": "3 weeks",
    }, overrides)


def redirect_data(**overrides: Any) -> Data:
    return _merge({"kind": "tool_fix", "rationale": "The knowledge base search returns nothing useful.",
                   "owner": person("Ivan IT", "ivan.it@example.org", "KB owner")}, overrides)


def delivery_data(start: date = date(2026, 4, 6), days: int = 14, **overrides: Any) -> Data:
    return _merge({"start_date": start.isoformat(), "end_date": (start + timedelta(days=days)).isoformat(),
                   "audience_reached": 38, "format": "virtual live sessions", "notes": "2 no-shows"}, overrides)


def result_data(value: float | None = 71.0, missed_reason: str = "", **overrides: Any) -> Data:
    data: Data = {"note": "from the CRM"}
    if value is not None:
        data["value"] = value
    if missed_reason:
        data["missed_reason"] = missed_reason
    return _merge(data, overrides)


def ack_data(**overrides: Any) -> Data:
    return _merge({
        "recap": ["resolution rate rose from 62% to 71%", "agents use LAER on most calls"],
        "action_plan": [{"step": "add LAER to the onboarding path", "owner": "Olga Owner", "due": "2026-09-30"}],
        "contributions": [{"stakeholder": "Sam Sponsor", "contribution": "freed two hours a week for practice"}],
        "message": "Thank you all.",
    }, overrides)


def companion_data(**overrides: Any) -> Data:
    """A companion piece of a solution mix (``ldflow companion add -f``), due at the end of 2027."""
    return _merge({"kind": "job_aid", "what": "a decision card for discounts",
                   "owner": person("Ana Lopez", "ana.lopez@example.org", "Sales ops"), "due": "2027-12-31"}, overrides)


def emailed_steps() -> Data:
    """An acknowledgement whose action step owners have addresses (told their step, reminded of its date)."""
    return ack_data(action_plan=[
        {"step": "add LAER to the onboarding path", "owner": "Olga Owner", "email": "olga.owner@example.org",
         "due": "2027-12-31"},
        {"step": "review the call-recording library", "owner": "the sales managers"}])


def reason_data(reason: str = "budget frozen") -> Data:
    return {"reason": reason}


# --- driving a request through the lifecycle --------------------------------------------------------

ACTOR = "ops@example.org"

# Order in which drive_to passes the states (the design path; redirect replaces designed).
_DESIGN_PATH = ("received", "diagnosed", "designed", "delivered", "measured", "acknowledged")
_REDIRECT_PATH = ("received", "diagnosed", "redirected", "delivered", "measured", "acknowledged")


def record_when_due(service: Any, request_id: int, key: str, data: Any, actor: str = ACTOR) -> Any:
    """Record a checkpoint's result as a user does: once it is due (a test clock that can be set is
    moved forward to the due time when it is earlier; results before it are refused)."""
    due = service.show(request_id).checkpoint(key).due_at
    clock = getattr(service, "clock", None)
    if hasattr(clock, "set") and clock.now() < due:
        clock.set(due)
    return service.record(request_id, key, data, actor)


def drive_to(service: Any, state: str, *, path: str = "design", actor: str = ACTOR,
             intake: Data | None = None, request_id: int | None = None) -> Any:
    """Submit a request (or take ``request_id``) and move it forward to ``state`` with valid data.

    ``path`` is ``design`` or ``redirect``; ``declined``/``cancelled`` close it from received.
    Returns the request as the service returned it after the last command.
    """
    request = service.show(request_id) if request_id is not None else \
        service.submit(intake or intake_data(), actor)
    rid = request.id
    if state in ("declined", "cancelled"):
        command = service.decline if state == "declined" else service.cancel
        return command(rid, reason_data(), actor)
    order = _REDIRECT_PATH if path == "redirect" else _DESIGN_PATH
    if state not in order:
        raise ValueError(f"{state!r} is not on the {path} path")
    target = order.index(state)
    current = order.index(request.state.value)
    for step in order[current + 1:target + 1]:
        if step == "diagnosed":
            request = service.diagnose(rid, diagnosis_data(skill_gap=path == "design"), actor)
            request = service.draft_plan(rid, plan_data(), actor)
            sponsor = request.intake.sponsor.email  # the sponsor approves in person
            request = service.approve_plan(rid, approval_data(sponsor), sponsor)
        elif step == "designed":
            request = service.design(rid, brief_data(), actor)
        elif step == "redirected":
            request = service.redirect(rid, redirect_data(), actor)
        elif step == "delivered":
            request = service.deliver(rid, delivery_data(), actor)
        elif step == "measured":
            for c in request.checkpoints:
                if not c.closed:
                    request = record_when_due(service, rid, c.key, result_data(71.0), actor)
            request = service.measure(rid, actor)
        elif step == "acknowledged":
            request = service.acknowledge(rid, ack_data(), actor)
    return request


# --- guard refusals: (how to get there, the refused command, what it must list) ------------------------

def _no_goal_intake() -> Data:
    return intake_data(business_goal={})


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A command a guard must refuse, listing each of ``missing`` (substrings) and nothing else.

    ``setup`` is a list of (service method, data) run after submitting ``intake``; ``data`` is
    None for commands without input (measure).
    """

    name: str
    setup: tuple[tuple[str, Any], ...]
    command: str
    data: Any
    missing: tuple[str, ...]
    intake: Data = dataclasses.field(default_factory=intake_data)


_DIAG = ("diagnose", diagnosis_data())
_DIAG_NO_GAP = ("diagnose", diagnosis_data(skill_gap=False))
_PLAN = ("draft_plan", plan_data())
_APPROVE = ("approve_plan", approval_data())
_READY = (_DIAG, _PLAN, _APPROVE)
_DESIGNED = (*_READY, ("design", brief_data()))
_DELIVERED = (*_DESIGNED, ("deliver", delivery_data()))
_GOAL_PARTS = ("business goal: metric", "business goal: current value", "business goal: target value",
               "business goal: target date", "business goal: data source")

REFUSALS: tuple[Refusal, ...] = (
    Refusal("diagnose-goal-missing", (), "diagnose", diagnosis_data(), _GOAL_PARTS, _no_goal_intake()),
    Refusal("diagnose-goal-partly-completed", (), "diagnose",
            diagnosis_data(business_goal={"metric": "FCR", "current_value": 60}),
            _GOAL_PARTS[2:], _no_goal_intake()),
    Refusal("diagnose-no-observable-action", (), "diagnose", diagnosis_data(observable_actions=[]),
            ("at least one observable action",)),
    Refusal("diagnose-cause-check-unanswered", (), "diagnose",
            diagnosis_data(cause_checks=cause_checks(answer_all=False)), ("cause check 'used_often' unanswered",)),
    Refusal("diagnose-cause-check-unknown", (), "diagnose",
            diagnosis_data(cause_checks={**cause_checks(), "tools_adequate": {"answer": "unknown"}}),
            ("cause check 'tools_adequate' is 'unknown'",)),
    Refusal("diagnose-everything-at-once", (), "diagnose",
            {"observable_actions": [], "cause_checks": {"tools_adequate": {"answer": "unknown"}}},
            (*_GOAL_PARTS, "at least one observable action", "cause check 'tools_adequate' is 'unknown'",
             *(f"cause check '{c}' unanswered" for c in CAUSE_CHECKS if c != "tools_adequate")),
            _no_goal_intake()),
    Refusal("redirect-no-plan", (_DIAG_NO_GAP,), "redirect", redirect_data(),
            ("an approved measurement plan (none drafted",)),
    Refusal("redirect-plan-not-approved", (_DIAG_NO_GAP, _PLAN), "redirect", redirect_data(),
            (f"awaits approval by the sponsor {SPONSOR}",)),
    Refusal("redirect-nothing-given", (_DIAG_NO_GAP,), "redirect", {},
            ("an approved measurement plan", "a redirect kind", "a rationale for the redirect")),
    Refusal("design-no-plan", (_DIAG,), "design", brief_data(), ("an approved measurement plan (none drafted",)),
    Refusal("design-plan-not-approved", (_DIAG, _PLAN), "design", brief_data(),
            (f"awaits approval by the sponsor {SPONSOR}",)),
    Refusal("design-no-baseline", (_DIAG, ("draft_plan", plan_data(baseline=False)), _APPROVE), "design",
            brief_data(), ("a baseline for measurement item 'm1'",)),
    Refusal("design-no-skill-gap", (_DIAG_NO_GAP, _PLAN, _APPROVE), "design", brief_data(),
            ("a knowledge/skill gap in the diagnosis, or a skill_gap_override",)),
    Refusal("design-empty-brief", _READY, "design", {},
            ("design brief: at least one objective", "design brief: a format", "design brief: an approach")),
    Refusal("design-everything-at-once", (_DIAG_NO_GAP,), "design", {},
            ("an approved measurement plan", "a knowledge/skill gap", "design brief: at least one objective",
             "design brief: a format", "design brief: an approach")),
    Refusal("deliver-empty", _DESIGNED, "deliver", {},
            ("delivery: start date", "delivery: end date", "delivery: audience reached", "delivery: format")),
    Refusal("measure-open-checkpoints", _DELIVERED, "measure", None,
            (":m1:P30D (scheduled", ":m1:P90D (scheduled", ":m2:P1D (scheduled")),
    Refusal("measure-one-open-checkpoint",
            (*_DELIVERED, ("record:m1:P30D", result_data(70)), ("record:m2:P1D", result_data(None, "no survey"))),
            "measure", None, (":m1:P90D (scheduled",)),
    Refusal("acknowledge-empty", (*_DELIVERED, *(("record:" + k, result_data()) for k in
                                                 ("m1:P30D", "m1:P90D", "m2:P1D")), ("measure", None)),
            "acknowledge", {},
            ("a recap of the takeaways", "an action plan", "an acknowledgement of the stakeholders")),
    Refusal("decline-no-reason", (), "decline", {}, ("a reason to decline",)),
    Refusal("cancel-no-reason", (), "cancel", {}, ("a reason to cancel",)),
    Refusal("cancel-delivered-no-reason", _DELIVERED, "cancel", {"reason": ""}, ("a reason to cancel",)),
    Refusal("approve-by-someone-else", (_DIAG, _PLAN), "approve_plan", approval_data("rita.requester@example.org"),
            (f"approval by the sponsor {SPONSOR} (not rita.requester@example.org)",)),
    Refusal("approve-nothing-drafted", (_DIAG,), "approve_plan", approval_data(), ("a drafted measurement plan",)),
    Refusal("approve-twice", _READY, "approve_plan", approval_data(), ("already approved by",)),
    Refusal("approve-after-design-nothing-waiting", _DESIGNED, "approve_plan", approval_data(),
            (f"a plan awaiting approval (already approved by {SPONSOR})",)),
)

_MEASURED = (*_DELIVERED, *(("record:" + k, result_data()) for k in ("m1:P30D", "m1:P90D", "m2:P1D")),
             ("measure", None))
# Each of the three touchpoints, and an action step without an owner, on its own.
REFUSALS += tuple(
    Refusal(f"acknowledge-without-{part}", _MEASURED, "acknowledge", ack_data(**{part: []}), (expected,))
    for part, expected in (("recap", "a recap of the takeaways"), ("action_plan", "an action plan"),
                           ("contributions", "an acknowledgement of the stakeholders' contributions"))
) + (Refusal("acknowledge-step-without-owner", _MEASURED, "acknowledge",
             ack_data(action_plan=[{"step": "add LAER to onboarding", "owner": "O. Owner"},
                                   {"step": "review in Q3"}]),
             ("an owner for action step 'review in Q3'",)),)


def run_step(service: Any, request_id: int, command: str, data: Any, actor: str = ACTOR) -> Any:
    """Run one ``Refusal`` step: ``record:<checkpoint>`` records a result, ``measure`` takes no data."""
    if command.startswith("record:"):
        return record_when_due(service, request_id, command.split(":", 1)[1], data, actor)
    if data is None:
        return getattr(service, command)(request_id, actor)
    if command == "approve_plan" and isinstance(data, dict):
        actor = data.get("approver", actor)  # the approver approves in person (on-behalf: test_on_behalf)
    return getattr(service, command)(request_id, data, actor)


def roster_data(n: int = 3, *, managers: int = 1, domain: str = "learners.example.org") -> Data:
    """A roster of ``n`` learners in ``managers`` teams, each team with its manager."""
    teams = [{"team": f"team-{t}", "manager": {"name": f"Manager {t}", "email": f"manager{t}@{domain}"}}
             for t in range(1, managers + 1)]
    learners = [{"name": f"Learner {i}", "email": f"learner{i}@{domain}", "team": f"team-{i % managers + 1}"}
                for i in range(1, n + 1)]
    return {"learners": learners, "teams": teams}
