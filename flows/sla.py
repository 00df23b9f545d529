"""The SLA policy in force (``LDFLOW_SLA_POLICY`` or the built-in one) and the breaches of stored requests.

:func:`load_policy` reads the policy file and its holidays file through :mod:`connectors.loader`
(bad input: ``InvalidInput`` naming the field, exit 2); :func:`request_breaches` walks one request's
stored history with :func:`states.sla.breaches`. Nothing is cached and nothing is stored: a changed
policy recomputes every past clock on the next read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.loader import load_file
from states import sla
from states.business_calendar import BusinessCalendar, calendar, parse_holidays
from states.errors import FieldError, InvalidInput, LdflowError
from states.validation import parse

if TYPE_CHECKING:
    from connectors.ports import AuditRecord
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
