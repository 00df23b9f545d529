"""``RequestStore.board`` and ``recent_history`` on the fake, SQLite and PostgreSQL: the counts per
column, the page across columns, the card facts kept on the row (as ``states.card`` derives them
from the document), each filter, and the newest events of a long history."""

from __future__ import annotations

from datetime import timedelta

from connectors.ports import BoardQuery
from flows.clock import FixedClock
from flows.service import Service
from states.card import facts
from states.lifecycle import State
from tests.builders import ACTOR, T0, drive_to, intake_data, person

ORDER = [s.value for s in State]


def _fill(service: Service, clock: FixedClock) -> dict[str, int]:
    ids = {}
    ids["r1"] = service.submit(intake_data(title="Alpha course"), ACTOR).id
    clock.advance(timedelta(hours=1))
    ids["r2"] = service.submit(intake_data(title="Bravo 100% course", sponsor_email="sol_o@example.org"), ACTOR).id
    clock.advance(timedelta(hours=1))
    ids["d1"] = drive_to(service, "delivered", intake=intake_data(title="Charlie course")).id
    clock.advance(timedelta(hours=1))
    ids["x1"] = drive_to(service, "declined", intake=intake_data(title="Delta course")).id
    return ids


def test_counts_the_columns_and_pages_through_them_in_board_order(any_store, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    ids = _fill(service, clock)
    page = any_store.board(BoardQuery(order=ORDER))
    assert page.counts == {"received": 2, "delivered": 1, "declined": 1}
    # received first (newest change first), then delivered, then declined
    assert [r.id for r in page.rows] == [ids["r2"], ids["r1"], ids["d1"], ids["x1"]]
    assert [r.id for r in any_store.board(BoardQuery(order=ORDER, limit=2, offset=1)).rows] == [ids["r1"], ids["d1"]]
    assert any_store.board(BoardQuery(order=ORDER, offset=9)).rows == []
    assert page.sponsors == sorted({"sol_o@example.org", any_store.get(ids["r1"]).intake.sponsor.email})
    for row in page.rows:
        request = any_store.get(row.id)
        assert (row.owners, row.next_action, row.missing) == tuple(vars(facts(request)).values())
        assert (row.title, row.state, row.version) == (request.intake.title, request.state.value, request.version)


def test_in_state_since_moves_on_a_transition_only(any_store, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    rid = service.submit(intake_data(), ACTOR).id
    clock.advance(timedelta(days=2))
    service.add_note(rid, "a note is no transition", ACTOR)
    [row] = any_store.board(BoardQuery(order=ORDER)).rows
    assert row.in_state_since == T0 and row.updated_at == T0 + timedelta(days=2)
    moved = clock.advance(timedelta(days=1))
    drive_to(service, "delivered", request_id=rid)
    [row] = any_store.board(BoardQuery(order=ORDER)).rows
    assert row.state == "delivered" and row.in_state_since == moved


def test_each_filter(any_store, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    ids = _fill(service, clock)

    def shown(**kw: object) -> list[int]:
        return sorted(r.id for r in any_store.board(BoardQuery(order=ORDER, **kw)).rows)  # type: ignore[arg-type]

    assert shown(states=("received", "declined")) == sorted([ids["r1"], ids["r2"], ids["x1"]])
    assert shown(sponsor="SOL_O@example.org") == [ids["r2"]]
    assert shown(sponsor="sol%o@example.org") == []  # no wildcard in an address
    assert shown(text="100%") == [ids["r2"]] and shown(text="ALPHA") == [ids["r1"]]
    assert shown(text=str(ids["d1"])) == [ids["d1"]] and shown(text="_") == []
    owner = person()["email"]
    assert shown(owner=owner.upper()) == [ids["d1"]] and shown(owner=owner[:5]) == []
    assert shown(requester="nobody@example.org") == []
    page = any_store.board(BoardQuery(order=ORDER, sponsor="sol_o@example.org"))
    assert page.counts == {"received": 1} and page.sponsors == ["sol_o@example.org"]


def test_needs_attention_keeps_requests_with_a_late_survey(any_store, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    rid = drive_to(service, "delivered").id
    assert rid is not None
    request = any_store.get(rid)
    first = min(request.checkpoints, key=lambda c: c.due_at)
    sent_at = first.due_at + timedelta(hours=1)
    any_store.update(rid, ACTOR, lambda r: r.send_checkpoint(first.key, sent_at, timedelta(days=30)))
    other = service.submit(intake_data(title="Quiet one"), ACTOR).id
    assert [r.id for r in any_store.board(BoardQuery(order=ORDER, needs_attention_before=sent_at)).rows] == []
    late = any_store.board(BoardQuery(order=ORDER, needs_attention_before=sent_at + timedelta(days=1)))
    assert [r.id for r in late.rows] == [rid] and other not in late.counts
    [opened] = late.rows[0].open_checkpoints
    assert opened == (first.item_id, first.offset, "sent", sent_at)


def test_recent_history_is_the_newest_events_oldest_first(any_store, clock: FixedClock) -> None:
    service = Service(any_store, clock)
    rid = service.submit(intake_data(), ACTOR).id
    for n in range(6):
        clock.advance(timedelta(minutes=1))
        service.add_note(rid, f"note {n}", ACTOR)
    everything = any_store.history(rid)
    assert any_store.recent_history(rid, 3) == (everything[-3:], 7)
    assert any_store.recent_history(rid, 50) == (everything, 7)


def test_the_kept_counts_follow_every_transition_and_reopening(any_store, clock: FixedClock) -> None:
    """Unfiltered, SqlStore reads the counts it keeps per state; they must equal the rows counted."""
    service = Service(any_store, clock)
    ids = _fill(service, clock)
    drive_to(service, "acknowledged", request_id=ids["d1"])
    service.reopen(ids["x1"], {"reason": "budget found"}, ACTOR)
    expected = any_store.counts_by_state()
    assert any_store.board(BoardQuery(order=ORDER)).counts == expected
    assert any_store.board(BoardQuery(order=ORDER, states=("received",))).counts == {"received": expected["received"]}
    assert sum(expected.values()) == 4


def test_the_attention_filter_keeps_the_given_ids_whatever_their_number(any_store, clock: FixedClock) -> None:
    """``attention_ids`` (the late SLA clocks) go to SQL as one JSON parameter, not one bind each: the same
    answer for two ids and for 10,000 (most of them no request), with the other filters still applied."""
    service = Service(any_store, clock)
    ids = _fill(service, clock)
    before = clock.now() - timedelta(days=14)
    two = BoardQuery(order=ORDER, needs_attention_before=before, attention_ids=(ids["r2"], ids["d1"]))
    assert sorted(r.id for r in any_store.board(two).rows) == sorted([ids["r2"], ids["d1"]])
    many = (*range(10_000, 20_000), ids["r1"])
    page = any_store.board(BoardQuery(order=ORDER, needs_attention_before=before, attention_ids=many))
    assert [r.id for r in page.rows] == [ids["r1"]] and page.counts == {"received": 1}
    narrowed = BoardQuery(order=ORDER, needs_attention_before=before, attention_ids=(ids["r1"], ids["d1"]),
                          states=("delivered",))
    assert [r.id for r in any_store.board(narrowed).rows] == [ids["d1"]]
