"""The Jinja filters of the mail templates: dates in UTC and the words of :mod:`states.wording`.

Every number, amount, unit, offset and path a template shows goes through these filters, so a
mail, an invite and the report say the same thing the same way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import jinja2

from connectors.email.charts import result_chart
from states import evidence, wording

__all__ = ["install"]


def _format_datetime(value: Any, fmt: str = "%a %d %b %Y, %H:%M UTC") -> str:
    """An ISO 8601 string or datetime shown in UTC; other values as-is."""
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
    elif isinstance(value, date):
        return value.strftime("%a %d %b %Y")
    if parsed is None:
        return str(value)
    if parsed.tzinfo is None:
        if isinstance(value, str) and "T" not in value and ":" not in value:
            return parsed.strftime("%a %d %b %Y")
        return str(value)  # never pretend a floating time is UTC
    return parsed.astimezone(UTC).strftime(fmt)


def format_date(value: Any) -> str:
    """The date part of an ISO string, datetime or date."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return str(value.strftime("%a %d %b %Y"))
    if isinstance(value, date):
        return str(value.strftime("%a %d %b %Y"))
    return str(value)


def _level(framework: Any, level: Any) -> str:
    """``"kirkpatrick" | level(3)`` -> ``Kirkpatrick level 3``."""
    names = {"kirkpatrick": "Kirkpatrick level", "ltem": "LTEM tier", "phillips": "Phillips level"}
    name = names.get(str(framework).lower(), wording.path_label(framework))
    return f"{name} {level}" if level is not None else name


def _person(value: Any) -> str:
    """A ``{name, email}`` mapping as ``Name <email>`` (or what there is)."""
    if isinstance(value, dict):
        name, email = value.get("name") or "", value.get("email") or ""
        return f"{name} <{email}>" if name and email else name or email
    return str(value or "")


def _outcome(value: Any, guardrail: Any = False) -> str:
    """A result outcome in words (a guardrail is held or not held)."""
    if guardrail:
        words = {"met": "held", "partly_met": "not held", "not_met": "not held", "worse": "not held (got worse)"}
    else:
        words = {"met": "target met", "partly_met": "partly there", "not_met": "not yet met", "worse": "got worse"}
    return {**words, "no_data": "no data"}.get(str(value), wording.path_label(value))


def _target_words(item: Any) -> str:
    """A plan item's target with its direction: ``at most 400 s``, ``between 60 and 100 tickets``, ``75%``;
    a guardrail says so."""
    if not isinstance(item, dict):
        return ""
    target, unit, direction = item.get("target") or {}, item.get("unit"), str(item.get("direction") or "")
    if direction == "within":
        low, high = wording.brief_quantity(target.get("low"), unit), wording.quantity(target.get("high"), unit)
        text = f"between {low} and {high}"
    else:
        words = {"at_most": "at most ", "at_least": "at least "}.get(direction, "")
        text = words + wording.quantity(target.get("value"), unit)
    return text + (" (a guardrail: must not get worse)" if item.get("guardrail") else "")


def _costs_total(costs: Any) -> float | None:
    """The plan's fully loaded costs: its cost lines added up, or the single program_cost."""
    if not isinstance(costs, dict):
        return None
    if costs.get("program_cost") is not None:
        return float(costs["program_cost"])
    return sum(float(line.get("amount") or 0) for line in costs.get("lines") or [])


def goal(value: Any) -> str:
    """A business goal mapping in one readable line: ``win rate: from 18% to 24% by Wed 30 Sep 2026``."""
    if not isinstance(value, dict):
        return str(value or "")
    text = str(value.get("metric") or "")
    if value.get("target_value") is not None:
        text += ": " + wording.change(value.get("current_value"), value["target_value"], value.get("unit"))
    if value.get("target_date"):
        text += f" by {format_date(value['target_date'])}"
    return text


def install(env: jinja2.Environment) -> None:
    """Register every filter on ``env``."""
    env.filters.update({
        "datetime": _format_datetime,
        "date": format_date,
        "duration": wording.offset_words,
        "after_delivery": wording.after_delivery,
        "when_after_delivery": wording.offsets_after_delivery,
        "number": wording.number,
        "money": wording.money,
        "quantity": wording.quantity,
        "brief_quantity": wording.brief_quantity,
        "change": wording.change,
        "metric_label": wording.metric_label,
        "unit_label": wording.unit_label,
        "unit_phrase": wording.unit_phrase,
        "path_label": wording.path_label,
        "level": _level,
        "person": _person,
        "outcome": _outcome,
        "effect": evidence.effect_sentence,
        "roi_sentences": evidence.roi_sentences,
        "goal": goal,
        "target_words": _target_words,
        "costs_total": _costs_total,
        "result_chart": result_chart,
    })
