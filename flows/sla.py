"""The SLA policy in force (``LDFLOW_SLA_POLICY`` or the built-in one) and the breaches of stored requests.

:func:`load_policy` reads the policy file and its holidays file through :mod:`connectors.loader`
(bad input: ``InvalidInput`` naming the field, exit 2); :func:`request_breaches` walks one request's
stored history with :func:`states.sla.breaches`; :func:`clocks` the same for many requests at once,
from the clock summaries the store keeps (no document, no history). Nothing about a policy is
stored: the walks are cached in this process per chain head and policy digest, so a changed policy
(or holidays file) recomputes every past clock on the next read.
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
from states.validation import parse

if TYPE_CHECKING:
    from connectors.ports import AuditRecord, ClockSummary, RequestStore
    from flows.settings import Settings

SETTING = "LDFLOW_SLA_POLICY"


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

@dataclass(frozen=True)
class Clocks:
    """One request's SLA clocks as read at a time: its summary's facts and its breaches then
    (``states.sla.breaches`` over its whole history: the same list)."""

    request_id: int
    breaches: list[sla.Breach]
    summary: ClockSummary | None  # None: not read this time (its cached outcome answered)


@dataclass
class _Outcome:
    head: int
    stopped: list[sla.Breach]  # the stopped clocks' breaches: they do not change with time
    quiet: datetime | None  # states.sla.quiet_until: None when no clock runs
    entries: list[sla.Entry] | None  # kept only while a clock runs (read again at each time)


_CACHES: weakref.WeakKeyDictionary[Any, dict[str, dict[int, _Outcome]]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_POLICIES = 4  # policies kept per store


def digest(policy: Policy) -> str:
    """The policy and its calendar (the holidays file's days included) as a key: another policy, another key."""
    cal = policy.calendar
    text = json.dumps([policy.rules.model_dump(mode="json"), cal.tz, sorted(cal.weekdays),
                       sorted(d.isoformat() for d in cal.holidays)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _outcomes(store: RequestStore, policy: Policy) -> dict[int, _Outcome]:
    with _LOCK:
        per = _CACHES.setdefault(store, {})
        key = digest(policy)
        if key not in per:
            while len(per) >= _POLICIES:
                per.pop(next(iter(per)))
            per[key] = {}
        return per[key]


def clocks(store: RequestStore, policy: Policy, now: datetime, *, open_only: bool = True,
           also: Iterable[int] = ()) -> dict[int, Clocks]:
    """Every request's (the open ones', or all) breaches and near-breaches at ``now``, without a document or a
    history: from the clock summaries the store keeps (``RequestStore.sla_summaries``), each walked once
    per chain head and policy (cached per store in this process). A request whose clocks all stopped
    is not read again until it has a new event; one with a running clock only once it can be near its
    breach (``states.sla.quiet_until``). ``also``: requests whose summary is wanted anyway (the
    attention list's needs-review checkpoints); each one read this time carries its summary."""
    now = now.astimezone(UTC)
    cache = _outcomes(store, policy)
    heads = store.sla_heads(open_only)
    stale = {i for i, head in heads.items() if (o := cache.get(i)) is None or o.head != head}
    walk = {i for i in heads if i not in stale and (o := cache[i]).quiet is not None and now >= o.quiet}
    wanted = stale | walk | {i for i in also if i in heads}
    read = {s.request_id: s for s in store.sla_summaries(sorted(wanted))} if wanted else {}
    found: dict[int, Clocks] = {}
    for request_id in heads:
        summary = read.get(request_id)
        outcome = cache.get(request_id)
        if summary is not None and (outcome is None or outcome.head != summary.head_seq):
            entries = sla.read_lines(summary.lines)
            quiet = sla.quiet_until(entries, policy.rules, policy.calendar, now)
            all_ = sla.breaches(request_id, entries, policy.rules, policy.calendar, now)
            outcome = cache[request_id] = _Outcome(summary.head_seq, [b for b in all_ if not b.running], quiet,
                                                   entries if quiet is not None else None)
            found[request_id] = Clocks(request_id, all_, summary)
            continue
        if outcome is None:  # removed between the two reads
            continue
        if outcome.quiet is not None and now >= outcome.quiet and outcome.entries is not None:
            breaches = sla.breaches(request_id, outcome.entries, policy.rules, policy.calendar, now)
        else:
            breaches = list(outcome.stopped)
        found[request_id] = Clocks(request_id, breaches, summary)
    return found
