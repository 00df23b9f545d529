"""The analytics query: the one function ``ldflow analytics``, ``GET /api/v1/analytics`` and the dashboard call.

``analytics_filter`` reads the filters as a person types them (InvalidInput naming each wrong one, an
inverted date range naming ``to``); ``figures`` computes them from the store's summary of the requests
kept (``RequestStore.analytics_summary``: GROUP BY queries over the database's track cache, or the
walked tracks summarised on the fakes); ``sponsor_view`` adds a sponsor's requests, where each stands
and their results (from the tracks, ``RequestStore.analytics_tracks``, read only when asked for).

Two caches, both derived from the audit history only. The store's (``analytics_tracks``, SqlStore) keeps
each request's track at its ``head_seq`` and recomputes a request whose head moved on before any figure
is read. This one, per store and process, keeps the figures per filter keyed on the audit head
(``RequestStore.audit_head``: on SqlStore the number of events, which every committed write raises,
whatever the order writers commit in). Every change to a request appends an audit event, and a track
is computed from its events only (the sponsor and state columns change with an event too), so while
the head is the same the figures are; a new head drops them all.
Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from connectors.ports import AuditRecord, ListFilter
from flows import sla
from flows.sla import Policy
from states.analytics import Track
from states.analytics_figures import TYPES, Filter, figures_of
from states.errors import FieldError, InvalidInput
from states.sla import Breach

if TYPE_CHECKING:
    from connectors.ports import RequestStore

_MAX_FIGURES = 64  # filters kept per head


def analytics_filter(*, date_from: str | None = None, date_to: str | None = None, sponsor: str | None = None,
                     owner: str | None = None, type_: str | None = None) -> Filter:
    """The filter from the options or query parameters; InvalidInput naming every wrong one."""
    errors: list[FieldError] = []
    days: dict[str, dt.date | None] = {}
    for name, raw in (("from", date_from), ("to", date_to)):
        days[name] = None
        if raw:
            try:
                days[name] = dt.date.fromisoformat(raw)
            except ValueError:
                errors.append(FieldError(name, f"{raw!r} is not a date (YYYY-MM-DD)"))
    start, end = days["from"], days["to"]
    if start is not None and end is not None and end < start:
        errors.append(FieldError("to", f"{end} is before from ({start}): the date range is inverted"))
    for name, value in (("sponsor", sponsor or ""), ("owner", owner or "")):
        if len(value) > 320 or any(c in value for c in "\r\n\x00"):
            errors.append(FieldError(name, "one line, at most 320 characters"))
    if type_ and type_ not in TYPES:
        errors.append(FieldError("type", f"{type_!r} is not one of {', '.join(TYPES)}"))
    if errors:
        raise InvalidInput(errors)
    return Filter(date_from=start, date_to=end, sponsor=(sponsor or "").strip().lower(),
                  owner=(owner or "").strip().lower(), type=type_ or "")


@dataclass
class _Cached:
    head: int
    load: Callable[[], list[Track]]  # every request's track, read only when asked for (sponsor page, SLA)
    loaded: list[Track] | None = None
    owned: dict[int, tuple[str, ...]] | None = None  # request id -> its owners (flows.board.owners)
    owners: dict[str, frozenset[int]] | None = None
    sponsors: dict[str, bool] = field(default_factory=dict)
    figures: OrderedDict[Filter, dict[str, Any]] = field(default_factory=OrderedDict)
    sla: OrderedDict[tuple[Any, ...], dict[str, Any]] = field(default_factory=OrderedDict)

    @property
    def tracks(self) -> list[Track]:
        if self.loaded is None:
            self.loaded = self.load()
        return self.loaded


_CACHES: weakref.WeakKeyDictionary[Any, _Cached] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _cached(store: RequestStore) -> _Cached:
    """The store's entry as of its audit head: a new head starts a new one (the store's own track cache
    recomputes only the requests that moved on)."""
    with _LOCK:
        head = store.audit_head()
        entry = _CACHES.get(store)
        if entry is None or entry.head != head:
            entry = _CACHES[store] = _Cached(head, store.analytics_tracks)
        return entry


def _owners(store: RequestStore, entry: _Cached) -> dict[str, frozenset[int]]:
    """owner's address -> the requests they own (the redirect's owner, the plan items' owners)."""
    if entry.owned is None:
        from flows.board import owners

        entry.owned = {int(r.id or 0): owners(r) for r in store.iter_requests()}  # type: ignore[attr-defined]
    if entry.owners is None:
        found: dict[str, set[int]] = {}
        for request_id, people in entry.owned.items():
            for person in people:
                found.setdefault(person, set()).add(request_id)
        entry.owners = {k: frozenset(v) for k, v in found.items()}
    return entry.owners


