"""The field types every input model is built from: a strict e-mail address, a single line, a text,
and the base ``Model`` (frozen, unknown fields refused, no NaN/Infinity)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# A deliberately strict address: one addr-spec, no display name, comments,
# quotes, angle brackets, commas, whitespace or control characters.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a plain e-mail address such as alice@example.org")
    return value.lower()


def single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters (CR, LF, NUL, tab)")
    return value.strip()


Email = Annotated[str, AfterValidator(_email)]
Line = Annotated[str, Field(max_length=300), AfterValidator(single_line)]
Text = Annotated[str, Field(max_length=20_000)]


class Model(BaseModel):
    # allow_inf_nan=False: NaN/Infinity (JSON "NaN", YAML .inf) would be stored as null and make the
    # request unreadable.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True, allow_inf_nan=False)
