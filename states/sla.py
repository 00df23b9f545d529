"""SLA policies and their breaches, computed from a request's history (pure).

A policy names clocks (``slas``): each starts at one of its ``start`` events, stops at one of its
``stop`` events and allows ``within`` business days (or calendar ``days``) on a
:class:`~states.business_calendar.BusinessCalendar`. A clock ``per: checkpoint`` runs once per
checkpoint (the events' ``checkpoint`` field; a stop event without one, e.g. ``cancelled``, stops
them all). With ``pause_while_waiting_on_sponsor`` the clock stands still while a plan waits for
the sponsor (from ``plan_drafted``/``plan_revised`` until it is approved, changes are asked for, or
the request is declined or cancelled).

:func:`breaches` walks the history with the policy *as it is now*, so a changed policy recomputes
the past. It returns every clock that breached (running or stopped) and every running clock past
the near-breach share of its allowance. Nothing here reads a file: ``flows/sla.py`` loads the
policy (``LDFLOW_SLA_POLICY``) and the holidays file, and feeds it the stored history.

The stored history reaches the walk as a request's **clock summary**: :func:`clock_lines` writes, for
each event the store appends, one line of the only facts any clock starts, stops or pauses on (its
type, time and checkpoint key), and :func:`read_lines` reads them back as the same entries
:func:`entries` makes of the full audit rows. The summary is policy-independent (every event is
there, the payloads are not), so a changed policy still recomputes the past; the store keeps it on
the request's row in the write's transaction. :func:`owner_names` is the owners' names for the
digest's greeting, from the document, kept there too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import Field, field_validator

from states.business_calendar import WEEKDAYS, BusinessCalendar
from states.events import EVENTS
from states.fields import Line, Model

#: Where a plan starts and stops waiting for the sponsor (the pause of a clock that allows it).
WAITING_STARTS: Final = frozenset({"plan_drafted", "plan_revised"})
WAITING_ENDS: Final = frozenset({"plan_approved", "plan_revision_approved", "plan_changes_requested",
                                 "declined", "cancelled"})


class SlaUnit(StrEnum):
    BUSINESS_DAYS = "business_days"
    DAYS = "days"


class Sla(Model):
    """One clock of the policy."""

    title: Line = ""
    start: list[str] = Field(min_length=1)
    stop: list[str] = Field(min_length=1)
    within: float = Field(gt=0, le=3650)
    unit: SlaUnit = SlaUnit.BUSINESS_DAYS
    per: Literal["request", "checkpoint"] = "request"
    pause_while_waiting_on_sponsor: bool = False

    @field_validator("start", "stop")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in EVENTS]
        if unknown:
            raise ValueError(f"unknown event(s) {', '.join(unknown)}; known: {', '.join(sorted(EVENTS))}")
        return value


class SlaPolicy(Model):
    """The policy: the business calendar's words and the clocks (``LDFLOW_SLA_POLICY``, a YAML file)."""

    timezone: Line = "UTC"
    weekdays: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    holidays_file: Line = ""
    near_breach_percent: float = Field(default=80, gt=0, lt=100)
    slas: dict[str, Sla] = Field(min_length=1)


#: The built-in policy: diagnose within 5 business days of receipt, the sponsor's approval within 10,
#: a design or redirect within 20 of the diagnosis (paused while the plan waits for the sponsor), each
#: checkpoint's result within its 14-day response window.
DEFAULT_POLICY: Final[dict[str, Any]] = {
    "timezone": "UTC",
    "weekdays": list(WEEKDAYS[:5]),
    "near_breach_percent": 80,
    "slas": {
        "diagnose": {"title": "diagnosed within 5 business days of receipt", "start": ["submitted", "reopened"],
                     "stop": ["diagnosed", "declined", "cancelled"], "within": 5},
        "sponsor_approval": {"title": "plan approved by the sponsor within 10 business days",
                             "start": ["plan_drafted", "plan_revised"],
                             "stop": ["plan_approved", "plan_revision_approved", "declined", "cancelled"],
                             "within": 10},
        "design": {"title": "designed or redirected within 20 business days of the diagnosis (paused while "
                            "the plan waits for the sponsor)",
                   "start": ["diagnosed"], "stop": ["designed", "redirected", "declined", "cancelled"],
                   "within": 20, "pause_while_waiting_on_sponsor": True},
        "results": {"title": "each checkpoint's result within its 14-day response window",
                    "start": ["survey_sent"],
                    "stop": ["result_recorded", "survey_closed", "checkpoint_missed", "checkpoint_superseded",
                             "declined", "cancelled"],
                    "within": 14, "unit": "days", "per": "checkpoint"},
    },
}


@dataclass(frozen=True)
class Entry:
    """One event of a history, as the SLA walk needs it."""

    type: str
    at: datetime
    checkpoint: str = ""


