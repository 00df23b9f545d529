"""The figures of ``ldflow analytics`` and the dashboard, from tracks (:mod:`states.analytics`). Pure.

Funnel (requests that ever reached each stage, and the conversion from the stage before), the redirect
rate (by kind, by diagnosed cause), cycle times (median and p90 of the days spent in each state, time to
plan approval, delivery to the last result), the trend by month of receipt, measurement (checkpoint
response rate: answered of answered or missed; missed, needs review, delivered requests with every
checkpoint closed), outcomes per level and per sponsor, and the ROI portfolio (isolated benefits apart
from those not isolated). Computed from a :class:`states.analytics_summary.Summary` of the requests kept
(``figures_of``: what the store's SQL gives), or from tracks (``figures``: summarised here first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from states.analytics import CAUSES, Track
from states.analytics_summary import Group, Spread, Summary, spread, summarise
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
    return days(spread(values))


def days(s: Spread) -> dict[str, Any]:
    if not s.n or s.median is None or s.p90 is None:
        return {"n": 0, "median": None, "p90": None}
    return {"n": s.n, "median": round(s.median / DAY, 2), "p90": round(s.p90 / DAY, 2)}


def funnel(s: Summary) -> list[dict[str, Any]]:
    counts = {"received": s.requests}
    for stage in (st.value for st in State if st != State.RECEIVED):
        counts[stage] = sum(g.n for g in s.groups if stage in g.reached)
    either = sum(g.n for g in s.groups if g.reached & {"redirected", "designed"})
    rows = []
    for stage, before in FUNNEL:
        base = either if len(before) > 1 else (counts[before[0]] if before else 0)
        rows.append({"stage": stage, "count": counts[stage], "from": "/".join(before),
                     "conversion": rate(counts[stage], base) if before else None})
    return rows


def redirects(s: Summary) -> dict[str, Any]:
    routed = [g for g in s.groups if g.path]
    redirected = [g for g in routed if g.path == "redirect"]
    n_routed, n_redirected = sum(g.n for g in routed), sum(g.n for g in redirected)
    kinds: dict[str, int] = {}
    for g in redirected:
        kinds[g.kind or "unstated"] = kinds.get(g.kind or "unstated", 0) + g.n
    causes = []
    for cause in CAUSES:
        with_cause = sum(g.n for g in routed if cause in g.causes)
        n = sum(g.n for g in routed if cause in g.causes and g.path == "redirect")
        if with_cause:
            causes.append({"cause": cause, "requests": with_cause, "redirected": n, "rate": rate(n, with_cause)})
    return {"routed": n_routed, "redirected": n_redirected, "rate": rate(n_redirected, n_routed),
            "by_kind": [{"kind": k, "count": n, "share": rate(n, n_redirected)}
                        for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))],
            "by_cause": causes}


def cycle(s: Summary) -> dict[str, Any]:
    return {"per_state": [{"state": st.value, **days(s.spreads[st.value])} for st in State
                          if s.spreads.get(st.value, Spread()).n],
            "plan_approval": days(s.spreads.get("plan_approval", Spread())),
            "delivery_to_last_result": days(s.spreads.get("delivery_to_last_result", Spread()))}


def trend(s: Summary) -> list[dict[str, Any]]:
    months: dict[str, list[Group]] = {}
    for g in s.groups:
        months.setdefault(g.month, []).append(g)
    rows = []
    for month in sorted(months):
        group = months[month]
        row: dict[str, Any] = {"month": month, "received": sum(g.n for g in group)}
        for stage in ("redirected", "designed", "delivered", "measured", "declined", "cancelled"):
            row[stage] = sum(g.n for g in group if stage in g.reached)
        routed = row["redirected"] + row["designed"]
        row["redirect_rate"] = rate(sum(g.n for g in group if g.path == "redirect"),
                                    sum(g.n for g in group if g.path)) if routed else None
        rows.append(row)
    return rows


def measurement(s: Summary) -> dict[str, Any]:
    def total(k: str) -> int:
        return sum(getattr(g, k) for g in s.groups)

    answered, missed = total("answered"), total("missed")
    delivered = sum(g.n for g in s.groups if g.delivered_ckpt)
    closed = sum(g.n for g in s.groups if g.delivered_ckpt and g.all_closed)
    return {"scheduled": total("scheduled"), "sent": total("sent"), "answered": answered,
            "response_rate": rate(answered, answered + missed), "missed": missed,
            "needs_review": total("flagged"), "superseded": total("superseded"),
            "delivered_with_checkpoints": delivered, "all_closed": closed,
            "all_closed_share": rate(closed, delivered)}


def _counts() -> dict[str, int]:
    return dict.fromkeys(OUTCOMES, 0)


def outcomes(s: Summary) -> dict[str, Any]:
    levels: dict[tuple[str, int], dict[str, int]] = {}
    sponsors: dict[str, dict[str, int]] = {}
    for o in s.outcomes:
        levels.setdefault((o.framework, o.level), _counts())[o.outcome] += o.n
        sponsors.setdefault(o.sponsor, _counts())[o.outcome] += o.n
    return {"by_level": [{"framework": f, "level": lv, **c} for (f, lv), c in sorted(levels.items())],
            "by_sponsor": [{"sponsor": sp, **c} for sp, c in sorted(sponsors.items())]}


def roi(s: Summary) -> list[dict[str, Any]]:
    """The ROI portfolio per currency: isolated benefits and those not isolated, shown apart."""
    out = []
    for m in sorted(s.money, key=lambda m: m.currency):
        row: dict[str, Any] = {"currency": m.currency, "requests": m.requests,
                               "isolated_benefits": round(m.isolated, 2),
                               "not_isolated_benefits": round(m.not_isolated, 2), "costs": round(m.costs, 2)}
        costs = row["costs"]
        row["isolated_roi_percent"] = round((row["isolated_benefits"] - costs) / costs * 100, 1) if costs else None
        out.append(row)
    return out


def figures_of(s: Summary, flt: Filter = Filter()) -> dict[str, Any]:
    """Every figure from the summary of the requests ``flt`` kept."""
    return {"filter": flt.as_dict(), "requests": s.requests, "funnel": funnel(s), "redirects": redirects(s),
            "cycle_days": cycle(s), "trend": trend(s), "measurement": measurement(s),
            "outcomes": outcomes(s), "roi": roi(s), "sla_breaches": SLA_PENDING}


def figures(tracks: Iterable[Track], flt: Filter = Filter()) -> dict[str, Any]:
    """Every figure for the requests ``flt`` keeps."""
    return figures_of(summarise([t for t in tracks if flt.keeps(t)]), flt)
