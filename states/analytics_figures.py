"""The figures of ``ldflow analytics`` and the dashboard, from tracks (:mod:`states.analytics`). Pure.

Funnel (requests that ever reached each stage, and the conversion from the stage before), the redirect
rate (by kind, by diagnosed cause), cycle times (median and p90 of the days spent in each state, time to
plan approval, delivery to the last result), the trend by month of receipt, measurement (checkpoint
response rate: answered of answered or missed; missed, needs review, delivered requests with every
checkpoint closed), outcomes per level and per sponsor, and the ROI portfolio (isolated benefits apart
from those not isolated).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from states.analytics import CAUSES, Track, seconds
from states.evidence import Outcome
from states.lifecycle import State
from states.models import RedirectKind

DAY: Final = 86400.0
OUTCOMES: Final[tuple[str, ...]] = tuple(o.value for o in Outcome)
PATHS: Final[tuple[str, ...]] = ("design", "redirect")
TYPES: Final[tuple[str, ...]] = (*PATHS, *(k.value for k in RedirectKind))
#: Where SLA breaches will go: SLA policies are computed elsewhere (issue 11 item 2); never filled in here.
# the SLA section without a policy to read (flows.analytics.sla_section computes it with one)
SLA_PENDING: Final = {"status": "not computed", "note": "no SLA policy was given for these figures"}
# the funnel: each stage with the stage(s) its conversion is measured against
FUNNEL: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("received", ()), ("diagnosed", ("received",)), ("redirected", ("diagnosed",)), ("designed", ("diagnosed",)),
    ("delivered", ("redirected", "designed")), ("measured", ("delivered",)), ("acknowledged", ("measured",)),
    ("declined", ("received",)), ("cancelled", ("received",)),
)


@dataclass(frozen=True)
class Filter:
    """Which requests the figures cover: received between the dates (inclusive), and the rest."""

    date_from: date | None = None
    date_to: date | None = None
    sponsor: str = ""
    type: str = ""  # design, redirect, or a redirect kind
    owner_ids: frozenset[int] | None = None  # the requests the owner filter lets through (None: no filter)
    owner: str = ""

    def keeps(self, t: Track) -> bool:
        day = t.received_at[:10]
        if self.date_from is not None and day < self.date_from.isoformat():
            return False
        if self.date_to is not None and day > self.date_to.isoformat():
            return False
        if self.sponsor and t.sponsor != self.sponsor:
            return False
        if self.type and self.type not in (t.path, t.redirect_kind):
            return False
        return self.owner_ids is None or t.request_id in self.owner_ids

    def as_dict(self) -> dict[str, str]:
        return {"from": self.date_from.isoformat() if self.date_from else "",
                "to": self.date_to.isoformat() if self.date_to else "",
                "sponsor": self.sponsor, "owner": self.owner, "type": self.type}


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def median_p90(values: Sequence[float]) -> dict[str, Any]:
    """n, median and p90 (nearest rank) of ``values``, in days to 0.01."""
    if not values:
        return {"n": 0, "median": None, "p90": None}
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {"n": len(ordered), "median": round(statistics.median(ordered) / DAY, 2), "p90": round(p90 / DAY, 2)}


def funnel(tracks: Sequence[Track]) -> list[dict[str, Any]]:
    counts = {"received": len(tracks)}
    for stage in (s.value for s in State if s != State.RECEIVED):
        counts[stage] = sum(1 for t in tracks if stage in t.reached)
    either = sum(1 for t in tracks if t.reached & {"redirected", "designed"})
    rows = []
    for stage, before in FUNNEL:
        base = either if len(before) > 1 else (counts[before[0]] if before else 0)
        rows.append({"stage": stage, "count": counts[stage], "from": "/".join(before),
                     "conversion": rate(counts[stage], base) if before else None})
    return rows


def redirects(tracks: Sequence[Track]) -> dict[str, Any]:
    routed = [t for t in tracks if t.path]
    redirected = [t for t in routed if t.path == "redirect"]
    kinds: dict[str, int] = {}
    for t in redirected:
        kinds[t.redirect_kind or "unstated"] = kinds.get(t.redirect_kind or "unstated", 0) + 1
    causes = []
    for cause in CAUSES:
        with_cause = [t for t in routed if cause in t.causes]
        n = sum(1 for t in with_cause if t.path == "redirect")
        if with_cause:
            causes.append({"cause": cause, "requests": len(with_cause), "redirected": n,
                           "rate": rate(n, len(with_cause))})
    return {"routed": len(routed), "redirected": len(redirected), "rate": rate(len(redirected), len(routed)),
            "by_kind": [{"kind": k, "count": n, "share": rate(n, len(redirected))}
                        for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))],
            "by_cause": causes}


def cycle(tracks: Sequence[Track]) -> dict[str, Any]:
    per_state: dict[str, list[float]] = {}
    for t in tracks:
        for state, secs in t.time_in:
            per_state.setdefault(state, []).append(secs)
    approval = [seconds(t.received_at, t.plan_approved_at) for t in tracks if t.plan_approved_at]
    to_result = [seconds(t.delivered_at, t.last_result_at) for t in tracks
                 if t.delivered_at and t.last_result_at and t.last_result_at >= t.delivered_at]
    return {"per_state": [{"state": s.value, **median_p90(per_state.get(s.value, []))} for s in State
                          if s.value in per_state],
            "plan_approval": median_p90(approval), "delivery_to_last_result": median_p90(to_result)}


def trend(tracks: Sequence[Track]) -> list[dict[str, Any]]:
    months: dict[str, list[Track]] = {}
    for t in tracks:
        months.setdefault(t.received_at[:7], []).append(t)
    rows = []
    for month in sorted(months):
        group = months[month]
        row: dict[str, Any] = {"month": month, "received": len(group)}
        for stage in ("redirected", "designed", "delivered", "measured", "declined", "cancelled"):
            row[stage] = sum(1 for t in group if stage in t.reached)
        routed = row["redirected"] + row["designed"]
        row["redirect_rate"] = rate(sum(1 for t in group if t.path == "redirect"),
                                    sum(1 for t in group if t.path)) if routed else None
        rows.append(row)
    return rows


def measurement(tracks: Sequence[Track]) -> dict[str, Any]:
    sent = sum(t.sent for t in tracks)
    answered = sum(t.answered for t in tracks)
    missed = sum(t.missed for t in tracks)
    # delivered requests still on their way to (or past) measurement: a cancellation closes its checkpoints
    delivered = [t for t in tracks if "delivered" in t.reached and t.scheduled and t.state not in _CLOSED_EARLY]
    closed = sum(1 for t in delivered if t.open_checkpoints == 0)
    return {"scheduled": sum(t.scheduled for t in tracks), "sent": sent, "answered": answered,
            "response_rate": rate(answered, answered + missed), "missed": missed,
            "needs_review": sum(t.flagged for t in tracks), "superseded": sum(t.superseded for t in tracks),
            "delivered_with_checkpoints": len(delivered), "all_closed": closed,
            "all_closed_share": rate(closed, len(delivered))}


_CLOSED_EARLY: Final = frozenset({State.CANCELLED.value, State.DECLINED.value})


def _counts() -> dict[str, int]:
    return dict.fromkeys(OUTCOMES, 0)


def outcomes(tracks: Sequence[Track]) -> dict[str, Any]:
    levels: dict[tuple[str, int], dict[str, int]] = {}
    sponsors: dict[str, dict[str, int]] = {}
    for t in tracks:
        for o in t.outcomes:
            levels.setdefault((o.framework, o.level), _counts())[o.outcome] += 1
            sponsors.setdefault(t.sponsor, _counts())[o.outcome] += 1
    return {"by_level": [{"framework": f, "level": lv, **c} for (f, lv), c in sorted(levels.items())],
            "by_sponsor": [{"sponsor": s, **c} for s, c in sorted(sponsors.items())]}


def roi(tracks: Sequence[Track]) -> list[dict[str, Any]]:
    """The ROI portfolio per currency: isolated benefits and those not isolated, shown apart."""
    by: dict[str, dict[str, Any]] = {}
    for t in tracks:
        if not t.roi_currency:
            continue
        row = by.setdefault(t.roi_currency, {"currency": t.roi_currency, "requests": 0, "isolated_benefits": 0.0,
                                             "not_isolated_benefits": 0.0, "costs": 0.0})
        row["requests"] += 1
        row["isolated_benefits"] += t.isolated_benefits
        row["not_isolated_benefits"] += t.not_isolated_benefits
        row["costs"] += t.costs
    out = []
    for row in (by[c] for c in sorted(by)):
        for k in ("isolated_benefits", "not_isolated_benefits", "costs"):
            row[k] = round(row[k], 2)
        costs = row["costs"]
        row["isolated_roi_percent"] = round((row["isolated_benefits"] - costs) / costs * 100, 1) if costs else None
        out.append(row)
    return out


def figures(tracks: Iterable[Track], flt: Filter = Filter()) -> dict[str, Any]:
    """Every figure for the requests ``flt`` keeps."""
    kept = [t for t in tracks if flt.keeps(t)]
    return {"filter": flt.as_dict(), "requests": len(kept), "funnel": funnel(kept), "redirects": redirects(kept),
            "cycle_days": cycle(kept), "trend": trend(kept), "measurement": measurement(kept),
            "outcomes": outcomes(kept), "roi": roi(kept), "sla_breaches": SLA_PENDING}