@dataclass(frozen=True)
class Breach:
    """A clock that breached, or is running and close to it (``status``: ``breached`` or ``near``)."""

    request_id: int
    sla: str
    title: str
    status: Literal["breached", "near"]
    started_at: datetime
    stopped_at: datetime | None  # None: still running
    elapsed: float  # in the SLA's unit, pauses left out
    allowed: float
    unit: str
    due_at: datetime | None  # when a running clock runs out (None while paused or stopped)
    checkpoint: str = ""

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    def words(self) -> str:
        """``diagnose breached: 6.2 of 5 business days (since 2026-03-02)``."""
        unit = self.unit.replace("_", " ")
        what = f"{self.sla} {self.checkpoint}".strip()
        state = "breached" if self.status == "breached" else "near breach"
        tail = f"since {self.started_at:%Y-%m-%d}" if self.running else \
            f"{self.started_at:%Y-%m-%d} to {self.stopped_at:%Y-%m-%d}"
        due = f", due {self.due_at:%Y-%m-%d %H:%M} UTC" if self.due_at and self.status == "near" else ""
        return f"{what} {state}: {self.elapsed:.1f} of {self.allowed:g} {unit} ({tail}{due})"

    def as_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "sla": self.sla, "title": self.title, "status": self.status,
                "checkpoint": self.checkpoint, "started_at": self.started_at.isoformat(),
                "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
                "elapsed": round(self.elapsed, 3), "allowed": self.allowed, "unit": self.unit,
                "due_at": self.due_at.isoformat() if self.due_at else None, "running": self.running}


def entries(records: Iterable[Any]) -> list[Entry]:
    """History rows (anything with ``type``, ``at`` as ISO text or datetime, ``payload``) as entries."""
    found = []
    for r in records:
        at = r.at if isinstance(r.at, datetime) else datetime.fromisoformat(str(r.at).replace("Z", "+00:00"))
        payload = getattr(r, "payload", None) or {}
        found.append(Entry(r.type, at.astimezone(UTC), str(payload.get("checkpoint", "") or "")))
    return found


def clock_lines(events: Iterable[tuple[str, str, Any]]) -> str:
    """The summary lines of appended events, each ``(type, at as the audit row's ISO text, payload)``:
    one JSON array ``["type","at","checkpoint"]`` and a newline per event (appended text, in order)."""
    return "".join(json.dumps([t, at, str((payload or {}).get("checkpoint", "") or "")], separators=(",", ":")) + "\n"
                   for t, at, payload in events)


def read_lines(text: str) -> list[Entry]:
    """The entries of a clock summary written by :func:`clock_lines` (as :func:`entries` of the full rows)."""
    if not text:
        return []
    rows = json.loads("[" + text.rstrip("\n").replace("\n", ",") + "]")
    return [Entry(t, datetime.fromisoformat(at).astimezone(UTC), cp) for t, at, cp in rows]


def owner_names(request: Any) -> dict[str, str]:
    """Each owner's address (``states.card.owners``: the redirect's owner, the plan items' owners) and
    name, as the request has them: who the attention digest greets."""
    people = []
    record = getattr(request, "redirect_record", None)
    if record is not None and record.owner is not None:
        people.append(record.owner)
    if request.plan is not None:
        people += [item.owner for item in request.plan.items]
    found: dict[str, str] = {}
    for p in people:
        found.setdefault(p.email.lower(), p.name)
    return found


def _waiting(history: Sequence[Entry]) -> list[tuple[datetime, datetime | None]]:
    """The intervals a plan waited for the sponsor."""
    spans: list[tuple[datetime, datetime | None]] = []
    since: datetime | None = None
    for e in history:
        if e.type in WAITING_STARTS and since is None:
            since = e.at
        elif e.type in WAITING_ENDS and since is not None:
            spans.append((since, e.at))
            since = None
    if since is not None:
        spans.append((since, None))
    return spans


