"""Pipeline analytics from the audit history: what happened to each request, as one ``Track``.

Every figure of ``ldflow analytics`` (:mod:`states.analytics_figures`) is computed from tracks, and a
track is what the request's hash-chained events say, nothing read from its current document:

* :func:`walk` builds the tracks by walking the events in order (pure Python, the oracle);
* ``connectors/db/analytics.py`` builds the same tracks with SQL aggregates over ``audit_events``.

The two must agree to the field (``tests/integration/test_analytics_sql.py``). A request re-opened
counts once per stage it ever reached; the path (designed or redirected), the redirect's kind, the
diagnosed causes and the outcomes are its latest; times in a state add up every completed stay.
Pure: imports nothing but the lifecycle and the diagnosis vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from states.lifecycle import State

#: The cause checks and the answer that points at the cause (states/diagnosis.py: environment first).
CAUSES: Final[dict[str, str]] = {
    "expectations_clear": "no",
    "tools_adequate": "no",
    "process_adequate": "no",
    "consequences_aligned": "no",
    "simpler_way": "yes",
    "job_aid_possible": "yes",
    "could_do_if_life_depended": "no",
}
STAGES: Final[tuple[State, ...]] = tuple(s for s in State if s != State.RECEIVED)
TRANSITION_TYPES: Final = frozenset({"diagnosed", "redirected", "designed", "delivered", "measured", "acknowledged",
                                     "declined", "cancelled", "reopened"})
CHECKPOINT_TYPES: Final[dict[str, str]] = {  # event type -> the Track counter it feeds
    "checkpoint_scheduled": "scheduled", "survey_sent": "sent", "result_recorded": "answered",
    "checkpoint_missed": "missed", "checkpoint_flagged": "flagged", "checkpoint_superseded": "superseded",
}
CLOSING_TYPES: Final = frozenset({"result_recorded", "checkpoint_missed", "checkpoint_superseded"})


class Event(Protocol):
    """What a stored audit row gives (``connectors.ports.AuditRecord`` has these)."""

    @property
    def seq(self) -> int: ...
    @property
    def request_id(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def to_state(self) -> str | None: ...
    @property
    def at(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ItemOutcome:
    """One plan item's verdict in the request's latest ``measured`` event, with its level from the plan."""

    item: str
    framework: str
    level: int
    outcome: str


@dataclass(frozen=True)
class Track:
    """One request's history, summarised: the unit every analytics figure is computed from."""

    request_id: int
    received_at: str  # the submitted event's time (ISO 8601, UTC)
    sponsor: str  # lower-cased; the intake's, as amended
    state: str  # where it stands now
    reached: frozenset[str]  # every stage (state after received) it ever entered
    path: str = ""  # "design" or "redirect": the latest of the two
    redirect_kind: str = ""  # the latest redirect's kind
    causes: tuple[str, ...] = ()  # the latest diagnosis's causes (CAUSES), sorted
    time_in: tuple[tuple[str, float], ...] = ()  # (state, seconds) of completed stays, summed; sorted
    plan_approved_at: str = ""  # the earliest approval of a plan
    delivered_at: str = ""  # the latest delivery
    last_result_at: str = ""
    scheduled: int = 0  # distinct checkpoints, by what happened to them
    sent: int = 0
    answered: int = 0
    missed: int = 0
    flagged: int = 0  # too late to send: needs review
    superseded: int = 0
    closed: int = 0  # answered, missed or superseded (distinct)
    outcomes: tuple[ItemOutcome, ...] = ()  # sorted by item
    roi_currency: str = ""
    isolated_benefits: float = 0.0
    not_isolated_benefits: float = 0.0
    costs: float = 0.0

    @property
    def open_checkpoints(self) -> int:
        return self.scheduled - self.closed


def track_json(t: Track) -> dict[str, Any]:
    """A track as JSON data (the cache's rows); :func:`track_from` reads it back."""
    data = dataclasses.asdict(t)
    data["reached"] = sorted(t.reached)
    return data


def track_from(data: Mapping[str, Any]) -> Track:
    fields = dict(data)
    fields["reached"] = frozenset(fields["reached"])
    fields["causes"] = tuple(fields["causes"])
    fields["time_in"] = tuple((str(s), float(v)) for s, v in fields["time_in"])
    fields["outcomes"] = tuple(ItemOutcome(**o) for o in fields["outcomes"])
    return Track(**fields)


def seconds(start: str, end: str) -> float:
    """Seconds from ``start`` to ``end`` (ISO 8601 texts), to the millisecond."""
    return round((_time(end) - _time(start)).total_seconds(), 3)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def causes_of(diagnosis: Mapping[str, Any]) -> tuple[str, ...]:
    checks = diagnosis.get("cause_checks") or {}
    return tuple(sorted(c for c, bad in CAUSES.items() if (checks.get(c) or {}).get("answer") == bad))