def tracks(store: RequestStore) -> list[Track]:
    return list(_cached(store).tracks)


def _has_sponsor(store: RequestStore, entry: _Cached, sponsor: str) -> bool:
    found = entry.sponsors.get(sponsor)
    if found is None:
        found = entry.sponsors[sponsor] = store.analytics_summary(Filter(sponsor=sponsor)).requests > 0
    return found


def figures(store: RequestStore, flt: Filter | None = None, clocks: SlaClocks | None = None) -> dict[str, Any]:
    """Every figure for ``flt``; an unknown sponsor or owner is InvalidInput naming the field. With
    ``clocks`` (the SLA policy in force and now), the SLA breaches of the requests kept (:func:`sla_section`)."""
    flt = flt or Filter()
    entry = _cached(store)
    if flt.sponsor and not _has_sponsor(store, entry, flt.sponsor):
        raise InvalidInput([FieldError("sponsor", f"no request has the sponsor {flt.sponsor}")])
    if flt.owner:
        owned = _owners(store, entry).get(flt.owner)
        if owned is None:
            raise InvalidInput([FieldError("owner", f"no request is owned by {flt.owner}")])
        flt = replace(flt, owner_ids=owned)
    if clocks is None or flt in entry.figures:
        found = _summary(store, entry, flt)
        return found if clocks is None else {**found, "sla_breaches": _sla(store, entry, flt, clocks)}
    # Both: the summary's GROUP BYs and the SLA section's reads at once, on two connections (on PostgreSQL
    # two server processes: the time of the longer, not of both), each over the track cache brought up
    # to every head first (the section counts under the figures' WHERE on analytics_facts).
    store.analytics_refresh()
    with ThreadPoolExecutor(1, thread_name_prefix="ldflow-sla-section") as pool:
        section = pool.submit(_sla, store, entry, flt, clocks)
        found = _summary(store, entry, flt)
        return {**found, "sla_breaches": section.result()}


def _summary(store: RequestStore, entry: _Cached, flt: Filter) -> dict[str, Any]:
    """The figures of ``flt`` without the SLA section, cached with the entry (its audit head)."""
    cache = entry.figures
    found = cache.get(flt)
    if found is None:
        found = cache[flt] = figures_of(store.analytics_summary(flt), flt)
        while len(cache) > _MAX_FIGURES:
            cache.popitem(last=False)
    return found


@dataclass(frozen=True)
class SlaClocks:
    """The SLA policy in force (``flows.sla.load_policy``) and the time the running clocks are read at."""

    policy: Policy
    now: dt.datetime


def sla_section(request_ids: list[int], histories: Callable[[int], list[AuditRecord]],
                clocks: SlaClocks) -> dict[str, Any]:
    """Per SLA of the policy: how many of the requests breached it (stopped late or still running past
    it) and how many running clocks are near their breach, from each request's stored history
    (``flows.sla.request_breaches``: a changed policy recomputes the past). The oracle of :func:`_sla`."""
    return _section({i: sla.request_breaches(i, histories(i), clocks.policy, clocks.now) for i in request_ids},
                    request_ids, clocks)


def _section(found: dict[int, list[Breach]], request_ids: list[int], clocks: SlaClocks,
             stopped: dict[int, list[str]] | None = None) -> dict[str, Any]:
    """The section's counts from each request's breaches (``found``), or from its running clocks' breaches
    (``found``) and the SLAs its stopped clocks breached (``stopped``)."""
    titles = {name: rule.title or name for name, rule in clocks.policy.rules.slas.items()}
    counts: dict[str, dict[str, int]] = {name: {"breached": 0, "running_breached": 0, "near": 0} for name in titles}
    requests_breached = 0
    for request_id in request_ids:
        breaches = found.get(request_id, [])
        late = stopped.get(request_id, []) if stopped is not None else []
        for name in late:
            counts.setdefault(name, {"breached": 0, "running_breached": 0, "near": 0})["breached"] += 1
            titles.setdefault(name, name)
        for b in breaches:
            titles.setdefault(b.sla, b.title or b.sla)
            row = counts.setdefault(b.sla, {"breached": 0, "running_breached": 0, "near": 0})
            if b.status == "breached":
                row["breached"] += 1
                row["running_breached"] += 1 if b.running else 0
            else:
                row["near"] += 1
        requests_breached += bool(late) or any(b.status == "breached" for b in breaches)
    return {"status": "computed", "policy": clocks.policy.source, "as_of": clocks.now.isoformat(),
            "requests": len(request_ids), "requests_breached": requests_breached,
            "slas": [{"sla": name, "title": titles[name], **row} for name, row in counts.items()]}


