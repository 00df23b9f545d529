"""The SLA clock summaries (``RequestStore.sla_heads``/``sla_summaries``/``needs_review_ids``) on the fake,
SQLite and PostgreSQL, and ``flows.sla.clocks`` over them, with ``states.sla.breaches`` over each request's
whole stored history as the oracle: hand-built histories (re-opened, amended, cancelled, paused while the
plan waits for the sponsor, a checkpoint's survey), read at several times (the cached outcome of stopped
clocks and the quiet time of running ones), under two policies (a changed policy recomputes the past, on a
Berlin calendar with a holiday and a DST change), and a write that changes a clock seen on the next read."""

from __future__ import annotations

from datetime import date, timedelta

from connectors.db.store import SqlStore
from connectors.db.unit_of_work import SqlUnitOfWork
from connectors.ports import RequestStore
from connectors.testing import InMemoryStore, InMemoryUnitOfWork
from flows import analytics, sla
from flows.clock import FixedClock
from flows.service import Service
from states import sla as rules
from states.business_calendar import calendar
from states.card import owners
from states.events import EmailSent
from states.validation import parse
from tests.builders import ACTOR, T0, diagnosis_data, drive_to, intake_data, plan_data, reason_data

BERLIN = {"timezone": "Europe/Berlin", "near_breach_percent": 50,
          "slas": {"diagnose": {"start": ["submitted", "reopened"], "stop": ["diagnosed", "cancelled"], "within": 2},
                   "design": {"start": ["diagnosed"], "stop": ["designed", "redirected"], "within": 3,
                              "pause_while_waiting_on_sponsor": True},
                   "notes": {"start": ["note_added"], "stop": ["amended"], "within": 1, "unit": "days"},
                   "results": {"start": ["survey_sent"], "stop": ["result_recorded", "checkpoint_missed"],
                               "within": 14, "unit": "days", "per": "checkpoint"}}}


def _fill(service: Service, clock: FixedClock) -> dict[str, int]:
    ids: dict[str, int] = {}
    ids["waiting"] = service.submit(intake_data(title="Left waiting"), ACTOR).id
    ids["late"] = service.submit(intake_data(title="Diagnosed late"), ACTOR).id
    clock.advance(timedelta(hours=5))
    paused = service.submit(intake_data(title="Plan waits for the sponsor"), ACTOR).id
    service.diagnose(paused, diagnosis_data(), ACTOR)
    clock.advance(timedelta(days=2))
    service.draft_plan(paused, plan_data(), ACTOR)  # the design clock stands still from here
    ids["paused"] = paused
    reopened = drive_to(service, "declined", intake=intake_data(title="Declined, then re-opened")).id
    clock.advance(timedelta(days=2))
    service.reopen(reopened, reason_data("budget back"), ACTOR)
    service.add_note(reopened, "asked the sponsor", ACTOR)
    ids["reopened"] = reopened
    amended = service.submit(intake_data(title="Amended"), ACTOR).id
    service.add_note(amended, "a note starts the notes clock", ACTOR)
    clock.advance(timedelta(days=3))
    service.amend(amended, {"title": "Amended title", "reason": "the sponsor renamed it"}, ACTOR)
    ids["amended"] = amended
    cancelled = drive_to(service, "delivered", intake=intake_data(title="Cancelled after delivery")).id
    ids["delivered"] = drive_to(service, "delivered", intake=intake_data(title="Delivered, measuring")).id
    clock.advance(timedelta(days=1))
    service.cancel(cancelled, reason_data("re-organised"), ACTOR)
    ids["cancelled"] = cancelled
    service.diagnose(ids["late"], diagnosis_data(), ACTOR)
    clock.set(T0 + timedelta(days=50))  # the delivered request's first checkpoint is due: its survey goes out
    assert service.send_due_checkpoints(ACTOR, timedelta(days=60))["sent"] >= 1
    ids["fresh"] = service.submit(intake_data(title="Just in"), ACTOR).id
    return ids


def _oracle(store: RequestStore, policy: sla.Policy, now: object, open_only: bool = True) -> dict[int, list]:
    return {rid: rules.breaches(rid, rules.entries(store.history(rid)), policy.rules, policy.calendar, now)
            for rid in store.sla_heads(open_only)}


