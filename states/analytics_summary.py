"""The tracks pre-grouped: what every figure of :mod:`states.analytics_figures` reads, and nothing more.

The figures are counts, sums and two order statistics, so they do not need 100,000 tracks in memory:
a :class:`Summary` holds the tracks' *groups* (tracks alike in everything the funnel, the redirect rate,
the trend and the measurement section count: month of receipt, path, redirect kind, stages reached,
causes, and two checkpoint flags; with their number and their checkpoint sums), the ROI sums per
currency, the outcome counts per level and sponsor, and per duration its n, median and p90
(:class:`Spread`). :func:`summarise` builds it from tracks (the fakes and the oracle);
``connectors/db/analytics_summary.py`` builds the same thing with ``GROUP BY`` queries over the
``analytics_tracks`` columns, whose values :func:`columns` derives from each track (one derivation
for both). Pure.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from states.analytics import CAUSES, STAGES, Track, seconds
from states.lifecycle import State

#: the stages and causes as bits of the ``reached`` and ``causes`` columns
STAGE_BITS: Final[dict[str, int]] = {s.value: 1 << i for i, s in enumerate(STAGES)}
CAUSE_BITS: Final[dict[str, int]] = {c: 1 << i for i, c in enumerate(CAUSES)}
#: the durations with a median and p90: the time in each state, then the two waits
SPREADS: Final[tuple[str, ...]] = (*(s.value for s in State), "plan_approval", "delivery_to_last_result")
COUNTERS: Final[tuple[str, ...]] = ("scheduled", "sent", "answered", "missed", "flagged", "superseded")
_CLOSED_EARLY: Final = frozenset({State.CANCELLED.value, State.DECLINED.value})


def bits(names: Iterable[str], table: Mapping[str, int]) -> int:
    return sum(table[n] for n in set(names))


def names(mask: int, table: Mapping[str, int]) -> tuple[str, ...]:
    """The names of ``mask``'s bits, in the table's order."""
    return tuple(n for n, bit in table.items() if mask & bit)


def columns(t: Track) -> dict[str, Any]:
    """A track's values as the ``analytics_tracks`` columns read them (the summary's inputs)."""
    stays = dict(t.time_in)
    return {
        "day": t.received_at[:10], "month": t.received_at[:7], "sponsor": t.sponsor, "path": t.path,
        "kind": t.redirect_kind, "reached": bits(t.reached, STAGE_BITS), "causes": bits(t.causes, CAUSE_BITS),
        # delivered requests still on their way to (or past) measurement: a cancellation closes its checkpoints
        "delivered_ckpt": int("delivered" in t.reached and bool(t.scheduled) and t.state not in _CLOSED_EARLY),
        "all_closed": int(t.open_checkpoints == 0),
        **{k: getattr(t, k) for k in COUNTERS},
        "roi_currency": t.roi_currency, "isolated": t.isolated_benefits, "not_isolated": t.not_isolated_benefits,
        "costs": t.costs,
        **{f"t_{s.value}": stays.get(s.value) for s in State},
        "plan_approval": seconds(t.received_at, t.plan_approved_at) if t.plan_approved_at else None,
        "delivery_to_last_result": seconds(t.delivered_at, t.last_result_at)
        if t.delivered_at and t.last_result_at and t.last_result_at >= t.delivered_at else None,
    }


@dataclass(frozen=True)
class Group:
    """Tracks alike in every value the counting sections read: how many, and their checkpoint sums."""

    month: str
    path: str
    kind: str
    reached: frozenset[str]
    causes: tuple[str, ...]
    delivered_ckpt: bool
    all_closed: bool
    n: int
    scheduled: int = 0
    sent: int = 0
    answered: int = 0
    missed: int = 0
    flagged: int = 0
    superseded: int = 0


@dataclass(frozen=True)
class Money:
    currency: str
    requests: int
    isolated: float
    not_isolated: float
    costs: float


@dataclass(frozen=True)
class OutcomeCount:
    framework: str
    level: int
    sponsor: str
    outcome: str
    n: int


@dataclass(frozen=True)
class Spread:
    """n, median and p90 (nearest rank) of a duration, in seconds."""

    n: int = 0
    median: float | None = None
    p90: float | None = None


def p90_rank(n: int) -> int:
    """The 1-based nearest rank of the 90th percentile of n values (n >= 1)."""
    return max(1, math.ceil(0.9 * n))


def spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread()
    ordered = sorted(values)
    return Spread(len(ordered), statistics.median(ordered), ordered[p90_rank(len(ordered)) - 1])


@dataclass(frozen=True)
class Summary:
    requests: int
    groups: tuple[Group, ...]
    money: tuple[Money, ...]  # by currency
    outcomes: tuple[OutcomeCount, ...]
    spreads: Mapping[str, Spread]  # SPREADS name -> its spread (absent: no value)


def summarise(tracks: Sequence[Track]) -> Summary:
    """The summary of ``tracks`` (the figures' inputs), in Python: what the SQL of the store computes."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    money: dict[str, list[Any]] = {}
    outcomes: dict[tuple[str, int, str, str], int] = {}
    durations: dict[str, list[float]] = {}
    for t in tracks:
        c = columns(t)
        key = (c["month"], c["path"], c["kind"], c["reached"], c["causes"], c["delivered_ckpt"], c["all_closed"])
        sums = groups.setdefault(key, [0] * (1 + len(COUNTERS)))
        sums[0] += 1
        for i, k in enumerate(COUNTERS, start=1):
            sums[i] += c[k]
        if t.roi_currency:
            row = money.setdefault(t.roi_currency, [0, 0.0, 0.0, 0.0])
            row[0] += 1
            row[1] += t.isolated_benefits
            row[2] += t.not_isolated_benefits
            row[3] += t.costs
        for o in t.outcomes:
            k4 = (o.framework, o.level, t.sponsor, o.outcome)
            outcomes[k4] = outcomes.get(k4, 0) + 1
        for name in SPREADS:
            value = c.get(name, c.get(f"t_{name}"))
            if value is not None:
                durations.setdefault(name, []).append(value)
    return Summary(
        requests=len(tracks),
        groups=tuple(group(key, sums) for key, sums in groups.items()),
        money=tuple(Money(cur, *row) for cur, row in money.items()),
        outcomes=tuple(OutcomeCount(*k, n) for k, n in outcomes.items()),
        spreads={name: spread(v) for name, v in durations.items()})


def group(key: Sequence[Any], sums: Sequence[int]) -> Group:
    """A group from its key (month, path, kind, reached bits, causes bits, the two flags) and its sums
    (n, then COUNTERS)."""
    month, path, kind, reached, causes, delivered_ckpt, all_closed = key
    return Group(str(month or ""), str(path or ""), str(kind or ""), frozenset(names(int(reached), STAGE_BITS)),
                 tuple(sorted(names(int(causes), CAUSE_BITS))), bool(delivered_ckpt), bool(all_closed),
                 *(int(s or 0) for s in sums))
