"""A business calendar: working weekdays, holidays and a time zone; business time between two instants.

Business time is counted in **business days**: each working local calendar day counts as one day,
whatever its length in hours (a day with a DST change has 23 or 25 hours and still counts as one),
and a part of a day counts as the share of that local day it covers. So "5 business days" from
Thursday 10:00 local ends the next Thursday at 10:00 local, across a weekend, a holiday (one more
day) or a DST change alike. Pure: the SLA rules (:mod:`states.sla`) use it; no I/O here.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from states.errors import FieldError, InvalidInput

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: A clock may not run longer than this many local days (a guard against a runaway walk).
MAX_DAYS: Final = 366 * 50


@dataclass(frozen=True)
class BusinessCalendar:
    """Working ``weekdays`` (0 = Monday), ``holidays`` (local dates) in time zone ``tz``."""

    tz: str = "UTC"
    weekdays: frozenset[int] = frozenset(range(5))
    holidays: frozenset[date] = field(default_factory=frozenset)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @cached_property
    def _working_holidays(self) -> tuple[date, ...]:
        """The holidays that fall on a working weekday, sorted (the others take nothing off)."""
        return tuple(sorted(d for d in self.holidays if d.weekday() in self.weekdays))

    @cached_property
    def _partial_weeks(self) -> tuple[tuple[int, ...], ...]:
        """[weekday][k]: how many of the ``k`` days from that weekday on are working weekdays (k < 7)."""
        return tuple(tuple(sum((start + i) % 7 in self.weekdays for i in range(k)) for k in range(7))
                     for start in range(7))

    def _whole_days(self, first: date, last: date) -> int:
        """How many business days lie strictly between ``first`` and ``last``: whole weeks by arithmetic,
        the rest day by day (at most six), less the working holidays in between (by bisection)."""
        n = (last - first).days - 1
        if n <= 0:
            return 0
        weeks, rest = divmod(n, 7)
        count = weeks * len(self.weekdays) + self._partial_weeks[(first.weekday() + 1) % 7][rest]
        off = self._working_holidays
        return count - (bisect_left(off, last) - bisect_right(off, first))

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    @cached_property
    def _bounds(self) -> dict[date, tuple[datetime, datetime]]:
        return {}  # the local days met so far (a memo: the same instants every time)

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The local day ``day`` as UTC instants [start, end) (23, 24 or 25 hours long)."""
        found = self._bounds.get(day)
        if found is None:
            zone = self.zone
            start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
            end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
            if len(self._bounds) > 100_000:
                self._bounds.clear()
            found = self._bounds[day] = (start, end)
        return found

    def _share(self, day: date, start: datetime, end: datetime) -> float:
        """The share of local ``day`` that [start, end) covers."""
        lo, hi = self._day_bounds(day)
        covered = (min(hi, end) - max(lo, start)).total_seconds()
        return max(0.0, covered) / (hi - lo).total_seconds()

    def business_days(self, start: datetime, end: datetime) -> float:
        """Business days between two aware instants (0 when ``end`` is not after ``start``)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return 0.0
        first, last = start.astimezone(self.zone).date(), end.astimezone(self.zone).date()
        if (last - first).days > MAX_DAYS:
            raise ValueError("a clock longer than 50 years: check the dates")
        if first == last:
            return self._share(first, start, end) if self.is_business_day(first) else 0.0
        total = self._share(first, start, end) if self.is_business_day(first) else 0.0
        total += self._share(last, start, end) if self.is_business_day(last) else 0.0
        return total + self._whole_days(first, last)  # one each, whatever their length in hours

    def add_business_days(self, start: datetime, days: float) -> datetime:
        """The instant ``days`` business days after ``start`` (aware, UTC)."""
        at = start.astimezone(UTC)
        left = days
        day = at.astimezone(self.zone).date()
        for i in range(MAX_DAYS):
            if self.is_business_day(day):
                share = self._share(day, at, datetime.max.replace(tzinfo=UTC)) if i == 0 else 1.0
                if left <= share + 1e-12:
                    lo, hi = self._day_bounds(day)
                    return max(lo, at) + (hi - lo) * left
                left -= share
            day += timedelta(days=1)
        raise ValueError("no business day within 50 years: check the calendar's weekdays and holidays")


def calendar(tz: str = "UTC", weekdays: list[str] | tuple[str, ...] = WEEKDAYS[:5],
             holidays: list[date] | tuple[date, ...] = (), *, source: str = "") -> BusinessCalendar:
    """A calendar from words (``tz`` an IANA name, ``weekdays`` like ``mon``); InvalidInput naming each bad field."""
    errors: list[FieldError] = []
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(FieldError("timezone", f"unknown time zone {tz!r} (an IANA name such as Europe/Berlin)"))
    days: set[int] = set()
    for i, name in enumerate(weekdays):
        word = str(name).strip().lower()[:3]
        if word not in WEEKDAYS:
            errors.append(FieldError(f"weekdays[{i}]", f"{name!r} is not a weekday (mon … sun)"))
        else:
            days.add(WEEKDAYS.index(word))
    if not days and not errors:
        errors.append(FieldError("weekdays", "name at least one working weekday"))
    if errors:
        raise InvalidInput(errors, source)
    return BusinessCalendar(tz=tz, weekdays=frozenset(days), holidays=frozenset(holidays))


def parse_holidays(data: object, source: str = "") -> list[date]:
    """The holidays of a holidays file's mapping: ``holidays: [2026-12-25, {date: 2026-12-26, name: …}]``;
    InvalidInput naming each bad entry (``holidays[2].date``)."""
    if not isinstance(data, dict) or not isinstance(data.get("holidays"), list):
        raise InvalidInput([FieldError("holidays", "give a list of dates under 'holidays' (YYYY-MM-DD, or "
                                                   "{date: YYYY-MM-DD, name: …})")], source)
    found: list[date] = []
    errors: list[FieldError] = []
    for i, entry in enumerate(data["holidays"]):
        raw, where = ((entry.get("date"), f"holidays[{i}].date") if isinstance(entry, dict)
                      else (entry, f"holidays[{i}]"))
        try:
            found.append(date.fromisoformat(str(raw)))
        except ValueError:
            errors.append(FieldError(where, f"{raw!r} is not a date (YYYY-MM-DD)"))
    unknown = sorted(set(data) - {"holidays"})
    if unknown:
        errors.append(FieldError(unknown[0], "unknown field (a holidays file has only 'holidays')"))
    if errors:
        raise InvalidInput(errors, source)
    return found
