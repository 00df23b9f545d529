"""Turning raw input (flags, YAML, JSON, e-mail) into domain models, with errors that name the field.

Also the bounded number types (a documented range per kind of field) the input models use. The
rules for text that reaches a mail header are in :mod:`states.headers`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError, ValidationInfo

from states.errors import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)

# --- bounded numbers: a documented range per kind of field ---------------------------------------------

#: Pass as ``context`` when reading a stored document back: the bounds below (and the header rules)
#: are checked on input only, so a value stored before a bound existed never makes a request unreadable.
STORED: dict[str, bool] = {"stored": True}

#: Metric values (a business goal's current and target value, a plan item's baseline and target, a
#: checkpoint's result): at most a trillion either way.
MAX_MEASURE = 1e12
#: Money (a programme's cost): from one cent to a trillion.
MIN_MONEY, MAX_MONEY = 0.01, 1e12
#: The monetary value of one unit of improvement: 0 to a billion.
MAX_VALUE_PER_UNIT = 1e9
#: Head counts (audience size, audience reached): 0 to a billion.
MAX_COUNT = 1_000_000_000


#: Ids, versions, pages and offsets are 64-bit integers in the database.
MAX_INT64 = 2**63 - 1


def from_store(info: ValidationInfo | None) -> bool:
    """True while a stored document is read back (``context=STORED``)."""
    return bool(info is not None and isinstance(info.context, dict) and info.context.get("stored"))


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _bounds(low: float, high: float) -> AfterValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None or from_store(info):
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        if not low <= value <= high:
            raise ValueError(f"must be between {_number(low)} and {_number(high)}")
        return value

    return AfterValidator(check)


#: A metric value, within ±:data:`MAX_MEASURE`.
Measure = Annotated[float, _bounds(-MAX_MEASURE, MAX_MEASURE)]
#: An amount of money, :data:`MIN_MONEY` to :data:`MAX_MONEY`.
Money = Annotated[float, _bounds(MIN_MONEY, MAX_MONEY)]
#: The value of one unit of improvement, 0 to :data:`MAX_VALUE_PER_UNIT`.
ValuePerUnit = Annotated[float, _bounds(0.0, MAX_VALUE_PER_UNIT)]
#: A head count, 0 to :data:`MAX_COUNT`.
Count = Annotated[int, _bounds(0, MAX_COUNT)]


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known field"
    return msg


def parse(model: type[M], data: Any, source: str = "") -> M:
    """Validate ``data`` as ``model`` or raise :class:`InvalidInput` listing every bad field."""
    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        raise InvalidInput([FieldError("", f"expected a mapping of fields, got {type(data).__name__}")], source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [FieldError(_field(tuple(e["loc"])), _message(e)) for e in exc.errors()]
        raise InvalidInput(errors, source) from None