def _sla(store: RequestStore, entry: _Cached, flt: Filter, clocks: SlaClocks) -> dict[str, Any]:
    """The SLA section of ``flt``'s requests without a track or an object per request: the store's cached
    outcomes brought up to every head, the SLAs their stopped clocks breached counted per group under the
    figures' filter, and only the requests whose running clocks are past their quiet time judged here
    (``flows.sla.section``, over the track cache ``figures`` brought up to this audit head). Cached with
    the figures (same audit head) per policy and hour: a running clock crosses its breach with time alone,
    so the hour is part of the key."""
    key = (flt, clocks.policy.source, sla.digest(clocks.policy), clocks.now.replace(minute=0, second=0, microsecond=0))
    found = entry.sla.get(key)
    if found is None:
        running, groups = sla.section(store, clocks.policy, clocks.now, flt)
        found = entry.sla[key] = _counted(groups, running, clocks)
        while len(entry.sla) > _MAX_FIGURES:
            entry.sla.popitem(last=False)
    return found


def _counted(groups: list[tuple[str, int]], running: dict[int, sla.Clocks], clocks: SlaClocks) -> dict[str, Any]:
    """:func:`_section`'s counts from the stopped SLAs' groups (``"diagnose,notes"`` -> how many requests) and
    the running clocks of the requests past their quiet time."""
    titles = {name: rule.title or name for name, rule in clocks.policy.rules.slas.items()}
    counts: dict[str, dict[str, int]] = {name: {"breached": 0, "running_breached": 0, "near": 0} for name in titles}
    requests = breached = 0
    for names, n in groups:
        requests += n
        breached += n if names else 0
        for name in names.split(",") if names else []:
            counts.setdefault(name, {"breached": 0, "running_breached": 0, "near": 0})["breached"] += n
            titles.setdefault(name, name)
    for c in running.values():
        late = False
        for name, status in c.statuses:
            row = counts.setdefault(name, {"breached": 0, "running_breached": 0, "near": 0})
            if status == "breached":
                row["breached"] += 1
                row["running_breached"] += 1
                late = True
            else:
                row["near"] += 1
        breached += late and not c.stopped
    return {"status": "computed", "policy": clocks.policy.source, "as_of": clocks.now.isoformat(),
            "requests": requests, "requests_breached": breached,
            "slas": [{"sla": name, "title": titles[name], **row} for name, row in counts.items()]}


def sponsor_view(store: RequestStore, flt: Filter, clocks: SlaClocks | None = None) -> dict[str, Any]:
    """A sponsor's page: the figures of their requests, and each request with where it stands and its results."""
    numbers = figures(store, flt, clocks)
    by_id = {t.request_id: t for t in _cached(store).tracks if flt.keeps(t)}
    rows, _total = store.list(ListFilter(sponsor=flt.sponsor, sort="id", limit=1000))
    requests = []
    for row in rows:
        track = by_id.get(row.id)
        if track is None:
            continue
        closed = row.state in ("cancelled", "declined")  # their checkpoints were closed with the request
        requests.append({"id": row.id, "title": row.title, "state": row.state,
                         "received": track.received_at[:10], "path": track.path, "redirect_kind": track.redirect_kind,
                         "open_checkpoints": None if closed else track.open_checkpoints,
                         "results": [{"item": o.item, "level": o.level, "framework": o.framework,
                                      "outcome": o.outcome} for o in track.outcomes]})
    return {"sponsor": flt.sponsor, "requests": requests, "figures": numbers}


def clocks_of(settings: Any, now: dt.datetime) -> SlaClocks:
    """The SLA policy in force (InvalidInput naming the field when it cannot be read) and now."""
    return SlaClocks(sla.load_policy(settings), now)
