"""Parsing inbound mail into a small, safe summary - or a quarantine verdict.

``parse_message(raw)`` never raises on bad input: whatever it cannot read
becomes a defect, and a message with a *fatal* defect (missing or broken
MIME boundaries, an undecodable charset, nesting deeper than allowed, a part
or message over the size limits, no usable From address) comes back with
``quarantine`` set and the reasons listed. Cheap checks run before the full
parse, so even a 30 MB or deeply nested message is judged in well under a
second or two.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass, field
from email import errors as email_errors
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import cast

from connectors.email.addresses import HeaderValueError, validate_address
from connectors.email.config import InboundLimits

__all__ = [
    "InboundItem",
    "InboundMessage",
    "InboundRef",
    "html_to_text",
    "parse_message",
    "parse_request_tag",
]

_TAG_RE = re.compile(r"\[ldflow #(\d{1,12})\]", re.IGNORECASE)
_MSGID_RE = re.compile(r"<[^<>\s]+>")
_MULTIPART_RE = re.compile(rb"(?im)^content-type:[ \t]*multipart/")

# Defects that mean the structure cannot be trusted: what we would read is a guess.
_FATAL_DEFECTS: tuple[type[email_errors.MessageDefect], ...] = (
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.FirstHeaderLineIsContinuationDefect,
    email_errors.MissingHeaderBodySeparatorDefect,
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64LengthDefect,
)


@dataclass(frozen=True)
class InboundMessage:
    """What ldflow needs from an inbound e-mail.

    ``message_id`` is the Message-ID header, or - when a message has none -
    a stable substitute derived from its bytes (``<sha256…@content.ldflow>``),
    so every message can be recorded and de-duplicated. ``quarantine`` is
    true when the message must not be acted upon; ``defects`` says why (and
    lists harmless oddities too).
    """

    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_address: str
    from_name: str
    subject: str
    request_tag: int | None
    body_text: str
    date: str | None
    size: int
    sha256: str
    defects: tuple[str, ...] = ()
    quarantine: bool = False
    attachments: tuple[str, ...] = field(default=())
    #: the values of every Authentication-Results header, top (newest) first (``authresults``)
    auth_results: tuple[str, ...] = field(default=())
    #: the values of To, Cc, Delivered-To, X-Original-To: where a plus-addressed reply code comes back
    addressed_to: tuple[str, ...] = field(default=())

    @property
    def reason(self) -> str:
        """The defects as one line, for the quarantine record."""
        return "; ".join(self.defects)

    @property
    def content_digest(self) -> str:
        """A digest of what the message says (sender, subject, date, thread, text, attachments), not of
        its bytes: two copies of one mail that differ only in ``Received:`` lines have the same one."""
        parts = [self.from_address, self.subject, self.date or "", *self.in_reply_to, "|", *self.references, "|",
                 self.body_text, *self.attachments]
        return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this message answers (In-Reply-To first, then References, newest first)."""
        seen: list[str] = []
        for mid in (*self.in_reply_to, *reversed(self.references)):
            if mid not in seen:
                seen.append(mid)
        return tuple(seen)


@dataclass(frozen=True)
class InboundRef:
    """Where an inbound message came from: enough to tell whether it was seen before."""

    source: str  # "imap:<mailbox>" or "drop:<folder>"
    message_id: str | None
    uidvalidity: int | None = None
    uid: int | None = None
    #: the message's ``content_digest`` when its content is known: a known Message-ID with other
    #: content is not "seen" but quarantined (``connectors.db.inbound``)
    digest: str | None = None

    def conflicting(self) -> InboundRef:
        """The ref a message is recorded under when its Message-ID was seen with other content."""
        assert self.message_id is not None and self.digest is not None
        variant = f"{self.message_id[:250]}#content-{self.digest[:16]}"
        return InboundRef(self.source, variant, self.uidvalidity, self.uid, self.digest)


@dataclass(frozen=True)
class InboundItem:
    """One inbound message (or drop-folder file) handed to the application.

    ``kind`` is ``eml`` for mail, ``json``/``yaml`` for a drop-folder intake
    (then ``intake`` holds the dict and ``message`` is None). ``error`` is
    set when the item must be quarantined for a reason other than MIME
    defects (e.g. unreadable JSON).
    """

    ref: InboundRef
    raw: bytes
    kind: str = "eml"
    message: InboundMessage | None = None
    intake: dict[str, object] | None = None
    error: str | None = None
    path: str | None = None

    @property
    def quarantine_reason(self) -> str | None:
        """Why this item cannot be processed, or None."""
        if self.error:
            return self.error
        if self.message is not None and self.message.quarantine:
            return self.message.reason or "malformed message"
        return None


