"""Turning raw input (flags, YAML, JSON, e-mail) into domain models, with errors that name the field.

Also the one set of rules for text that will reach a mail header (a title becomes a subject, a
name a display name, an address an envelope recipient): the pydantic models apply them at intake
and ``connectors.email.addresses`` applies the same functions before the wire, so nothing is
accepted at the door that the mail layer would refuse later.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from states.errors import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)

#: Never in a header: C0 controls except TAB, DEL, the C1 controls (U+0080–U+009F, among them
#: U+0085 NEXT LINE) and the Unicode line and paragraph separators (U+2028, U+2029), which some mail
#: software treats as line breaks.
HEADER_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
#: An RFC 2047 encoded-word (``=?charset?Q?…?=``): a decoder would turn it into other characters.
ENCODED_WORD = re.compile(r"=\?.*?\?=", re.DOTALL)


def header_text_problem(value: str) -> str | None:
    """Why ``value`` cannot go into a mail header (a control or line-separator character), or None."""
    match = HEADER_FORBIDDEN.search(value)
    if match is None:
        return None
    return f"contains a control character ({match.group()!r}) at position {match.start()}"


def address_problem(value: str) -> str | None:
    """Why the addr-spec ``value`` cannot be an envelope address beyond its syntax, or None: a control
    character, or an RFC 2047 encoded-word in the local part (mail software may decode it into a
    different address)."""
    problem = header_text_problem(value)
    if problem is not None:
        return problem
    local = value.rpartition("@")[0]
    if ENCODED_WORD.search(local):
        return "an RFC 2047 encoded-word (=?…?=) in the local part is not a plain address"
    return None


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
