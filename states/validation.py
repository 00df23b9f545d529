"""Turning raw input (flags, YAML, JSON, e-mail) into domain models, with errors that name the field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from states.errors import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)


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