def parse_request_tag(subject: str) -> int | None:
    """The request id of an ``[ldflow #N]`` subject tag, or None."""
    match = _TAG_RE.search(subject or "")
    return int(match.group(1)) if match else None


class _TextExtractor(HTMLParser):
    _SKIP = {"script", "style", "head", "title"}
    _BREAK = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._quote = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        if tag == "blockquote":
            self._quote += 1
        if tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        if tag == "blockquote" and self._quote:
            self._quote -= 1
        if tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._quote:
            # quoted text in HTML replies: mark it like plain-text quoting
            data = "\n".join("> " + line if line.strip() else line for line in data.split("\n"))
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from HTML (scripts and styles dropped, blockquotes quoted)."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # HTMLParser is lenient; this is belt and braces
        return re.sub(r"<[^>]*>", " ", html)
    text = "".join(extractor.parts)
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _header(msg: Message, name: str, defects: list[str]) -> str:
    try:
        value = msg.get(name)
    except Exception as exc:  # a header the modern policy cannot even parse
        defects.append(f"unreadable {name} header: {type(exc).__name__}")
        return ""
    if value is None:
        return ""
    for defect in getattr(value, "defects", ()):
        defects.append(f"{name} header: {_describe_defect(defect)}")
    return str(value)


def _message_ids(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_MSGID_RE.findall(value or "")))


def _describe_defect(defect: object) -> str:
    text = str(defect).strip()
    name = type(defect).__name__
    return f"{name}: {text}" if text and text != name else name


def _depth_and_parts(msg: Message) -> tuple[int, int]:
    # iterative: a hostile message must not exhaust the Python stack
    deepest, count = 0, 0
    stack: list[tuple[Message, int]] = [(msg, 1)]
    while stack:
        part, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((cast(Message, child), depth + 1) for child in payload)
    return deepest, count


def _summary_only(
    raw: bytes, defects: list[str], sha: str, limits: InboundLimits
) -> InboundMessage:
    """Headers only: for a message too big or too complex to parse in full."""
    try:
        head = BytesHeaderParser(policy=default_policy).parsebytes(raw[: 256 * 1024])
    except Exception as exc:
        defects.append(f"headers unreadable: {type(exc).__name__}")
        head = EmailMessage()
    return _build(head, None, raw, sha, defects, fatal=True)


def parse_message(raw: bytes, limits: InboundLimits | None = None) -> InboundMessage:
    """Parse raw RFC 5322 bytes; never raises for malformed input."""
    limits = limits or InboundLimits()
    sha = hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    if len(raw) > limits.max_message_bytes:
        defects.append(f"message is {len(raw)} bytes, over the limit of {limits.max_message_bytes}")
        return _summary_only(raw, defects, sha, limits)
    multiparts = len(_MULTIPART_RE.findall(raw))
    if multiparts > limits.max_parts:
        defects.append(f"too many nested multipart containers ({multiparts})")
        return _summary_only(raw, defects, sha, limits)
    try:
        msg = BytesParser(policy=default_policy).parsebytes(raw)
    except RecursionError:
        defects.append("MIME nesting too deep to parse")
        return _summary_only(raw, defects, sha, limits)
    except Exception as exc:  # the parser is meant not to raise; never trust that
        defects.append(f"unparseable message: {type(exc).__name__}: {exc}")
        return _summary_only(raw, defects, sha, limits)
    fatal = False
    depth, parts = _depth_and_parts(msg)
    if depth > limits.max_depth:
        defects.append(f"MIME nesting {depth} levels deep (limit {limits.max_depth})")
        fatal = True
    if parts > limits.max_parts:
        defects.append(f"{parts} MIME parts (limit {limits.max_parts})")
        fatal = True
    for part in msg.walk():
        if part.get_content_maintype() == "text" and not part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, str) and len(payload) <= limits.max_part_bytes:
                part.get_payload(decode=True)  # records transfer-encoding defects (bad base64) on the part
        for defect in part.defects:
            defects.append(_describe_defect(defect))
            if isinstance(defect, _FATAL_DEFECTS):
                fatal = True
        if not part.is_multipart():
            payload = part.get_payload()
            size = len(payload) if isinstance(payload, str | bytes) else 0
            if size > limits.max_part_bytes:
                defects.append(
                    f"{part.get_content_type()} part of {size} bytes, over the limit of {limits.max_part_bytes}"
                )
                fatal = True
    return _build(msg, msg if not fatal else None, raw, sha, defects, fatal=fatal)


