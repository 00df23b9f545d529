"""The one set of rules for text that will reach a mail header (pure, no pydantic).

A title becomes a subject, a name a display name, an address an envelope recipient: the input
models (``states/models.py``) apply these functions at intake and ``connectors.email.addresses``
applies the same ones before the wire, so nothing is accepted at the door that the mail layer
would refuse later.
"""

from __future__ import annotations

import re

__all__ = ["ENCODED_WORD", "HEADER_FORBIDDEN", "address_problem", "header_text_problem"]

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