def _measure(sla: Sla, cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    if sla.unit == SlaUnit.DAYS:
        return max(0.0, (end - start).total_seconds() / 86400)
    return cal.business_days(start, end)


def _elapsed(sla: Sla, cal: BusinessCalendar, start: datetime, end: datetime,
             pauses: list[tuple[datetime, datetime | None]]) -> tuple[float, bool]:
    """Time on the clock from ``start`` to ``end`` without the pauses, and whether it is paused at ``end``."""
    total = _measure(sla, cal, start, end)
    paused_now = False
    for lo, hi in pauses:
        hi_at = end if hi is None else min(hi, end)
        lo_at = max(lo, start)
        if hi_at > lo_at:
            total -= _measure(sla, cal, lo_at, hi_at)
        paused_now = paused_now or (lo <= end and (hi is None or hi > end))
    return max(0.0, total), paused_now


def _clocks(sla: Sla, history: Sequence[Entry]) -> list[tuple[str, datetime, datetime | None]]:
    """(checkpoint, started, stopped) of every run of the clock, in the order they started."""
    runs: list[tuple[str, datetime, datetime | None]] = []
    open_: dict[str, datetime] = {}
    per_checkpoint = sla.per == "checkpoint"
    for e in history:
        key = e.checkpoint if per_checkpoint else ""
        if e.type in sla.stop:
            keys = [key] if not per_checkpoint or e.checkpoint else list(open_)
            for k in keys:
                if k in open_:
                    runs.append((k, open_.pop(k), e.at))
        if e.type in sla.start and (not per_checkpoint or e.checkpoint) and key not in open_:
            open_[key] = e.at
    runs += [(k, started, None) for k, started in open_.items()]
    return sorted(runs, key=lambda r: r[1])


@dataclass(frozen=True)
class Run:
    """One run of one clock of a policy over a history (time plays no part): the ``index``-th in the
    order :func:`breaches` reports them; ``stopped`` None while it runs; ``pauses`` the waits it leaves out."""

    index: int
    name: str
    checkpoint: str
    started: datetime
    stopped: datetime | None
    pauses: tuple[tuple[datetime, datetime | None], ...] = ()


def runs(history: Sequence[Entry], policy: SlaPolicy) -> list[Run]:
    """Every run of every clock of ``policy`` over ``history``, per SLA in the policy's order, oldest start first."""
    history = sorted(history, key=lambda e: e.at)
    waiting = tuple(_waiting(history))
    found: list[Run] = []
    for name, sla in policy.slas.items():
        pauses = waiting if sla.pause_while_waiting_on_sponsor else ()
        for checkpoint, started, stopped in _clocks(sla, history):
            found.append(Run(len(found), name, checkpoint, started, stopped, pauses))
    return found


def _elapsed_of(run: Run, sla: Sla, cal: BusinessCalendar, now: datetime) -> tuple[float, bool]:
    end = run.stopped or now
    return _elapsed(sla, cal, run.started, end, [p for p in run.pauses if p[0] <= end])


def judge(request_id: int, run: Run, policy: SlaPolicy, cal: BusinessCalendar, now: datetime) -> Breach | None:
    """The run's breach or near-breach at ``now`` (aware, UTC), None when it is neither; a stopped run's does
    not depend on ``now``."""
    sla = policy.slas[run.name]
    elapsed, paused = _elapsed_of(run, sla, cal, now)
    status: Literal["breached", "near"] | None = None
    if elapsed > sla.within:
        status = "breached"
    elif run.stopped is None and elapsed >= policy.near_breach_percent / 100 * sla.within:
        status = "near"
    if status is None:
        return None
    due = None
    if run.stopped is None and not paused and elapsed <= sla.within:
        left = sla.within - elapsed
        due = now + timedelta(days=left) if sla.unit == SlaUnit.DAYS else cal.add_business_days(now, left)
    return Breach(request_id, run.name, sla.title or run.name, status, run.started, run.stopped, elapsed,
                  sla.within, sla.unit.value, due, run.checkpoint)


def breaches(request_id: int, history: Sequence[Entry], policy: SlaPolicy, cal: BusinessCalendar,
             now: datetime) -> list[Breach]:
    """Every breached clock of ``history`` under ``policy``, and every running one at or past the
    near-breach share of its allowance, oldest start first."""
    now = now.astimezone(UTC)
    found = (judge(request_id, run, policy, cal, now) for run in runs(history, policy))
    return [b for b in found if b is not None]


#: The least real time in which a clock gains one day: a business day is a local day, 23 hours on the
#: day of a DST change; a calendar day 24 hours.
_FASTEST_DAY: Final = timedelta(hours=23)
_MARGIN: Final = timedelta(minutes=1)


def quiet_until(running: Sequence[Run], policy: SlaPolicy, cal: BusinessCalendar, now: datetime) -> datetime | None:
    """Until when (at least) none of the ``running`` runs is near its breach, so :func:`breaches` gives only
    the stopped runs' breaches, as at ``now``: ``None`` when none is running (the outcome does not depend
    on the time), ``now`` when one already is near or past it, or is paused at the near share or past it.
    A lower bound: each clock gains a day in no less than 23 hours, less a minute; nothing pauses a
    running clock without a new event in the history. Once near, a run stays near or breached (its time
    only grows) until the history changes."""
    now = now.astimezone(UTC)
    near = policy.near_breach_percent / 100
    found: datetime | None = None
    for run in running:
        sla = policy.slas[run.name]
        elapsed, paused = _elapsed_of(run, sla, cal, now)
        left = near * sla.within - elapsed
        if left <= 0 or elapsed > sla.within:
            return now
        at = datetime.max.replace(tzinfo=UTC) if paused else now + _FASTEST_DAY * left - _MARGIN
        found = at if found is None else min(found, at)
    return found
