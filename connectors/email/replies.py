"""Understanding replies: which request a mail belongs to, and what it says.

Pure functions, no I/O. ``match_request`` links an inbound message to a
request by its In-Reply-To/References (against the Message-IDs ldflow sent -
the caller looks them up in ``outbox.message_id``) and by the ``[ldflow #N]``
subject tag. ``interpret_reply`` reads the first meaningful line of the reply
(quoted text, signatures and "On … wrote:" lines ignored):

* ``approve`` / ``approved`` / ``yes, approved`` / ``I approve`` → plan approval;
* a number (``4``, ``4.5``, ``72%``, ``4/5``, ``4 - much better``) → a survey result,
  with the rest of the line and the following lines as an optional note;
* anything else → a note.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from connectors.email.inbound import InboundMessage
from connectors.email.tokens import invites_reply, parse_code, reply_code, same_code
from connectors.ports import OutboxRow

__all__ = [
    "IssuedCode",
    "ReplyIntent",
    "RequestMatch",
    "first_meaningful_lines",
    "interpret_reply",
    "issued_codes",
    "match_request",
]

IntentKind = Literal["approve", "survey_result", "note"]

_APPROVE_RE = re.compile(
    r"^(?:(?:yes|ok|okay)[\s,.!-]*)?(?:i\s+)?(?:approve|approved)(?:\s+(?:it|this|the plan))?"
    r"(?:[\s,.!;:-]+(?:thanks|thank you|many thanks|cheers)(?:\s+\w+)?)?[\s.!]*$",
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(
    r"^\s*(?P<value>[-+]?\d+(?:[.,]\d+)?)\s*(?P<unit>%|/\s*\d+(?:[.,]\d+)?)?"
    r"(?:(?:\s*[:;,.)]|\s+[-\u2013\u2014]|\s)\s*(?P<note>.*))?\s*$"
)
_ATTRIBUTION_RE = re.compile(
    r"^(on\s.+wrote:?|le\s.+a\s+écrit\s*:?|am\s.+schrieb.*:?|-+\s*original message\s*-+|from:\s.+|"
    r"sent from my .+|get outlook for .+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ReplyIntent:
    """What a reply asks for: ``kind`` plus the value/note it carries."""

    kind: IntentKind
    value: Decimal | None = None
    note: str = ""
    first_line: str = ""


@dataclass(frozen=True)
class RequestMatch:
    """The request a message belongs to and how that was decided."""

    request_id: int
    by: Literal["thread", "subject_tag"]
    in_reply_to_key: str | None = None  # the outbox key of the message answered, when known


def first_meaningful_lines(body: str) -> list[str]:
    """The reply's own lines: quoting, attribution lines and the signature cut off."""
    lines: list[str] = []
    for raw in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if line.startswith(">"):
            if lines:
                break  # quoted text after the reply: the reply is over
            continue  # top-quoted text: skip it
        if line in ("--", "-- ", "__"):
            break  # signature delimiter
        if _ATTRIBUTION_RE.match(line):
            break
        if not line and not lines:
            continue
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def interpret_reply(body: str) -> ReplyIntent:
    """Decide what a reply says (see the module docstring)."""
    lines = first_meaningful_lines(body)
    if not lines:
        return ReplyIntent(kind="note", note="")
    first = lines[0]
    rest = "\n".join(lines[1:]).strip()
    if _APPROVE_RE.match(first):
        return ReplyIntent(kind="approve", note=rest, first_line=first)
    number = _NUMBER_RE.match(first)
    if number:
        try:
            value = Decimal(number.group("value").replace(",", "."))
        except InvalidOperation:
            value = None
        if value is not None and value.is_finite():
            inline = (number.group("note") or "").strip()
            unit = (number.group("unit") or "").replace(" ", "")
            note_parts = [p for p in (inline, rest) if p]
            note = "\n".join(note_parts)
            if unit and unit != "%":
                note = f"(on a scale of {unit.lstrip('/')}) {note}".strip()
            return ReplyIntent(kind="survey_result", value=value, note=note, first_line=first)
    return ReplyIntent(kind="note", note="\n".join(lines).strip(), first_line=first)


def interpret_answers(body: str, count: int) -> list[tuple[Decimal, str]]:
    """A reply to a survey of ``count`` questions: one number a line, in the questions' order (a line may
    start "2:" or "Q2:"); each with the note on its line. Stops at the first line that is not an answer."""
    out: list[tuple[Decimal, str]] = []
    for line in first_meaningful_lines(body)[:count]:
        line = re.sub(r"^\s*q?\d+\s*[:.)]\s+(?=[-+]?\d)", "", line, flags=re.IGNORECASE)
        number = _NUMBER_RE.match(line)
        if not number:
            break
        try:
            value = Decimal(number.group("value").replace(",", "."))
        except InvalidOperation:
            break
        if not value.is_finite():
            break
        out.append((value, (number.group("note") or "").strip()))
    return out


def match_request(
    message: InboundMessage,
    lookup_sent: Callable[[Iterable[str]], Mapping[str, tuple[int, str]]],
) -> RequestMatch | None:
    """The request ``message`` belongs to, or None.

    ``lookup_sent(message_ids)`` returns, for those of the given Message-IDs
    that ldflow sent, ``{message_id: (request_id, outbox_key)}`` (e.g. a
    query on ``outbox.message_id``). The thread wins over the subject tag:
    the tag may have been edited, the References header rarely is. When the
    thread names no known message, a ``[ldflow #N]`` tag decides.
    """
    candidates = message.thread_ids
    if candidates:
        known = lookup_sent(candidates)
        for mid in candidates:  # In-Reply-To first, then the newest reference
            if mid in known:
                request_id, key = known[mid]
                return RequestMatch(request_id=request_id, by="thread", in_reply_to_key=key)
    if message.request_tag is not None:
        return RequestMatch(request_id=message.request_tag, by="subject_tag")
    return None


@dataclass(frozen=True)
class IssuedCode:
    """A reply code ldflow issued: the outbox row of the mail that carried it and to whom it went."""

    code: str
    row: OutboxRow
    recipient: str  # as the mail was addressed (compare case-insensitively)


def issued_codes(codes: Iterable[str], rows_of: Callable[[int], list[OutboxRow]], key: bytes) -> list[IssuedCode]:
    """Those of ``codes`` that ldflow issued, each with its mail and recipient.

    ``rows_of(request_id)`` gives the outbox rows of a request (``OutboxLog.for_request``); the code's
    request id says which request's rows to try, and the HMAC over each row's key and recipient
    decides (compared in constant time). At most 20 codes are tried."""
    found: list[IssuedCode] = []
    cache: dict[int, list[OutboxRow]] = {}
    for code in list(dict.fromkeys(codes))[:20]:
        request_id = parse_code(code)
        if request_id is None:
            continue
        if request_id not in cache:
            cache[request_id] = [r for r in rows_of(request_id) if invites_reply(r.template)]
        for row in cache[request_id]:
            for person in row.notification.to:
                if same_code(reply_code(key, row.key, request_id, person.email), code):
                    found.append(IssuedCode(code, row, person.email))
    return found
