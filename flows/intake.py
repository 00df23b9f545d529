"""What an inbound item becomes: a new request (a drop-folder intake, a request mailed in as YAML or
in plain words) or a reply acted on (a plan approval, a survey answer, a note).

:class:`InboundHandler` runs inside the transaction that records the item
(``connectors.db.inbound.ingest``), through the request service bound to that transaction, so the
record and the change it causes commit together. What cannot be acted on raises ``Quarantine``
with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from connectors.db.inbound import Handled, Quarantine
from connectors.email.addresses import HeaderValueError, validate_address
from connectors.email.authresults import check_sender
from connectors.email.inbound import InboundItem, InboundMessage
from connectors.email.replies import first_meaningful_lines, match_request
from connectors.email.tokens import find_codes
from connectors.loader import parse_mapping
from connectors.ports import InboundStatus, Transaction
from flows.replies import MailTrust, ReplyHandler, checkpoint_of
from flows.service import Service
from states.errors import LdflowError

__all__ = ["INTAKE_FIELDS", "InboundHandler", "MailTrust", "checkpoint_of", "intake_from_mail", "plain_request",
           "thread_of"]

INTAKE_FIELDS = ("title", "requester", "sponsor", "stakeholders", "requested_solution", "business_goal",
                 "audience", "why_now", "tried_already")
_REPLY_PREFIX = r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|tr|antw)\s*(?:\[\d+\])?\s*:\s*)+"
MAX_MAILED_SOLUTION = 4000
_UNMATCHED = "not a reply to a message ldflow sent (no known In-Reply-To/References or [ldflow #N] tag)"


def intake_from_mail(message: InboundMessage) -> tuple[dict[str, Any], str | None]:
    """A new request mailed in: ``(intake data, note for the history or None)``; raises ``Quarantine``.

    A body that is a YAML mapping with intake field names (``sponsor:``, ``requested_solution:`` …) is
    read as a YAML intake, with the one input loader (plain mappings, no aliases: no "billion
    laughs"); the sender is the requester and the subject the title unless the YAML says otherwise.
    Any other body is a request in plain words: title from the subject, the sender as requester and
    (until ops correct it) sponsor, the body (quoted text and signature cut off) as what was asked for.
    """
    body = message.body_text or ""
    pattern = r"^(?:" + "|".join(INTAKE_FIELDS) + r")\s*:"
    data: dict[str, Any] = {}
    if re.search(pattern, body, re.MULTILINE):
        try:
            data = parse_mapping(body, f"e-mail {message.message_id}", "yaml")
        except LdflowError as exc:
            detail = "; ".join(str(e) for e in getattr(exc, "errors", [])) or str(exc)
            if "aliases" in detail or "levels deep" in detail:  # refused, as in the drop folder
                raise Quarantine(f"the body looks like a YAML intake but cannot be read: {detail}") from None
            data = {}  # not YAML after all: a request in plain words that happens to hold "field: …" lines
        if set(data) & set(INTAKE_FIELDS):
            data.setdefault("title", message.subject)
            data.setdefault("requester", {"name": message.from_name or message.from_address,
                                          "email": message.from_address})
            return data, None
    return plain_request(message, re.sub(_REPLY_PREFIX, "", message.subject or "", flags=re.IGNORECASE))


def _line(value: str, limit: int) -> str:
    """One line of at most ``limit`` characters (control and line-separator characters become spaces)."""
    value = " ".join(re.sub(r"[\x00-\x1f\x7f\u0085\u2028\u2029]", " ", value).split())
    return value if len(value) <= limit else value[:limit - 3].rstrip() + "..."


def plain_request(message: InboundMessage, subject: str) -> tuple[dict[str, Any], str]:
    """A request in plain words (see :func:`intake_from_mail`)."""
    try:
        address = validate_address("From", message.from_address or "")
    except HeaderValueError as exc:
        raise Quarantine(f"{_UNMATCHED}, and no usable sender to take it in as a new request: {exc}") from None
    text = "\n".join(first_meaningful_lines(message.body_text or "")).strip()
    if not text:
        raise Quarantine(f"{_UNMATCHED}, and its body is empty (after quoted text and signature): nothing to "
                         "take in as a new request")
    if len(text) > MAX_MAILED_SOLUTION:
        text = text[:MAX_MAILED_SOLUTION].rstrip() + " [...]"
    name = _line(message.from_name or "", 120) or address.split("@", 1)[0]
    title = _line(subject, 200)
    if len(title) < 3:
        title = _line(f"Request from {name}", 200)
    person = {"name": name, "email": address}
    data = {"title": title, "requester": person, "sponsor": dict(person), "requested_solution": text}
    note = (f"Received by e-mail from {name} <{address}> (Message-ID {message.message_id}), subject "
            f"{_line(message.subject or '', 200)!r}. The requester is recorded as sponsor until the partner "
            "conversation names the real sponsor.")
    return data, note


def thread_of(message: InboundMessage) -> tuple[str, ...]:
    """The thread an answer to ``message`` belongs to: its References, then its own Message-ID (none
    when it had no Message-ID and ldflow made one up from its bytes)."""
    if message.message_id.endswith("@content.ldflow>"):
        return ()
    return (*message.references[-9:], message.message_id)


class InboundHandler:
    """What to do with one inbound item, inside the transaction that records it.

    New requests are submitted as ``actor``; a reply acts as its sender, when it counts
    (``flows.replies``). A mailed-in request is acknowledged only when ``trust`` says its sender is
    authenticated or of a trusted domain; otherwise it is taken in all the same, without the mail
    that would quote its text back to whoever the From header names. ``created`` lists the ids of
    the requests submitted (including any whose transaction then rolled back), ``acknowledged`` those
    of them whose acknowledgement was queued."""

    def __init__(self, service: Service, actor: str, trust: MailTrust | None = None) -> None:
        self.service = service
        self.actor = actor
        self.trust = trust or MailTrust()
        self.created: list[int] = []
        self.acknowledged: list[int] = []

    def __call__(self, tx: Transaction, item: InboundItem) -> Handled:
        service = self.service.within(tx)
        if item.kind in ("json", "yaml"):
            return self._submit(service, dict(item.intake or {}), Path(item.path).name if item.path else "drop folder")
        message = item.message
        if message is None:
            raise Quarantine(f"a {item.kind} item without a readable message")
        check = check_sender(message.auth_results, self.trust.authserv_ids, message.from_address)
        codes = find_codes(message.thread_ids, message.addressed_to, message.body_text)
        match = match_request(message, tx.outbox.sent_as)
        if match is None and not codes:
            data, note = intake_from_mail(message)
            acknowledge = self.trust.may_acknowledge(message.from_address, check)
            if not acknowledge:
                why = ("our mail server reports " + "; ".join(check.failures) if check.failed else
                       "the sender is neither authenticated by our mail server nor of a trusted domain")
                note = f"{note or 'Received by e-mail.'} No acknowledgement was sent: {why}."
            return self._submit(service, data, f"e-mail {message.message_id}", note,
                                f"e-mail from {message.from_address}", thread_of(message), acknowledge)
        return ReplyHandler(service, tx, self.trust, self.actor)(message, match, codes, check)

    def _submit(self, service: Service, data: dict[str, Any], source: str, note: str | None = None,
                note_source: str = "", thread: tuple[str, ...] = (), acknowledge: bool = True) -> Handled:
        try:
            request = service.submit(data, self.actor, source=source, note=note, note_source=note_source,
                                     thread=thread, acknowledge=acknowledge)
        except LdflowError as exc:
            raise Quarantine(str(exc)) from None
        assert request.id is not None
        self.created.append(request.id)
        if acknowledge:
            self.acknowledged.append(request.id)
        return Handled(InboundStatus.PROCESSED, request.id)
