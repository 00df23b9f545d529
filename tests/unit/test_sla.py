"""SLA clocks on a business calendar (issue 11 item 2), pure: business days across a weekend, a
holiday and a DST change; the pause while the plan waits for the sponsor; a changed policy recomputes
the past; bad policies and holidays named field by field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from states import sla
from states.business_calendar import BusinessCalendar, calendar, parse_holidays
from states.errors import InvalidInput
from states.validation import parse

BERLIN = ZoneInfo("Europe/Berlin")


def local(y: int, m: int, d: int, h: int = 10, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=BERLIN)


def test_business_days_skip_the_weekend() -> None:
    cal = calendar("Europe/Berlin")
    thursday = local(2026, 3, 5)
    assert cal.business_days(thursday, local(2026, 3, 6)) == pytest.approx(1)  # Thu 10:00 → Fri 10:00
    assert cal.business_days(thursday, local(2026, 3, 9)) == pytest.approx(2)  # … → Mon 10:00: Sat, Sun are free
    assert cal.business_days(local(2026, 3, 7), local(2026, 3, 9, 0)) == 0  # the weekend itself
    assert cal.add_business_days(thursday, 5) == local(2026, 3, 12)  # next Thursday, same wall time
    assert cal.business_days(local(2026, 3, 9), thursday) == 0  # an end before the start


def test_a_holiday_is_not_a_business_day() -> None:
    cal = calendar("Europe/Berlin", holidays=[date(2026, 4, 3), date(2026, 4, 6)])  # Good Friday, Easter Monday
    thursday = local(2026, 4, 2)
    assert cal.business_days(thursday, local(2026, 4, 7)) == pytest.approx(1)  # Thu 10:00 → Tue 10:00
    assert cal.add_business_days(thursday, 2) == local(2026, 4, 8)


def test_a_day_with_a_dst_change_still_counts_as_one_business_day() -> None:
    # Berlin moves to summer time on Sunday 2026-03-29 (a 23-hour day); on a calendar that works
    # every day the DST day counts as one day, not 23/24 of one.
    every_day = calendar("Europe/Berlin", weekdays=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    saturday, monday = local(2026, 3, 28), local(2026, 3, 30)
    assert monday.astimezone(UTC) - saturday.astimezone(UTC) == timedelta(hours=47)  # the wall clock lost an hour
    assert every_day.business_days(saturday, monday) == pytest.approx(2)
    assert every_day.add_business_days(saturday, 2) == monday  # 10:00 local again: 08:00 UTC, not 09:00
    assert every_day.add_business_days(saturday, 2).astimezone(UTC).hour == 8
    # on weekdays only: Friday before the change to Monday after is one business day, at the same wall time
    weekdays = calendar("Europe/Berlin")
    assert weekdays.add_business_days(local(2026, 3, 27), 1) == monday
    # and half a day on the DST day is half of its 23 hours
    midnight = local(2026, 3, 29, 0).astimezone(UTC)
    assert every_day.business_days(midnight, midnight + timedelta(hours=11.5)) == pytest.approx(0.5)


def _history(*steps: tuple[str, datetime] | tuple[str, datetime, str]) -> list[sla.Entry]:
    return [sla.Entry(s[0], s[1].astimezone(UTC), s[2] if len(s) > 2 else "") for s in steps]  # type: ignore[misc]


def _policy(**changes: object) -> sla.SlaPolicy:
    data = {**sla.DEFAULT_POLICY, **changes}
    return parse(sla.SlaPolicy, data)


CAL = BusinessCalendar(tz="Europe/Berlin")


def _diagnose(found: list[sla.Breach]) -> list[sla.Breach]:
    return [b for b in found if b.sla == "diagnose"]  # the default policy's design clock runs from 'diagnosed'


def test_diagnose_breach_and_near_breach_from_the_history() -> None:
    received = local(2026, 3, 2)  # Monday
    history = _history(("submitted", received))
    policy = _policy()
    assert sla.breaches(1, history, policy, CAL, local(2026, 3, 5)) == []  # 3 of 5 days
    [near] = sla.breaches(1, history, policy, CAL, local(2026, 3, 6, 12))  # 4.08 of 5: past 80%
    assert (near.sla, near.status, near.running) == ("diagnose", "near", True)
    assert near.due_at == local(2026, 3, 9).astimezone(UTC)  # Monday 10:00: 5 business days after receipt
    [late] = sla.breaches(1, history, policy, CAL, local(2026, 3, 10))
    assert late.status == "breached" and late.elapsed == pytest.approx(6) and late.due_at is None
    assert "diagnose breached: 6.0 of 5 business days" in late.words()
    # diagnosed on day 6: the breach stays in the history, stopped
    done = history + _history(("diagnosed", local(2026, 3, 10)))
    [past] = _diagnose(sla.breaches(1, done, policy, CAL, local(2026, 6, 1)))
    assert past.status == "breached" and not past.running and past.stopped_at == local(2026, 3, 10).astimezone(UTC)
    # diagnosed on day 4: a near miss that stopped is no breach
    early = history + _history(("diagnosed", local(2026, 3, 6, 12)))
    assert _diagnose(sla.breaches(1, early, policy, CAL, local(2026, 6, 1))) == []


def test_the_clock_pauses_while_the_plan_waits_for_the_sponsor_and_resumes() -> None:
    policy = _policy(slas={"design": {"start": ["diagnosed"], "stop": ["designed"], "within": 5,
                                      "pause_while_waiting_on_sponsor": True}})
    history = _history(("diagnosed", local(2026, 3, 2)),  # Monday
                       ("plan_drafted", local(2026, 3, 3)),  # Tuesday: 1 day on the clock, then paused
                       ("plan_approved", local(2026, 3, 17)))  # two weeks later: resumed
    assert sla.breaches(1, history[:2], policy, CAL, local(2026, 3, 16)) == []  # still waiting: 1 of 5 days
    short = _policy(slas={"design": {"start": ["diagnosed"], "stop": ["designed"], "within": 1.2,
                                     "pause_while_waiting_on_sponsor": True}})
    [paused] = sla.breaches(1, history[:2], short, CAL, local(2026, 3, 16))  # 1 of 1.2: near, but paused …
    assert paused.status == "near" and paused.elapsed == pytest.approx(1) and paused.due_at is None  # … no due date
    assert sla.breaches(1, history, policy, CAL, local(2026, 3, 18)) == []  # 1 + 1 = 2 of 5 days
    [near] = sla.breaches(1, history, policy, CAL, local(2026, 3, 20))  # 1 + 3 = 4 of 5
    assert near.status == "near" and near.elapsed == pytest.approx(4)
    assert near.due_at == local(2026, 3, 23).astimezone(UTC)
    # without the pause the same history breached long ago
    unpaused = _policy(slas={"design": {"start": ["diagnosed"], "stop": ["designed"], "within": 5}})
    [breach] = sla.breaches(1, history, unpaused, CAL, local(2026, 3, 18))
    assert breach.status == "breached" and breach.elapsed == pytest.approx(12)
    # changes asked for by the sponsor end the wait too
    asked = history[:2] + _history(("plan_changes_requested", local(2026, 3, 4)))
    [resumed] = sla.breaches(1, asked, policy, CAL, local(2026, 3, 9))
    assert resumed.elapsed == pytest.approx(4)


def test_paused_at_zero_shows_no_near_breach() -> None:
    policy = _policy(slas={"design": {"start": ["diagnosed"], "stop": ["designed"], "within": 5,
                                      "pause_while_waiting_on_sponsor": True}})
    history = _history(("diagnosed", local(2026, 3, 2)), ("plan_drafted", local(2026, 3, 2)))
    assert sla.breaches(1, history, policy, CAL, local(2026, 5, 1)) == []


def test_a_changed_policy_recomputes_the_past() -> None:
    history = _history(("submitted", local(2026, 3, 2)), ("diagnosed", local(2026, 3, 6)))  # 4 business days
    assert _diagnose(sla.breaches(1, history, _policy(), CAL, local(2026, 6, 1))) == []  # within 5
    stricter = _policy(slas={"diagnose": {"start": ["submitted"], "stop": ["diagnosed"], "within": 3}})
    [b] = sla.breaches(1, history, stricter, CAL, local(2026, 6, 1))
    assert b.status == "breached" and b.elapsed == pytest.approx(4) and b.allowed == 3
    # a holiday added to the calendar recomputes it too: 3 business days, no breach
    with_holiday = BusinessCalendar(tz="Europe/Berlin", holidays=frozenset({date(2026, 3, 4)}))
    assert sla.breaches(1, history, stricter, with_holiday, local(2026, 6, 1)) == []


def test_results_run_per_checkpoint_in_calendar_days_and_cancel_stops_them_all() -> None:
    policy = _policy()
    history = _history(("survey_sent", local(2026, 5, 1), "7:m1:P30D"), ("survey_sent", local(2026, 5, 1), "7:m2:P30D"),
                       ("result_recorded", local(2026, 5, 10), "7:m1:P30D"))
    [open_] = sla.breaches(7, history, policy, CAL, local(2026, 5, 16))  # m2: 15 of 14 days
    assert (open_.sla, open_.checkpoint, open_.status, open_.unit) == ("results", "7:m2:P30D", "breached", "days")
    cancelled = history + _history(("cancelled", local(2026, 5, 12)))
    assert sla.breaches(7, cancelled, policy, CAL, local(2026, 6, 1)) == []  # stopped at day 11
    reopened = _history(("submitted", local(2026, 3, 2)), ("cancelled", local(2026, 3, 3)),
                        ("reopened", local(2026, 4, 6)))  # a new diagnose clock from the reopening
    [again] = _diagnose(sla.breaches(7, reopened, policy, CAL, local(2026, 4, 14)))
    assert again.started_at == local(2026, 4, 6).astimezone(UTC) and again.status == "breached"


def test_a_survey_closed_with_its_answers_stops_its_results_clock() -> None:
    """A group survey's result is its aggregate (``survey_closed``), not a ``result_recorded``: found by
    running ``ldflow analytics`` on the demo, where an acknowledged request still had a running clock."""
    history = _history(("survey_sent", local(2026, 5, 1), "7:m1:P1D"),
                       ("survey_closed", local(2026, 5, 3), "7:m1:P1D"))
    assert sla.breaches(7, history, _policy(), CAL, local(2026, 6, 1)) == []


def test_bad_policies_name_the_field() -> None:
    with pytest.raises(InvalidInput) as bad:
        parse(sla.SlaPolicy, {"slas": {"diagnose": {"start": ["recieved"], "stop": ["diagnosed"], "within": -1}},
                              "near_breach_percent": 120})
    fields = {e.field for e in bad.value.errors}
    assert {"slas.diagnose.start", "slas.diagnose.within", "near_breach_percent"} <= fields, fields
    assert "unknown event(s) recieved" in str(bad.value)
    with pytest.raises(InvalidInput) as cal:
        calendar("Mars/Olympus", weekdays=["mon", "funday"])
    assert [e.field for e in cal.value.errors] == ["timezone", "weekdays[1]"]


def test_bad_holidays_name_the_entry() -> None:
    assert parse_holidays({"holidays": ["2026-12-25", {"date": "2026-12-26", "name": "Boxing Day"}]}) == \
        [date(2026, 12, 25), date(2026, 12, 26)]
    with pytest.raises(InvalidInput) as bad:
        parse_holidays({"holidays": ["2026-12-25", "Christmas", {"date": "2026-13-01"}]}, "holidays.yaml")
    assert [e.field for e in bad.value.errors] == ["holidays[1]", "holidays[2].date"]
    assert "holidays.yaml" in str(bad.value)
    with pytest.raises(InvalidInput) as missing:
        parse_holidays({"days": []})
    assert missing.value.errors[0].field == "holidays"


def test_whole_business_days_by_arithmetic_equal_the_day_by_day_count() -> None:
    """``business_days`` counts the whole days between its ends by weeks and a bisection of the holidays;
    against counting them one by one, over random spans, weekdays and holidays (some on weekends)."""
    import random

    rng = random.Random(11)
    for _ in range(400):
        days = rng.sample(range(7), rng.randint(1, 7))
        start = date(2026, 1, 1) + timedelta(days=rng.randint(0, 400))
        holidays = [start + timedelta(days=rng.randint(-10, 120)) for _ in range(rng.randint(0, 12))]
        cal = BusinessCalendar(tz="Europe/Berlin", weekdays=frozenset(days), holidays=frozenset(holidays))
        last = start + timedelta(days=rng.randint(0, 100))
        counted = sum(cal.is_business_day(start + timedelta(days=i)) for i in range(1, (last - start).days))
        assert cal._whole_days(start, last) == counted