def _decode_text(part: EmailMessage, defects: list[str]) -> str | None:
    """The text of a text/* part, strictly decoded; None (with a defect) if impossible."""
    charset = part.get_content_charset() or "us-ascii"
    try:
        codecs.lookup(charset)
    except LookupError:
        defects.append(f"unknown charset {charset!r} in {part.get_content_type()} part")
        return None
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode(charset)
    except UnicodeDecodeError as exc:
        if charset.lower() in ("us-ascii", "ascii"):
            # very common: 8-bit text labelled us-ascii; UTF-8 is the honest guess
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError:
                pass
        defects.append(f"{part.get_content_type()} part is not valid {charset}: {exc.reason} at byte {exc.start}")
        return None


def _build(
    head: EmailMessage | Message,
    body_msg: EmailMessage | None,
    raw: bytes,
    sha: str,
    defects: list[str],
    *,
    fatal: bool,
) -> InboundMessage:
    message_id_raw = _header(head, "Message-ID", defects)
    ids = _message_ids(message_id_raw)
    message_id = ids[0] if ids else f"<{sha[:40]}@content.ldflow>"
    subject = _header(head, "Subject", defects).strip()
    from_ok, from_name, from_address = _sender(head, defects)
    if not from_ok:
        fatal = True
    date_value = _header(head, "Date", defects)
    date_iso: str | None = None
    if date_value:
        try:
            date_iso = parsedate_to_datetime(date_value).isoformat()
        except (TypeError, ValueError, IndexError):
            defects.append(f"unparseable Date {date_value[:60]!r}")

    body_text = ""
    attachments: list[str] = []
    if body_msg is not None:
        for part in body_msg.walk():
            is_text = part.get_content_maintype() == "text" and not part.is_attachment()
            if is_text and _decode_text(part, defects) is None:
                fatal = True
            if part.is_attachment():
                attachments.append(part.get_filename() or part.get_content_type())
        if not fatal:
            body_text = _body_text(body_msg, defects)

    return InboundMessage(
        message_id=message_id,
        in_reply_to=_message_ids(_header(head, "In-Reply-To", defects)),
        references=_message_ids(_header(head, "References", defects)),
        from_address=from_address,
        from_name=from_name.strip(),
        subject=subject,
        request_tag=parse_request_tag(subject),
        body_text=body_text,
        date=date_iso,
        size=len(raw),
        sha256=sha,
        defects=tuple(dict.fromkeys(defects)),
        quarantine=fatal,
        attachments=tuple(attachments),
        auth_results=_all_values(head, ("Authentication-Results",)),
        addressed_to=_all_values(head, ("To", "Cc", "Delivered-To", "X-Original-To")),
    )


def _all_values(head: EmailMessage | Message, names: tuple[str, ...], limit: int = 50) -> tuple[str, ...]:
    """The values of every header named in ``names`` (at most ``limit``, each at most 8000 characters);
    a value the parser cannot read is left out."""
    found: list[str] = []
    for name in names:
        try:
            values = head.get_all(name) or []
        except Exception:  # a header the modern policy cannot parse: not one we can rely on
            continue
        for value in values:
            try:
                text = str(value)
            except Exception:
                continue
            found.append(text[:8000])
    return tuple(found[:limit])


def _sender(head: EmailMessage | Message, defects: list[str]) -> tuple[bool, str, str]:
    """(usable, display name, address) of the From header, strictly.

    The header is parsed by the modern policy; any defect in it (an unclosed
    comment as in CVE-2023-27043, a second address, a group) makes the
    sender unusable: we would not know who really wrote the message.
    """
    try:
        header = head.get("From")
    except Exception as exc:
        defects.append(f"unreadable From header: {type(exc).__name__}")
        return False, "", ""
    if header is None:
        defects.append("missing From header")
        return False, "", ""
    header_defects = list(getattr(header, "defects", ()))
    if header_defects:
        defects.extend(f"From header: {_describe_defect(d)}" for d in header_defects)
        return False, "", ""
    addresses = list(getattr(header, "addresses", ()))
    if len(addresses) != 1:
        defects.append(f"From header holds {len(addresses)} addresses, not one")
        return False, "", ""
    try:
        address = validate_address("From", addresses[0].addr_spec)
    except HeaderValueError as exc:
        defects.append(str(exc))
        return False, "", ""
    return True, str(addresses[0].display_name or "").strip(), address


def _body_text(msg: EmailMessage, defects: list[str]) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _decode_text(cast(EmailMessage, part), defects) or ""
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return text.replace("\r\n", "\n").strip()
