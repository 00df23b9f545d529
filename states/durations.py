"""ISO 8601 durations (``P1D``, ``P2W``, ``P3M``, ``PT12H``) for checkpoint offsets.

Years and months are calendar units: ``P1M`` after 31 January is the last day
of February, as a person would expect; weeks, days and times are exact.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


MAX_YEARS = 100


@dataclass(frozen=True)
class Duration:
    text: str
    years: int = 0
    months: int = 0
    delta: timedelta = timedelta()

    def after(self, start: datetime) -> datetime:
        """``start`` plus this duration (calendar months, then exact days/times)."""
        month_index = start.month - 1 + self.months + 12 * self.years
        year = start.year + month_index // 12
        month = month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day) + self.delta

    @property
    def approx_days(self) -> float:
        return self.years * 365.25 + self.months * 30.44 + self.delta.total_seconds() / 86400


def parse_duration(text: str) -> Duration:
    """Parse an ISO 8601 duration; raise ``ValueError`` with a readable message."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 duration such as P30D, got {text!r}")
    value = text.strip().upper()
    match = _PATTERN.match(value)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration (examples: P1D, P2W, P3M, PT12H)")
    parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    # Bound it before building a timedelta (which overflows) or adding it to a date (which can pass year 9999).
    # Whole seconds in integers: a float of a 400-digit number overflows too.
    seconds = (parts["years"] * 31_557_600 + parts["months"] * 2_630_016 + parts["weeks"] * 604_800
               + parts["days"] * 86_400 + parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"])
    if seconds > MAX_YEARS * 31_557_600:
        raise ValueError(f"{text!r} is too far out: a checkpoint must come within {MAX_YEARS} years of delivery")
    delta = timedelta(
        weeks=parts["weeks"],
        days=parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )
    duration = Duration(value, parts["years"], parts["months"], delta)
    if duration.approx_days <= 0:
        raise ValueError(f"{text!r} is zero: a checkpoint must come after delivery")
    return duration