def plan_levels(plan: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """item id -> (framework, level) of a plan payload (items without an id numbered as the model does)."""
    return {str(item.get("id") or f"m{i}"): (str(item.get("framework", "")), int(item.get("level", 0)))
            for i, item in enumerate(plan.get("items") or [], start=1)}


def outcomes_of(results: Iterable[Mapping[str, Any]],
                levels: Mapping[str, tuple[str, int]]) -> tuple[ItemOutcome, ...]:
    found = []
    for r in results:
        item = str(r.get("item_id", ""))
        framework, level = levels.get(item, ("", 0))
        found.append(ItemOutcome(item, framework, level, str(r.get("outcome", "no_data"))))
    return tuple(sorted(found, key=lambda o: o.item))


@dataclass
class _Walker:
    request_id: int
    received_at: str = ""
    sponsor: str = ""
    state: str = State.RECEIVED.value
    reached: set[str] = field(default_factory=set)
    path: tuple[int, str] = (0, "")
    kind: str = ""
    causes: tuple[str, ...] = ()
    entered: str = ""  # when the current stay began
    time_in: dict[str, float] = field(default_factory=dict)
    plan_approved_at: str = ""
    delivered_at: str = ""
    last_result_at: str = ""
    checkpoints: dict[str, set[str]] = field(default_factory=dict)
    levels: dict[str, tuple[str, int]] = field(default_factory=dict)
    measured: dict[str, Any] | None = None

    def see(self, e: Event) -> None:  # noqa: C901 - one branch per event type that counts
        p = e.payload
        if e.type == "submitted":
            self.received_at = min(self.received_at or e.at, e.at)
            self.entered = self.entered or e.at
            self.sponsor = str(((p.get("intake") or {}).get("sponsor") or {}).get("email", "")).lower()
        elif e.type in TRANSITION_TYPES and e.to_state:
            if self.entered:
                self.time_in[self.state] = self.time_in.get(self.state, 0.0) + seconds(self.entered, e.at)
            self.state, self.entered = e.to_state, e.at
            if e.to_state != State.RECEIVED.value:
                self.reached.add(e.to_state)
        if e.type in ("diagnosed", "rediagnosed"):
            self.causes = causes_of(p.get("diagnosis") or {})
        elif e.type == "designed":
            self.path = (e.seq, "design")
        elif e.type == "redirected":
            self.path, self.kind = (e.seq, "redirect"), str((p.get("redirect") or {}).get("kind") or "")
        elif e.type == "delivered":
            self.delivered_at = max(self.delivered_at, e.at)
        elif e.type == "plan_approved":
            self.plan_approved_at = min(self.plan_approved_at or e.at, e.at)
        elif e.type in ("plan_drafted", "plan_revised"):
            self.levels.update(plan_levels(p.get("plan") or {}))
        elif e.type == "measured":
            self.measured = dict(p)
        elif e.type == "amended" and "sponsor" in (p.get("changes") or {}):
            after = p["changes"]["sponsor"].get("after") or {}
            self.sponsor = str(after.get("email", self.sponsor)).lower()
        if e.type == "result_recorded":
            self.last_result_at = max(self.last_result_at, e.at)
        counter = CHECKPOINT_TYPES.get(e.type)
        if counter is not None:
            key = str(p.get("checkpoint", ""))
            self.checkpoints.setdefault(counter, set()).add(key)
            if e.type in CLOSING_TYPES:
                self.checkpoints.setdefault("closed", set()).add(key)

    def track(self) -> Track:
        n = {k: len(v) for k, v in self.checkpoints.items()}
        roi = (self.measured or {}).get("roi") or {}
        return Track(
            request_id=self.request_id, received_at=self.received_at, sponsor=self.sponsor, state=self.state,
            reached=frozenset(self.reached), path=self.path[1], redirect_kind=self.kind if self.path[1] == "redirect"
            else "", causes=self.causes, time_in=tuple(sorted((k, round(v, 1)) for k, v in self.time_in.items())),
            plan_approved_at=self.plan_approved_at, delivered_at=self.delivered_at,
            last_result_at=self.last_result_at, scheduled=n.get("scheduled", 0), sent=n.get("sent", 0),
            answered=n.get("answered", 0), missed=n.get("missed", 0), flagged=n.get("flagged", 0),
            superseded=n.get("superseded", 0), closed=n.get("closed", 0),
            outcomes=outcomes_of((self.measured or {}).get("results") or [], self.levels),
            roi_currency=str(roi.get("currency") or ""),
            isolated_benefits=_money(roi.get("isolated_benefits")),
            not_isolated_benefits=_money(roi.get("not_isolated_benefits")), costs=_money(roi.get("costs")))


def _money(value: Any) -> float:
    return round(float(value), 2) if value is not None else 0.0


def walk(events: Iterable[Event]) -> list[Track]:
    """The tracks of every request in ``events`` (any order of requests; each request's in seq order)."""
    walkers: dict[int, _Walker] = {}
    for e in sorted(events, key=lambda e: e.seq):
        walker = walkers.get(e.request_id)
        if walker is None:
            walker = walkers[e.request_id] = _Walker(e.request_id)
        walker.see(e)
    return [walkers[k].track() for k in sorted(walkers)]

