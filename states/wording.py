"""Words for people: the one formatter every mail, invite and report uses.

Pure functions, no I/O: ISO 8601 offsets in words ("P30D" -> "30 days"), numbers with thousands
separators, amounts with their currency, a value with its unit ("4.6 on a 1–5 scale", "71%"),
a metric with its unit said once, a recommendation's path in words, the greeting of a mail
("Dana" for one person, "team" for a list address or several people), and the plurals and
articles of the CLI's and the errors' messages ("1 request", "an acknowledged request").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Final

__all__ = [
    "after_delivery",
    "amount",
    "brief_quantity",
    "change",
    "day",
    "goal",
    "greeting_name",
    "is_group",
    "metric_label",
    "money",
    "number",
    "offset_adjective",
    "offset_words",
    "offsets_after_delivery",
    "path_label",
    "piece_kind",
    "printable",
    "quantity",
    "unit_label",
    "unit_phrase",
]

# What a terminal would act on instead of showing: C0 controls but newline and tab (ESC starts the
# escape sequences that retitle windows, move the cursor or hide text), DEL, C1 controls (U+009B is
# CSI on its own), the line/paragraph separators and the bidirectional overrides and isolates.
_UNPRINTABLE: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe for a terminal: every control character shown as its escape (``\\x1b``,
    ``\\u202e``), so stored text (a mailed note, an ``--actor``) can never drive the operator's
    terminal."""
    def shown(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNPRINTABLE.sub(shown, text)


_OFFSET_RE: Final = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_OFFSET_UNITS: Final = (("y", "year"), ("mo", "month"), ("w", "week"), ("d", "day"), ("h", "hour"),
                        ("mi", "minute"), ("s", "second"))


def _offset_parts(offset: Any) -> list[tuple[int, str]] | None:
    match = _OFFSET_RE.match(str(offset or "").strip().upper())
    if not match or not any(match.groupdict().values()):
        return None
    return [(int(match.group(g)), word) for g, word in _OFFSET_UNITS if match.group(g) is not None]


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def offset_words(offset: Any) -> str:
    """``P30D`` -> ``30 days``, ``P1D`` -> ``1 day``, ``P1Y2M`` -> ``1 year and 2 months``; other text as-is."""
    parts = _offset_parts(offset)
    if parts is None:
        return str(offset or "")
    return _join([f"{n} {word}{'' if n == 1 else 's'}" for n, word in parts])


def after_delivery(offset: Any) -> str:
    """``P30D`` -> ``30 days after delivery``; a zero offset is ``on the day of delivery``."""
    parts = _offset_parts(offset)
    if parts is not None and all(n == 0 for n, _ in parts):
        return "on the day of delivery"
    return f"{offset_words(offset)} after delivery"


def offsets_after_delivery(offsets: Iterable[Any]) -> str:
    """``["P30D", "P90D"]`` -> ``30 days and 90 days after delivery``."""
    words = [offset_words(o) for o in offsets]
    return f"{_join(words)} after delivery" if words else ""


def offset_adjective(offset: Any) -> str:
    """``P90D`` -> ``90-day``, ``P6M`` -> ``6-month`` (as in "the 90-day result"); a compound offset in words."""
    parts = _offset_parts(offset)
    if parts is None or len(parts) != 1:
        return offset_words(offset)
    n, word = parts[0]
    return f"{n}-{word}"


def number(value: Any, decimals: int = 2) -> str:
    """``189000`` -> ``189,000``, ``1234.5`` -> ``1,234.5``, ``0.126`` -> ``0.13``; None -> ``""``."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value).replace(",", ""))
        except ValueError:
            return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    text = f"{value:,.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def money(value: Any, currency: Any = "") -> str:
    """``189000, "USD"`` -> ``189,000 USD``; cents shown when there are any (``1,234.50 EUR``)."""
    if value is None or value == "":
        return ""
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{int(as_float):,}" if as_float.is_integer() else f"{as_float:,.2f}"
    code = str(currency or "").strip()
    return f"{text} {code}" if code else text


amount = money  # the name the templates use

_SCALE_RE: Final = re.compile(r"^\s*(?:a\s+)?(-?\d+)\s*(?:-|–|—|to)\s*(-?\d+)(?:\s*(?:point\s+)?scale)?\s*$",
                              re.IGNORECASE)
_PERCENT: Final = frozenset({"%", "percent", "per cent", "pct", "percentage", "percentage points"})
_CURRENCY_RE: Final = re.compile(r"^[A-Z]{3}$")


def _scale(unit: str) -> tuple[str, str] | None:
    match = _SCALE_RE.match(unit)
    return (match.group(1), match.group(2)) if match else None


def unit_label(unit: Any) -> str:
    """A unit as said after a metric: ``1-5`` -> ``1–5 scale``, ``%`` -> ``%``, others as given."""
    text = str(unit or "").strip()
    scale = _scale(text)
    return f"{scale[0]}–{scale[1]} scale" if scale else text


def quantity(value: Any, unit: Any = "") -> str:
    """A value with its unit: ``71, "%"`` -> ``71%``, ``4.6, "1-5"`` -> ``4.6 on a 1–5 scale``,
    ``189000, "USD"`` -> ``189,000 USD``, ``4.8, "per 1,000 orders"`` -> ``4.8 per 1,000 orders``."""
    text = str(unit or "").strip()
    if value is None or value == "":
        return ""
    if _CURRENCY_RE.match(text):
        return money(value, text)
    shown = number(value)
    if not text:
        return shown
    if text.lower() in _PERCENT:
        return f"{shown}%" if text.lower() != "percentage points" else f"{shown} percentage points"
    scale = _scale(text)
    if scale:
        return f"{shown} on a {scale[0]}–{scale[1]} scale"
    return f"{shown} {text}"


def unit_phrase(unit: Any) -> str:
    """How a question names its unit: ``on a 1–5 scale``, ``in %``, ``in hours``; ``""`` for none."""
    text = str(unit or "").strip()
    if not text:
        return ""
    scale = _scale(text)
    return f"on a {scale[0]}–{scale[1]} scale" if scale else f"in {text}"


def brief_quantity(value: Any, unit: Any = "") -> str:
    """A value said again right after its unit was given: ``75%``, ``8,000 EUR``, else the bare number."""
    text = str(unit or "").strip()
    if _CURRENCY_RE.match(text) or text.lower() in _PERCENT:
        return quantity(value, text)
    return number(value)


def change(before: Any, after: Any, unit: Any = "") -> str:
    """``from 62% to 71%``, ``from 3.1 to 4.6 on a 1–5 scale``, ``to 4.5 on a 1–5 scale`` (no baseline)."""
    text = str(unit or "").strip()
    suffix_once = _scale(text) is not None or not (_CURRENCY_RE.match(text) or text.lower() in _PERCENT)
    if before is None or before == "":
        return f"to {quantity(after, text)}"
    if suffix_once:
        return f"from {number(before)} to {quantity(after, text)}"
    return f"from {quantity(before, text)} to {quantity(after, text)}"


_GOAL_WORDS: Final = {"at_most": "at most {}", "at_least": "at least {}"}


def goal(direction: Any, value: Any, unit: Any = "", low: Any = None, high: Any = None) -> str:
    """What good is, said right after the result's unit: ``at most 400``, ``at least 85%``, ``between 300
    and 400``; the target as it is for ``increase`` and ``decrease`` (the baseline says which way)."""
    if str(direction or "") == "within":
        return f"between {brief_quantity(low, unit)} and {brief_quantity(high, unit)}"
    words = _GOAL_WORDS.get(str(direction or ""))
    return words.format(brief_quantity(value, unit)) if words else brief_quantity(value, unit)


def metric_label(metric: Any, unit: Any = "") -> str:
    """A metric with its unit in brackets, said once: ``complaints per 1,000 orders`` stays as it is when
    its unit is ``per 1,000 orders``; ``relevance`` with ``1-5`` -> ``relevance (1–5 scale)``."""
    name = str(metric or "").strip()
    text = str(unit or "").strip()
    if not text or text.lower() in name.lower() or unit_label(text).lower() in name.lower():
        return name
    return f"{name} ({unit_label(text)})"


_PATHS: Final = {
    "design": "Design a learning solution",
    "job_aid": "A job aid",
    "process_change": "Change the process",
    "tool_fix": "Fix the tools or information",
    "expectations_feedback": "Clear expectations and feedback",
    "coaching": "Coaching and feedback",
    "incentive_change": "Align the consequences",
    "task_simplification": "Simplify the task",
    "communication": "Communicate the change",
    "job_redesign": "Redesign the job",
}


_PIECES: Final = {
    "design": "a designed piece", "job_aid": "a job aid", "process_change": "a process change",
    "tool_fix": "a tool fix", "expectations_feedback": "expectations and feedback", "coaching": "coaching",
    "incentive_change": "a change to the consequences", "task_simplification": "a simpler task",
    "communication": "communication", "job_redesign": "a job redesign",
}


def piece_kind(kind: Any) -> str:
    """A companion piece's kind in words, as a noun (``incentive_change`` -> ``a change to the consequences``)."""
    key = str(kind or "").strip()
    return _PIECES.get(key, key.replace("_", " "))


def path_label(path: Any) -> str:
    """A recommendation's path in words (``design`` -> ``Design a learning solution``); other values
    ``job_aid``-style -> ``Job aid``."""
    key = str(path or "").strip()
    if key in _PATHS:
        return _PATHS[key]
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]


