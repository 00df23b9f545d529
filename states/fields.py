"""The field types every input model is built from: a strict e-mail address, a single line, a text,
and the base ``Model`` (frozen, unknown fields refused, no NaN/Infinity). Text that may reach a mail
header keeps the mail layer's rules (``states/headers.py``); a stored document is read back without
them (``states.validation.from_store``)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from states.headers import address_problem, header_text_problem
from states.validation import from_store

# A deliberately strict address: one addr-spec, no display name, comments,
# quotes, angle brackets, commas, whitespace or control characters.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _email(value: str, info: ValidationInfo) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a plain e-mail address such as alice@example.org")
    problem = None if from_store(info) else address_problem(value)  # the mail layer's rules (states/headers.py)
    if problem is not None:
        raise ValueError(f"{value!r}: {problem}")
    return value.lower()


def single_line(value: str) -> str:
    if _CONTROL.search(value) or header_text_problem(value):
        raise ValueError("must be a single line without control characters (CR, LF, NUL, tab, "
                         "U+0085, U+2028, U+2029)")
    return value.strip()


def _line(value: str, info: ValidationInfo) -> str:
    return value.strip() if from_store(info) else single_line(value)


Email = Annotated[str, AfterValidator(_email)]
Line = Annotated[str, Field(max_length=300), AfterValidator(_line)]
Text = Annotated[str, Field(max_length=20_000)]


class Model(BaseModel):
    # allow_inf_nan=False: NaN/Infinity (JSON "NaN", YAML .inf) would be stored as null and make the
    # request unreadable.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True, allow_inf_nan=False)


class Person(Model):
    name: Line = Field(min_length=1)
    email: Email
    role: Line = ""
