"""Strict validation of addresses and header values: the last line before the wire.

Every address that goes into a header or an SMTP envelope passes
``validate_address`` and every display name or subject passes
``validate_header_text``. Both refuse CR, LF, NUL and other control
characters (header injection) and ``validate_address`` accepts exactly one
plain ``local@domain`` addr-spec: no display name, no comment, no group, no
second address, no quoted local part, no domain literal. That rules out the
CVE-2023-27043 shapes (``alice@example.org(<bob@example.com>``) where
Python's lenient parser may read a different address than a mail server.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address

from states.headers import HEADER_FORBIDDEN, address_problem

__all__ = [
    "HeaderValueError",
    "InvalidAddressError",
    "make_address",
    "validate_address",
    "validate_header_text",
]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_ADDR_SPEC = re.compile(rf"{_LOCAL}@{_DOMAIN}")
# The one rule set, shared with the intake models (states/validation.py): C0 controls except TAB,
# DEL, C1 controls (U+0085 among them) and the Unicode line/paragraph separators.
_FORBIDDEN = HEADER_FORBIDDEN


class HeaderValueError(ValueError):
    """A header value that must not go on the wire; ``field`` names the header."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidAddressError(HeaderValueError):
    """An e-mail address that is not exactly one plain addr-spec."""


def _describe_control(value: str) -> str:
    match = _FORBIDDEN.search(value)
    assert match is not None
    return f"contains a control character ({match.group()!r}) at position {match.start()}"


def validate_header_text(field: str, value: str, *, max_length: int = 900) -> str:
    """Return ``value`` if it is safe as an unstructured header (subject, name).

    Raises ``HeaderValueError`` naming ``field`` for CR, LF, NUL or other
    control characters, or for a value longer than ``max_length``. Non-ASCII
    text is fine: the message policy encodes it (RFC 2047).
    """
    if not isinstance(value, str):
        raise HeaderValueError(field, f"expected text, got {type(value).__name__}")
    if _FORBIDDEN.search(value):
        raise HeaderValueError(field, _describe_control(value))
    if len(value) > max_length:
        raise HeaderValueError(field, f"is {len(value)} characters long (at most {max_length})")
    return value


def validate_address(field: str, value: str) -> str:
    """Return the addr-spec if ``value`` is exactly one plain ``local@domain``.

    Surrounding whitespace is ignored; everything else that a lenient parser
    would "fix" (comments, display names, a second address, quoting) is
    refused with an ``InvalidAddressError`` naming ``field``.
    """
    if not isinstance(value, str):
        raise InvalidAddressError(field, f"expected text, got {type(value).__name__}")
    if _FORBIDDEN.search(value):
        raise InvalidAddressError(field, _describe_control(value))
    candidate = value.strip()
    if not candidate:
        raise InvalidAddressError(field, "is empty")
    if len(candidate) > 254:
        raise InvalidAddressError(field, f"is {len(candidate)} characters long (at most 254)")
    if not _ADDR_SPEC.fullmatch(candidate):
        raise InvalidAddressError(
            field,
            f"{candidate!r} is not a single plain address of the form local@domain "
            "(no display name, comment, quoting, second address or non-ASCII characters)",
        )
    local, _, domain = candidate.partition("@")
    problem = address_problem(candidate)
    if problem is not None:
        raise InvalidAddressError(field, f"{candidate!r}: {problem}")
    if len(local) > 64:
        raise InvalidAddressError(field, "local part is longer than 64 characters")
    # Second opinion from the standard library's strict RFC 5322 parser: it
    # must read back exactly the same address.
    try:
        parsed = Address(addr_spec=candidate)
    except (ValueError, HeaderParseError, IndexError) as exc:
        raise InvalidAddressError(field, f"{candidate!r} does not parse: {exc}") from exc
    if parsed.addr_spec != candidate or parsed.username != local or parsed.domain != domain:
        raise InvalidAddressError(field, f"{candidate!r} parses as {parsed.addr_spec!r}")
    return candidate


def make_address(field: str, name: str, email: str) -> Address:
    """A validated ``Address`` for a header: display name checked, address strict."""
    addr_spec = validate_address(field, email)
    display = validate_header_text(f"{field} name", name or "", max_length=200).strip()
    local, _, domain = addr_spec.partition("@")
    return Address(display_name=display, username=local, domain=domain)