# Words that make a display name a team or a list rather than a person.
_GROUP_WORDS: Final = frozenset({
    "team", "teams", "group", "groups", "department", "dept", "region", "regional", "sales", "staff", "all",
    "everyone", "committee", "board", "office", "desk", "support", "crew", "list", "managers", "leads",
    "squad", "unit", "division", "hr", "finance", "operations", "ops", "partners", "members", "people",
    "council", "panel", "network", "community", "leadership", "agents", "reps", "helpdesk", "service",
    "services", "l&d", "learning", "admins", "engineering", "marketing", "org",
})
# Left-hand sides of role and list addresses.
_GROUP_LOCALS: Final = frozenset({
    "team", "all", "staff", "sales", "support", "info", "hr", "list", "group", "ops", "finance", "office",
    "admin", "help", "helpdesk", "service", "everyone", "contact", "hello", "noreply", "no-reply", "ld",
    "learning", "training", "managers", "leads",
})
_TITLES: Final = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof", "sir", "dame"})


def is_group(name: Any, email: Any = "") -> bool:
    """Whether a recipient is a team or a list: a display name with a team word, or a role address."""
    words = re.findall(r"[\w&]+", str(name or "").lower())
    if any(w in _GROUP_WORDS for w in words):
        return True
    local = str(email or "").split("@", 1)[0].lower()
    if local in _GROUP_LOCALS or re.search(r"(^|[._-])(team|staff|all|list)$|^(all|team)[._-]", local):
        return True
    if words:  # a person's name wins over an address that only looks like a role ("priya.ops@")
        return False
    return any(part in _GROUP_LOCALS for part in re.split(r"[._+-]", local))