def test_the_summary_is_the_history_as_the_sla_walk_reads_it(any_store: RequestStore, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    ids = _fill(service, clock)
    every = any_store.sla_heads(open_only=False)
    assert sorted(every) == sorted(ids.values())
    assert set(any_store.sla_heads()) == {ids["waiting"], ids["late"], ids["paused"], ids["reopened"],
                                          ids["amended"], ids["delivered"], ids["fresh"]}
    summaries = any_store.sla_summaries([*every, 999])  # an unknown id is left out
    assert [s.request_id for s in summaries] == sorted(every)
    for s in summaries:
        request, history = any_store.get(s.request_id), any_store.history(s.request_id)
        assert rules.read_lines(s.lines) == rules.entries(history)
        assert (s.title, s.state, s.head_seq) == (request.intake.title, request.state.value, len(history))
        assert s.owners == owners(request) and s.names == rules.owner_names(request)
        assert s.needs_review is False
    assert any_store.sla_summaries([ids["delivered"]])[0].names == {"olga.owner@example.org": "Olga Owner"}
    assert any_store.needs_review_ids() == set()


def test_clocks_equal_the_walk_over_the_whole_history(any_store: RequestStore, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    _fill(service, clock)
    built_in = sla.policy_from(rules.DEFAULT_POLICY)
    # T0 is Monday 2026-03-02: a holiday on the second Tuesday, and Berlin's DST change on 2026-03-29
    berlin_rules = parse(rules.SlaPolicy, BERLIN)
    berlin = sla.Policy(berlin_rules, calendar("Europe/Berlin", holidays=[date(2026, 3, 10), date(2026, 3, 30)]))
    # read at many times, both policies in turn: the cache per policy digest never answers for the other
    seen: set[tuple[str, str, bool]] = set()
    for hours in (0, 1, 20, 47, 70, 200, 24 * 30, 24 * 400):
        now = clock.now() + timedelta(hours=hours)
        for policy in (built_in, berlin):
            for open_only in (True, False):
                expected = _oracle(any_store, policy, now, open_only)
                got = sla.clocks(any_store, policy, now, open_only=open_only)
                assert {i: c.breaches for i, c in got.items()} == expected
                sla._CACHES.pop(any_store, None)  # a new process: the outcomes the store keeps answer
                cold = sla.clocks(any_store, policy, now, open_only=open_only)
                assert {i: c.breaches for i, c in cold.items()} == expected
                seen |= {(b.sla, b.status, b.running) for c in got.values() for b in c.breaches}
            clocks = analytics.SlaClocks(policy, now)  # the analytics section: from the summaries, as walked
            every = sorted(any_store.sla_heads(open_only=False))
            assert analytics.figures(any_store, None, clocks)["sla_breaches"] == analytics.sla_section(
                every, any_store.history, clocks)
    # the histories have every kind of outcome: near and breached running clocks, breaches that stopped,
    # the paused design clock, the per-checkpoint results clock
    assert {("diagnose", "near", True), ("diagnose", "breached", True), ("diagnose", "breached", False),
            ("design", "near", True), ("notes", "breached", False), ("results", "breached", True),
            ("sponsor_approval", "breached", True)} <= seen
    # the last policy read holds every request's cached outcome; the other's were replaced
    assert set(any_store.sla_outcomes(sla.digest(berlin))) == set(any_store.sla_heads(open_only=False))
    assert any_store.sla_outcomes(sla.digest(built_in)) == {}
    assert sla.digest(built_in) != sla.digest(berlin)
    changed = sla.Policy(berlin_rules, calendar("Europe/Berlin"))
    assert sla.digest(changed) != sla.digest(berlin)  # another holidays file: another key


def test_a_write_that_changes_a_clock_is_read_next_time(any_store: RequestStore, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    policy = sla.policy_from(rules.DEFAULT_POLICY)
    rid = service.submit(intake_data(title="Late"), ACTOR).id
    clock.advance(timedelta(days=10))
    [running] = sla.clocks(any_store, policy, clock.now())[rid].breaches
    assert (running.sla, running.status, running.running) == ("diagnose", "breached", True)
    clocks = analytics.SlaClocks(policy, clock.now())
    assert analytics.figures(any_store, None, clocks)["sla_breaches"]["slas"][0]["running_breached"] == 1
    service.diagnose(rid, diagnosis_data(), ACTOR)  # stops the clock, starts the design clock
    section = analytics.figures(any_store, None, clocks)["sla_breaches"]  # the next read: the stopped breach
    assert section == analytics.sla_section([rid], any_store.history, clocks)
    assert (section["slas"][0]["breached"], section["slas"][0]["running_breached"]) == (1, 0)
    [stopped] = sla.clocks(any_store, policy, clock.now())[rid].breaches
    assert stopped.sla == "diagnose" and not stopped.running
    service.cancel(rid, reason_data(), ACTOR)  # no longer open: off the open list, its breach kept in all
    assert rid not in sla.clocks(any_store, policy, clock.now())
    assert sla.clocks(any_store, policy, clock.now(), open_only=False)[rid].breaches == [stopped]
    # a non-transition event the relay records (record_events) grows the summary in the same transaction
    uow = InMemoryUnitOfWork(any_store) if isinstance(any_store, InMemoryStore) else \
        SqlUnitOfWork(any_store.engine, any_store) if isinstance(any_store, SqlStore) else None
    assert uow is not None
    with uow.transaction() as tx:
        tx.record_events(rid, [EmailSent(key=f"{rid}:mail", template="request_cancelled")], ACTOR, clock.now())
    [summary] = any_store.sla_summaries([rid])
    assert rules.read_lines(summary.lines)[-1].type == "email_sent"
    assert rules.read_lines(summary.lines) == rules.entries(any_store.history(rid))
    assert summary.head_seq == len(any_store.history(rid)) == any_store.sla_heads(open_only=False)[rid]


def test_the_due_clocks_and_the_filtered_section_equal_the_walk(any_store: RequestStore, clock: FixedClock) -> None:
    """``flows.sla.due`` (only the requests past their quiet time) holds every running breach the walk finds,
    and the analytics SLA section under each filter (stopped SLAs counted by the store, running ones judged)
    equals ``sla_section`` over the filter's requests' histories, both in a new process and warm."""
    service = Service(any_store, clock)
    ids = _fill(service, clock)
    built_in = sla.policy_from(rules.DEFAULT_POLICY)
    berlin = sla.Policy(parse(rules.SlaPolicy, BERLIN), calendar("Europe/Berlin", holidays=[date(2026, 3, 10)]))
    tracks = analytics.tracks(any_store)
    sponsor = next(t.sponsor for t in tracks if t.request_id == ids["paused"])
    day = min(t.received_at[:10] for t in tracks if t.request_id == ids["amended"])
    filters = [analytics.Filter(), analytics.Filter(sponsor=sponsor), analytics.Filter(type="design"),
               analytics.Filter(date_from=date.fromisoformat(day)),
               analytics.Filter(owner_ids=frozenset({ids["late"], ids["paused"], ids["delivered"]}))]
    for hours in (0, 20, 70, 24 * 30, 24 * 400):
        now = clock.now() + timedelta(hours=hours)
        for policy in (built_in, berlin):
            for cold in (True, False):
                if cold:
                    sla._CACHES.pop(any_store, None)
                    analytics._CACHES.pop(any_store, None)
                    analytics.figures(any_store)  # (the section reads the track cache the figures refresh)
                running = {i: c for i, b in _oracle(any_store, policy, now).items()
                           if (c := [x for x in b if x.running])}
                got = sla.due(any_store, policy, now)
                assert {i: c.running for i, c in got.items() if c.running} == running
                assert all(got[i].summary is not None for i in running)
                for flt in filters:
                    kept = sorted(t.request_id for t in tracks if flt.keeps(t))
                    section = analytics._sla(any_store, analytics._cached(any_store), flt,
                                             analytics.SlaClocks(policy, now))
                    assert section == analytics.sla_section(kept, any_store.history, analytics.SlaClocks(policy, now))
    assert any_store.sla_stale(sla.digest(berlin), open_only=False) == {}
    assert any_store.sla_stale(sla.digest(built_in)) == any_store.sla_heads()  # the other policy's were replaced


def test_the_stale_check_over_every_request_names_each_request_a_write_moved_on(any_store, clock: FixedClock) -> None:
    """``sla_stale(open_only=False)`` first asks whether every outcome is current by counts and sums of
    heads (no join): nothing once all are kept; after writes, exactly the requests they moved on."""
    service = Service(any_store, clock)
    a = service.submit(intake_data(), ACTOR).id
    b = service.submit(intake_data(), ACTOR).id
    policy = sla.policy_from(rules.DEFAULT_POLICY)
    key = sla.sync(any_store, policy, clock.now(), open_only=False)
    assert any_store.sla_stale(key, open_only=False) == {}
    service.add_note(a, "a note moves its head on", ACTOR)
    assert any_store.sla_stale(key, open_only=False) == {a: any_store.sla_heads()[a]}
    sla.sync(any_store, policy, clock.now(), open_only=False)
    service.add_note(b, "b moves on", ACTOR)
    service.add_note(a, "and a again", ACTOR)
    heads = any_store.sla_heads()
    assert any_store.sla_stale(key, open_only=False) == {a: heads[a], b: heads[b]}
    sla.sync(any_store, policy, clock.now(), open_only=False)
    assert any_store.sla_stale(key, open_only=False) == {}
