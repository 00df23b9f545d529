"""The SLA policy in force (``LDFLOW_SLA_POLICY`` or the built-in one) and the breaches of stored requests.

:func:`load_policy` reads the policy file and its holidays file through :mod:`connectors.loader`
(bad input: ``InvalidInput`` naming the field, exit 2); :func:`request_breaches` walks one request's
stored history with :func:`states.sla.breaches`; :func:`clocks` the same for many requests at once,
from the clock summaries the store keeps (no document, no history); :func:`due` and :func:`section`
only for the requests whose running clocks are past their quiet time (``ldflow attention``, the
board's filter, the analytics section; the rest answered by the store's narrow columns). Nothing about
a policy is stored as a rule: the walks are cached in this process and in the store per chain head and
policy digest, so a changed policy (or holidays file) recomputes every past clock on the next read.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.loader import load_file
from states import sla
from states.business_calendar import BusinessCalendar, calendar, parse_holidays
from states.errors import FieldError, InvalidInput, LdflowError
from states.lifecycle import NON_TERMINAL
from states.validation import parse

if TYPE_CHECKING:
    from connectors.ports import AuditRecord, ClockSummary, DueClock, RequestStore
    from flows.settings import Settings
    from states.analytics_figures import Filter

SETTING = "LDFLOW_SLA_POLICY"
_OPEN = frozenset(s.value for s in NON_TERMINAL)


@dataclass(frozen=True)
class Policy:
    """The policy and its calendar, ready for :func:`states.sla.breaches`."""

    rules: sla.SlaPolicy
    calendar: BusinessCalendar
    source: str = "built-in"


def _read(path: Path, field: str) -> dict[str, object]:
    if not path.is_file():
        raise InvalidInput([FieldError(field, f"no such file: {path}")])
    try:
        data, _ = load_file(str(path))
    except InvalidInput:
        raise
    except LdflowError as exc:
        raise InvalidInput([FieldError(field, str(exc))], str(path)) from None
    return data


def policy_from(data: dict[str, object], *, base: Path | None = None, source: str = "built-in") -> Policy:
    """The policy of a mapping (as the YAML file says it); ``holidays_file`` relative to ``base``."""
    rules = parse(sla.SlaPolicy, data, source)
    holidays = []
    if rules.holidays_file:
        path = Path(rules.holidays_file)
        if not path.is_absolute() and base is not None:
            path = base / path
        holidays = parse_holidays(_read(path, "holidays_file"), str(path))
    cal = calendar(rules.timezone, rules.weekdays, holidays, source=source)
    return Policy(rules, cal, source)


def load_policy(settings: Settings) -> Policy:
    """``LDFLOW_SLA_POLICY``'s policy, else the built-in one (:data:`states.sla.DEFAULT_POLICY`)."""
    if settings.sla_policy is None:
        return policy_from(sla.DEFAULT_POLICY)
    path = settings.sla_policy
    return policy_from(_read(path, SETTING), base=path.parent, source=str(path))


def policy_or_error(settings: Settings) -> tuple[Policy | None, str]:
    """The policy, or None and the error's words when the policy or its holidays file is invalid (the
    web pages then show the error and no SLA clocks; the CLI refuses with exit 2 instead)."""
    try:
        return load_policy(settings), ""
    except InvalidInput as exc:
        return None, str(exc)


def request_breaches(request_id: int, history: list[AuditRecord], policy: Policy, now: datetime) -> list[sla.Breach]:
    """The breaches and near-breaches of one request's stored history under ``policy``."""
    return sla.breaches(request_id, sla.entries(history), policy.rules, policy.calendar, now)


# --- the clocks of many requests, from their clock summaries -----------------------------------------

class Clocks:
    """One request's SLA clocks as read at a time: its running clocks' breaches and near-breaches then
    (``running``), the names of the SLAs its stopped clocks breached (``stopped``), its summary when it
    was read, and ``breaches``: all of them as ``states.sla.breaches`` over its whole history says (the
    same list; the stopped ones decoded only when asked); ``statuses``: the running ones' SLA and status
    only (a clock once breached stays breached until its history changes: judged only when not known)."""

    def __init__(self, request_id: int, outcome: _Outcome, policy: Policy, now: datetime,
                 summary: ClockSummary | DueClock | None) -> None:
        self.request_id, self.summary = request_id, summary
        self._outcome, self._policy, self._now = outcome, policy, now
        self._judged: list[tuple[int, sla.Breach]] | None = None

    @property
    def _running(self) -> list[tuple[int, sla.Breach]]:
        if self._judged is None:
            self._judged = self._outcome.running(self.request_id, self._policy, self._now)
        return self._judged

    @property
    def running(self) -> list[sla.Breach]:
        return [b for _, b in self._running]

    @property
    def statuses(self) -> list[tuple[str, str]]:
        """(SLA, ``breached`` or ``near``) of each running clock that is either, as ``running`` says."""
        if self._judged is not None:
            return [(b.sla, b.status) for b in self.running]
        return self._outcome.statuses(self.request_id, self._policy, self._now)

    @property
    def stopped(self) -> list[str]:
        return self._outcome.stopped_slas()

    @property
    def breaches(self) -> list[sla.Breach]:
        found = self._outcome.stopped(self.request_id) + self._running
        return [b for _, b in sorted(found, key=lambda x: x[0])]