def _first_name(name: str) -> str:
    text = name.strip()
    if "," in text:  # "Smith, Dana"
        last, _, given = text.partition(",")
        text = given.strip() or last.strip()
    words = [w for w in text.split() if w.lower().rstrip(".") not in _TITLES]
    return words[0] if words else ""


def greeting_name(people: Iterable[tuple[str, str]]) -> str:
    """Who ``Hello …,`` greets: the person's first name when there is one recipient, ``team`` for a
    team or list address or several recipients, ``there`` when the one person has no name."""
    distinct: dict[str, str] = {}
    for name, email in people:
        distinct.setdefault(str(email or "").strip().lower() or str(name), str(name or ""))
    if len(distinct) > 1:
        return "team"
    if not distinct:
        return "there"
    [(email, name)] = distinct.items()
    if is_group(name, email):
        return "team"
    return _first_name(name) or "there"


# --- plurals and articles ------------------------------------------------------------------------

_AN_EXCEPTIONS = ("one", "once", "uni", "use", "usu", "eu")  # a one-off, a unit, a user, a usual, a euro


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 request``, ``2 requests``, ``0 requests``; ``many`` for an irregular plural
    (``plural(2, "reply", "replies")``)."""
    return f"{count:,} {noun if count == 1 else (many or noun + 's')}"


def article(word: str) -> str:
    """``a`` or ``an`` for ``word`` (by its spelling: "an acknowledged", "a received", "a user")."""
    lower = word.lower()
    if lower[:1] in ("a", "e", "i", "o", "u") and not lower.startswith(_AN_EXCEPTIONS):
        return "an"
    return "a"


def with_article(word: str) -> str:
    """``an acknowledged``, ``a received``."""
    return f"{article(word)} {word}"


def day(value: Any) -> str:
    """A date for people: ``13 Mar 2026`` (a ``date``, or an ISO date string)."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return str(value)
    return f"{value.day} {value.strftime('%b %Y')}" if isinstance(value, date) else str(value)
