"""A hand-built history for the analytics tests, with the answers worked out by hand (``EXPECTED``).

Five requests on a fixed clock (T0 = Monday 2 March 2026, 09:00 UTC), each step a known number of days
after the one before:

1. design path to acknowledged (sponsor sam): diagnosed +1 d, plan approved +2 d, designed +5 d,
   delivered +7 d, results when due, measured, acknowledged;
2. redirect (tool_fix, sam) delivered, **cancelled mid-way** (from delivered), **re-opened**, declined;
3. pat's request, **amended** to quinn as sponsor, diagnosed, cancelled (never routed);
4. received in April and left there (sam);
5. redirected (tool_fix), cancelled, re-opened, diagnosed again and designed: its latest path is design.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flows.clock import FixedClock
from tests.builders import (
    ACTOR,
    SPONSOR,
    T0,
    ack_data,
    approval_data,
    brief_data,
    delivery_data,
    diagnosis_data,
    intake_data,
    plan_data,
    reason_data,
    record_when_due,
    redirect_data,
)

PAT, QUINN = "pat.sponsor@example.org", "quinn.sponsor@example.org"
DAY = timedelta(days=1)


def _diagnose_and_approve(service: Any, clock: FixedClock, rid: int, *, skill_gap: bool) -> None:
    clock.advance(DAY)
    service.diagnose(rid, diagnosis_data(skill_gap=skill_gap), ACTOR)
    service.draft_plan(rid, plan_data(), ACTOR)
    clock.advance(DAY)
    sponsor = service.show(rid).intake.sponsor.email
    service.approve_plan(rid, approval_data(sponsor), sponsor)


def _deliver(service: Any, clock: FixedClock, rid: int) -> None:
    today = clock.now().date()
    service.deliver(rid, delivery_data(start=today - timedelta(days=14), days=14), ACTOR)


def build(service: Any, clock: FixedClock) -> dict[str, int]:
    """Run the five stories on ``service`` (whose clock is ``clock``, at T0); their ids by name."""
    ids: dict[str, int] = {}
    # 1: received T0, diagnosed T0+1, approved T0+2, designed T0+5, delivered T0+7
    clock.set(T0)
    r1 = ids["design"] = service.submit(intake_data(title="Objection handling"), ACTOR).id
    _diagnose_and_approve(service, clock, r1, skill_gap=True)
    clock.advance(3 * DAY)
    service.design(r1, brief_data(), ACTOR)
    clock.advance(2 * DAY)
    _deliver(service, clock, r1)
    request = service.show(r1)
    for c in sorted(request.checkpoints, key=lambda c: c.due_at):
        record_when_due(service, r1, c.key, {"value": 71.0, "note": "from the CRM"}, ACTOR)
    service.measure(r1, ACTOR)
    service.acknowledge(r1, ack_data(), ACTOR)

    # 2: received T0, diagnosed +1, approved +2, redirected +3, delivered +4, cancelled +6, reopened +7, declined +8
    clock.set(T0)
    r2 = ids["redirect"] = service.submit(intake_data(title="Knowledge base search"), ACTOR).id
    _diagnose_and_approve(service, clock, r2, skill_gap=False)
    clock.advance(DAY)
    service.redirect(r2, redirect_data(), ACTOR)
    clock.advance(DAY)
    _deliver(service, clock, r2)
    clock.advance(2 * DAY)
    service.cancel(r2, reason_data("the tool team re-planned"), ACTOR)
    clock.advance(DAY)
    service.reopen(r2, reason_data("back on"), ACTOR)
    clock.advance(DAY)
    service.decline(r2, reason_data("solved by the tool team"), ACTOR)

    # 3: pat's request, amended to quinn (+1), diagnosed (+2), cancelled (+4)
    clock.set(T0)
    r3 = ids["amended"] = service.submit(intake_data(title="Safety briefing", sponsor_email=PAT), ACTOR).id
    clock.advance(DAY)
    service.amend(r3, {"reason": "Quinn owns the budget now",
                       "sponsor": {"name": "Quinn Sponsor", "email": QUINN, "role": "COO"}}, ACTOR)
    clock.advance(DAY)
    service.diagnose(r3, diagnosis_data(skill_gap=True), ACTOR)
    clock.advance(2 * DAY)
    service.cancel(r3, reason_data(), ACTOR)

    # 4: received in April, still received
    clock.set(T0 + timedelta(days=40))
    ids["waiting"] = service.submit(intake_data(title="Negotiation basics"), ACTOR).id

    # 5: redirected (+3), cancelled (+5), reopened (+6), diagnosed (+7), designed (+9)
    clock.set(T0)
    r5 = ids["rerouted"] = service.submit(intake_data(title="Ticket triage"), ACTOR).id
    _diagnose_and_approve(service, clock, r5, skill_gap=False)
    clock.advance(DAY)
    service.redirect(r5, redirect_data(), ACTOR)
    clock.advance(2 * DAY)
    service.cancel(r5, reason_data(), ACTOR)
    clock.advance(DAY)
    service.reopen(r5, reason_data("the tool fix did not help"), ACTOR)
    clock.advance(DAY)
    service.diagnose(r5, diagnosis_data(skill_gap=True), ACTOR)
    clock.advance(2 * DAY)
    service.design(r5, brief_data(), ACTOR)
    return ids


SAM = SPONSOR