@dataclass
class _Outcome:
    """A request's clocks under one policy at one chain head, as the store keeps it (``text``): until when
    its running runs are quiet, the SLAs its stopped runs breached, those breaches (they do not change
    with time) and the running runs (judged at each read once ``quiet`` has passed), each part decoded
    only when needed."""

    head: int
    text: str
    quiet: datetime | None  # states.sla.quiet_until: None when no clock runs
    _stopped: list[tuple[int, sla.Breach]] | None = None
    _running: list[tuple[Any, datetime | None, datetime | None]] | None = None  # each run (its JSON row until
    # needed) with its quiet time and the time it was found breached at (it stays so)

    _parts: list[str] | None = None

    def _part(self, n: int) -> Any:
        if not self.text:
            return []
        if self._parts is None:
            self._parts = self.text.split("\t")
        return json.loads(self._parts[n])

    def stopped_slas(self) -> list[str]:
        return list(self._part(1))

    def stopped(self, request_id: int) -> list[tuple[int, sla.Breach]]:
        if self._stopped is None:
            self._stopped = [(r[0], sla.Breach(request_id, r[1], r[2], r[3], datetime.fromisoformat(r[4]),
                                               _at(r[5]), r[6], r[7], r[8], None, r[9])) for r in self._part(2)]
        return self._stopped

    def running(self, request_id: int, policy: Policy, now: datetime) -> list[tuple[int, sla.Breach]]:
        """The running runs' breaches and near-breaches at ``now`` (none while they are quiet)."""
        judged = ((r.index, sla.judge(request_id, r, policy.rules, policy.calendar, now))
                  for r, _, _ in self._runs(now))
        return [(i, b) for i, b in judged if b is not None]

    def statuses(self, request_id: int, policy: Policy, now: datetime) -> list[tuple[str, str]]:
        """(SLA, status) of the running runs' breaches and near-breaches at ``now``, as :meth:`running` (in
        another order): a run found breached by ``now`` is, without a ``Run`` made or judged."""
        if self.quiet is None or now < self.quiet:
            return []
        rows = self._rows()
        known = {n for n, (_, _, late) in enumerate(rows) if late is not None and now >= late}
        found = [(r.name if isinstance(r, sla.Run) else r[1], "breached") for n, (r, _, _) in enumerate(rows)
                 if n in known]
        if len(known) == len(rows):  # every running run found breached before: nothing to judge
            return found
        judged = (sla.judge(request_id, r, policy.rules, policy.calendar, now) for r, _, _ in self._runs(now, known))
        return found + [(b.sla, b.status) for b in judged if b is not None]

    def _rows(self) -> list[tuple[Any, datetime | None, datetime | None]]:
        if self._running is None:
            self._running = [(r, _at(r[5]) if len(r) > 5 else None, _at(r[6]) if len(r) > 6 else None)
                             for r in self._part(3)]
        return self._running

    def _runs(self, now: datetime, skip: frozenset[int] | set[int] = frozenset()
              ) -> list[tuple[sla.Run, datetime | None, datetime | None]]:
        """The running runs not quiet at ``now`` (a quiet run is neither near nor breached), each made a
        ``Run`` only once it is not."""
        if self.quiet is None or now < self.quiet:
            return []
        found = []
        for n, (r, quiet, late) in enumerate(self._rows()):
            if n not in skip and (quiet is None or now >= quiet):
                if not isinstance(r, sla.Run):
                    r = sla.Run(r[0], r[1], r[2], datetime.fromisoformat(r[3]), None,
                                tuple((datetime.fromisoformat(lo), _at(hi)) for lo, hi in r[4]))
                    self._rows()[n] = (r, quiet, late)
                found.append((r, quiet, late))
        return found


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _encode(stopped: list[tuple[int, sla.Breach]],
            running: list[tuple[sla.Run, datetime | None, datetime | None]], quiet: datetime | None) -> str:
    """``quiet``, the stopped breaches' SLAs, the stopped breaches and the running runs with each one's quiet
    time and the time it was found breached, tab-separated (the last three as JSON; empty: nothing to say)."""
    if not stopped and not running:
        return ""
    rows: list[list[Any]] = [[i, b.sla, b.title, b.status, b.started_at.isoformat(),
                              b.stopped_at.isoformat() if b.stopped_at else None, b.elapsed, b.allowed, b.unit,
                              b.checkpoint] for i, b in stopped]
    runs = [[r.index, r.name, r.checkpoint, r.started.isoformat(),
             [[lo.isoformat(), hi.isoformat() if hi else None] for lo, hi in r.pauses],
             q.isoformat() if q else None, late.isoformat() if late else None] for r, q, late in running]
    return "\t".join([quiet.isoformat() if quiet else "", *(json.dumps(part, separators=(",", ":"))
                                                             for part in ([b.sla for _, b in stopped], rows, runs))])


