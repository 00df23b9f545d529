"""Reply codes: the unguessable per-recipient token a mail that invites a reply carries.

A reply counts (a plan approval, a survey answer, a result) only when it carries the code of the
mail it answers. The code is ``ldr-<request id>-<mac>``: ``mac`` is 26 base32 characters (130 bits)
of HMAC-SHA256, keyed with the ``mail-tokens`` secret (``connectors.keys``), over the outbox key
and the recipient's address. Without the key nobody can compute it from what they can guess (the
request id, the outbox key, the address); the request id in front only says where to look.

The code travels three ways, so that it survives whatever the mail client keeps:

* the Message-ID, ``<ldr-42-…@domain>`` (In-Reply-To and References carry it back);
* a plus-addressed Reply-To, ``ld+ldr-42-…@domain`` (the reply's To carries it back);
* a short line in the body, ``Reply code: ldr-42-…`` (a quoted reply carries it back).

Pure functions; the caller gives the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

__all__ = [
    "KEY_NAME",
    "REPLY_TEMPLATES",
    "find_codes",
    "invites_reply",
    "parse_code",
    "plus_address",
    "reply_code",
    "same_code",
]

KEY_NAME = "mail-tokens"
#: The templates whose mails ask for an answer by reply: each recipient gets a mail of their own.
REPLY_TEMPLATES = frozenset({"plan_approval_request", "survey", "survey_reminder", "checkpoint_reminder"})
MAC_CHARS = 26
_CODE_RE = re.compile(r"(?<![a-z0-9])ldr-(\d{1,12})-([a-z2-7]{" + str(MAC_CHARS) + r"})(?![a-z0-9])", re.IGNORECASE)


def invites_reply(template: str) -> bool:
    """Does a mail of ``template`` ask for an answer by reply (and so carry reply codes)?"""
    return template in REPLY_TEMPLATES


def reply_code(key: bytes, outbox_key: str, request_id: int, recipient: str) -> str:
    """The code of the mail ``outbox_key`` for ``recipient`` (the address, compared case-insensitively)."""
    message = f"ldflow-reply-code:v1\0{outbox_key}\0{recipient.strip().lower()}".encode()
    mac = hmac.new(key, message, hashlib.sha256).digest()
    text = base64.b32encode(mac).decode("ascii").lower()[:MAC_CHARS]
    return f"ldr-{int(request_id)}-{text}"


def parse_code(code: str) -> int | None:
    """The request id of a well-formed code, or None."""
    match = _CODE_RE.fullmatch(code.strip())
    return int(match.group(1)) if match else None


def same_code(a: str, b: str) -> bool:
    """Constant-time comparison of two codes (case-insensitive: some servers lower-case local parts)."""
    return hmac.compare_digest(a.strip().lower().encode(), b.strip().lower().encode())


def find_codes(*texts: Iterable[str] | str) -> list[str]:
    """Every well-formed code in ``texts`` (strings or iterables of strings), each once, lower-cased,
    in the order found."""
    found: list[str] = []
    for text in texts:
        for value in ([text] if isinstance(text, str) else text):
            for match in _CODE_RE.finditer(value or ""):
                code = match.group(0).lower()
                if code not in found:
                    found.append(code)
    return found


def plus_address(mail_from: str, code: str) -> str | None:
    """``local+code@domain`` for ``mail_from``, or None when its local part cannot take a tag (it holds
    a ``+`` or quotes already, or the result would be over the 64 characters a local part may have)."""
    local, at, domain = mail_from.rpartition("@")
    if not at or not local or "+" in local or '"' in local:
        return None
    tagged = f"{local}+{code}"
    return f"{tagged}@{domain}" if len(tagged) <= 64 else None