def _decode_quiet(text: str) -> datetime | None:
    return _at(text[:text.index("\t")]) if text else None


_CACHES: weakref.WeakKeyDictionary[Any, dict[str, dict[int, _Outcome]]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_POLICIES = 4  # policies kept per store


def digest(policy: Policy) -> str:
    """The policy and its calendar (the holidays file's days included) as a key: another policy, another key."""
    cal = policy.calendar
    text = json.dumps([policy.rules.model_dump(mode="json"), cal.tz, sorted(cal.weekdays),
                       sorted(d.isoformat() for d in cal.holidays)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _outcomes(store: RequestStore, key: str) -> dict[int, _Outcome]:
    with _LOCK:
        per = _CACHES.setdefault(store, {})
        if key not in per:
            while len(per) >= _POLICIES:
                per.pop(next(iter(per)))
            per[key] = {}
        return per[key]


def clocks(store: RequestStore, policy: Policy, now: datetime, *, open_only: bool = True,
           also: Iterable[int] = (), summaries: bool = True) -> dict[int, Clocks]:
    """Every request's (the open ones', or all) breaches and near-breaches at ``now``, without a document or a
    history: from the clock summaries the store keeps (``RequestStore.sla_summaries``), each walked once
    per chain head and policy digest (``states.sla.runs``), the outcome cached in this process and in the
    store (``RequestStore.sla_outcomes``): the stopped runs' breaches, the running runs. A request whose
    clocks all stopped is not read again until it has a new event; its running runs are judged again
    (``states.sla.judge``, no walk) only once they can be near their breach (``states.sla.quiet_until``).
    ``also``: requests whose summary is wanted anyway (the attention list's
    needs-review checkpoints); each one read this time carries its summary, and with ``summaries`` (the
    attention list's items need their titles and owners) so does every one with a running clock near
    or past its breach."""
    now = now.astimezone(UTC)
    key = digest(policy)
    cache = _outcomes(store, key)
    heads = store.sla_heads(open_only)
    if any((o := cache.get(i)) is None or o.head != h for i, h in heads.items()):
        for i, (head, text) in store.sla_outcomes(key).items():
            if heads.get(i) == head and ((o := cache.get(i)) is None or o.head != head):
                cache[i] = _Outcome(head, text, _decode_quiet(text))
    stale = {i for i, h in heads.items() if (o := cache.get(i)) is None or o.head != h}
    walk = {i for i in heads if i not in stale and (q := cache[i].quiet) is not None and now >= q}
    wanted = stale | (walk | {i for i in also if i in heads} if summaries else set())
    read = {s.request_id: s for s in store.sla_summaries(sorted(wanted))} if wanted else {}
    found: dict[int, Clocks] = {}
    kept: list[tuple[int, int, str, int | None, str]] = []
    for request_id in heads:
        summary = read.get(request_id)
        outcome = cache.get(request_id)
        if summary is not None and (outcome is None or outcome.head != summary.head_seq):
            outcome = _walk(summary, policy, now, cache, kept)
        if outcome is not None:  # (None: removed between the two reads)
            found[request_id] = Clocks(request_id, outcome, policy, now, summary)
    if kept:
        store.keep_sla_outcomes(key, kept)
    return found


def _walk(summary: ClockSummary, policy: Policy, now: datetime, cache: dict[int, _Outcome],
          kept: list[tuple[int, int, str, int | None, str]]) -> _Outcome:
    """Walk one summary's runs (``states.sla.runs``): its outcome, cached here and added to ``kept`` (with
    the narrow columns the store selects on: ``quiet`` as epoch seconds, floored; the stopped SLAs)."""
    request_id = summary.request_id
    every = sla.runs(sla.read_lines(summary.lines), policy.rules)
    running = [r for r in every if r.stopped is None]
    quiet = sla.quiet_until(running, policy.rules, policy.calendar, now)
    each = [(r, sla.quiet_until([r], policy.rules, policy.calendar, now),
             now if (b := sla.judge(request_id, r, policy.rules, policy.calendar, now)) and b.status == "breached"
             else None) for r in running]
    stopped = [(r.index, b) for r in every if r.stopped is not None
               and (b := sla.judge(request_id, r, policy.rules, policy.calendar, now)) is not None]
    outcome = cache[request_id] = _Outcome(summary.head_seq, _encode(stopped, each, quiet), quiet, stopped, each)
    kept.append((request_id, summary.head_seq, outcome.text, _seconds(quiet) if quiet else None,
                 ",".join(b.sla for _, b in stopped)))
    return outcome


def _seconds(at: datetime) -> int:
    """``at`` as whole epoch seconds, floored (the far future of a paused clock as the largest bigint)."""
    return min(int(at.timestamp() // 1), 2**63 - 1) if at.year < 9999 else 2**63 - 1


def sync(store: RequestStore, policy: Policy, now: datetime, open_only: bool = True) -> str:
    """Bring the store's cached outcomes under ``policy`` up to every (open) request's head: the requests
    ``RequestStore.sla_stale`` names walked from their summaries and kept. Returns the policy's digest."""
    now = now.astimezone(UTC)
    key = digest(policy)
    stale = store.sla_stale(key, open_only)
    if stale:
        cache = _outcomes(store, key)
        kept: list[tuple[int, int, str, int | None, str]] = []
        for summary in store.sla_summaries(sorted(stale)):
            _walk(summary, policy, now, cache, kept)
        if kept:
            store.keep_sla_outcomes(key, kept)
    return key


def due(store: RequestStore, policy: Policy, now: datetime, *, open_only: bool = True,
        also: Iterable[int] = (), summaries: bool = True) -> dict[int, Clocks]:
    """The clocks of the (open) requests whose running runs are past their quiet time
    (``RequestStore.sla_due``), and of ``also``'s: what :func:`clocks` says of them, without reading the
    others' outcomes (theirs: no running breach now). With ``summaries`` each due one carries its
    ``DueClock`` (the title, owners and names its items need, read with its outcome) as ``summary``, and
    each of ``also``'s not due its ``ClockSummary``."""
    now = now.astimezone(UTC)
    key = sync(store, policy, now, open_only)
    found = _due(store, key, policy, now, store.sla_due(key, _seconds(now), open_only), summaries)
    wanted = set(also) - set(found) if summaries else set()
    cache = _outcomes(store, key)
    for summary in store.sla_summaries(sorted(wanted)) if wanted else []:
        if open_only and summary.state not in _OPEN:
            continue
        outcome = cache.get(summary.request_id)
        if outcome is None or outcome.head != summary.head_seq:  # quiet now (else it were due): no running
            outcome = _Outcome(summary.head_seq, "", None)  # breach; its stopped ones not read here
        found[summary.request_id] = Clocks(summary.request_id, outcome, policy, now, summary)
    return found


def section(store: RequestStore, policy: Policy, now: datetime,
            flt: Filter) -> tuple[dict[int, Clocks], list[tuple[str, int]]]:
    """For the analytics section of ``flt``'s requests: the clocks of those whose running runs are past their
    quiet time (as :func:`due`), and the number of requests per SLAs their stopped runs breached
    (``RequestStore.sla_section``: ``"diagnose,notes"`` -> n, '' for none) — every request's outcome
    brought up to its head first, none read into Python but the due ones."""
    now = now.astimezone(UTC)
    key = sync(store, policy, now, open_only=False)
    rows, groups = store.sla_section(key, _seconds(now), flt)
    return _due(store, key, policy, now, rows, summaries=False), groups


def _due(store: RequestStore, key: str, policy: Policy, now: datetime, rows: list[DueClock],
         summaries: bool) -> dict[int, Clocks]:
    cache = _outcomes(store, key)
    found: dict[int, Clocks] = {}
    for row in rows:
        outcome = cache.get(row.request_id)
        if outcome is None or outcome.head != row.head_seq:
            outcome = cache[row.request_id] = _Outcome(row.head_seq, row.outcome, _decode_quiet(row.outcome))
        found[row.request_id] = Clocks(row.request_id, outcome, policy, now, row if summaries else None)
    return found
