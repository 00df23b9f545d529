"""Render a ``Notification`` into a ready-to-send ``EmailMessage``.

The message is built with ``email.policy.default`` (the modern, RFC-compliant
policy): multipart/alternative with a plain-text and an HTML body rendered
from editable Jinja2 templates, plus - when the notification carries a
calendar item - a ``text/calendar; method=REQUEST|CANCEL`` alternative (iMIP,
RFC 6047) and the same calendar as an ``invite.ics`` attachment.

Templates are looked up first in ``LDFLOW_TEMPLATES_DIR`` (or the
``templates_dir`` argument) so a team can override any of them, then in the
packaged defaults under ``connectors/email/templates``. A template is a pair
``<name>.txt.j2`` / ``<name>.html.j2``; the HTML environment autoescapes, both
use ``StrictUndefined`` so a missing *required* key fails loudly
(``TemplateContextError``) instead of sending "Dear ,". Optional keys are
written with ``| default(...)`` or ``is defined`` in the templates.

The Message-ID is derived from the outbox key (``message_id_for``), so a
retried send carries the same Message-ID and replies can be matched back; a mail that invites a
reply has its recipient's reply code as Message-ID instead (see ``render``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import jinja2

from connectors.calendar.ics import to_ics, with_organizer
from connectors.email.addresses import (
    HeaderValueError,
    make_address,
    validate_address,
    validate_header_text,
)
from connectors.email.filters import install as install_filters
from connectors.email.tokens import invites_reply, plus_address, reply_code
from states import wording
from states.notifications import CalendarItem, Notification, Recipient

__all__ = [
    "PACKAGED_TEMPLATES",
    "Attachment",
    "TEMPLATE_NAMES",
    "TemplateContextError",
    "message_id_for",
    "parse_request_tag",
    "render",
    "render_bodies",
    "render_document",
    "request_tag",
]

PACKAGED_TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAMES = (
    "intake_acknowledgement",
    "diagnosis_summary",
    "plan_approval_request",
    "survey",
    "survey_reminder",
    "results_report",
    "delivery_invite",
    "checkpoint_reminder",
    "request_cancelled",
    "request_declined",
    "redirect_assigned",
    "plan_changes_requested",
    "checkpoint_missed",
    "companion_assigned",
    "companion_reminder",
    "action_step_assigned",
    "action_step_reminder",
    "request_delivered",
    "checkpoint_needs_review",
)
_TAG_RE = re.compile(r"\[ldflow #(\d+)\]", re.IGNORECASE)


class _Policy(EmailPolicy):
    """``email.policy.default``, except that an ASCII Subject is folded at the spaces between words.

    The stdlib folder moves a whole unstructured value that does not fit after ``Subject:`` but
    would fit on a line of its own onto a continuation line (``Subject:`` alone, the text below:
    any subject of about 70 to 77 characters). Here the first words stay on the ``Subject:`` line
    and each fold is a line break before a space, so unfolding gives back the subject exactly."""

    def fold(self, name: str, value: str) -> str:
        text = str(value)
        if name.lower() != "subject" or not text.isascii() or "=?" in text:
            return str(super().fold(name, value))
        return _fold_at_spaces(name, text, self.max_line_length or 78, self.linesep)

    def fold_binary(self, name: str, value: str) -> bytes:
        text = str(value)
        if name.lower() != "subject" or not text.isascii() or "=?" in text:
            return super().fold_binary(name, value)
        return _fold_at_spaces(name, text, self.max_line_length or 78, self.linesep).encode("ascii")


def _fold_at_spaces(name: str, text: str, width: int, linesep: str) -> str:
    """``Name: text`` in lines of at most ``width`` (a word longer than a line stays whole)."""
    lines, line = [], f"{name}:"
    for word in text.split(" "):
        if word and len(line) + 1 + len(word) > width and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return linesep.join(lines) + linesep


MAIL_POLICY: Final = _Policy()


@dataclass(frozen=True)
class Attachment:
    """A file a mail carries besides its bodies (e.g. the results report as ``application/pdf``)."""

    filename: str
    content_type: str
    data: bytes


class TemplateContextError(ValueError):
    """A template could not be rendered from the notification's context."""


def request_tag(request_id: int) -> str:
    """The subject tag replies are matched by: ``[ldflow #42]``."""
    return f"[ldflow #{int(request_id)}]"


def message_id_for(key: str, domain: str) -> str:
    """The stable Message-ID for an outbox key: ``<sha256(key)[:32]@domain>``."""
    domain = domain.strip()
    # validates the domain with the same strict rules as an address
    validate_address("message-id domain", f"x@{domain}")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


@lru_cache(maxsize=8)
def _environments(override: str | None) -> tuple[jinja2.Environment, jinja2.Environment]:
    search = [str(PACKAGED_TEMPLATES)]
    if override:
        search.insert(0, override)
    loader = jinja2.FileSystemLoader(search)
    envs = []
    for autoescape in (False, True):
        env = jinja2.Environment(
            loader=loader,
            autoescape=autoescape,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        install_filters(env)
        envs.append(env)
    return envs[0], envs[1]


def _templates_dir(explicit: str | os.PathLike[str] | None) -> str | None:
    chosen = explicit if explicit is not None else os.environ.get("LDFLOW_TEMPLATES_DIR") or None
    return str(Path(chosen).resolve()) if chosen else None


def _base_context(notification: Notification) -> dict[str, Any]:
    return {
        "request_id": notification.request_id,
        "request_tag": request_tag(notification.request_id),
        "subject": notification.subject,
        "recipients": [{"name": r.name, "email": r.email, "role": r.role} for r in notification.to],
        "greeting_name": wording.greeting_name((r.name, r.email) for r in notification.to),
        "team_name": "The Learning & Development team",
        "calendar": None,
    }


def _derive(context: dict[str, Any]) -> None:
    """Convenience keys computed from the domain's context (documented in README.md)."""
    request = context.get("request")
    if "request_title" not in context and isinstance(request, dict) and request.get("title"):
        context["request_title"] = request["title"]
    raw_item, raw_checkpoint = context.get("item"), context.get("checkpoint")
    item: dict[str, Any] = raw_item if isinstance(raw_item, dict) else {}
    checkpoint: dict[str, Any] = raw_checkpoint if isinstance(raw_checkpoint, dict) else {}
    context.setdefault("item", item)
    context.setdefault("checkpoint", checkpoint)
    context.setdefault("metric", item.get("metric") or "")
    context.setdefault("unit", item.get("unit") or "")
    context.setdefault("scale", "")
    if "checkpoint_label" not in context:
        offset = checkpoint.get("offset")
        context["checkpoint_label"] = wording.after_delivery(offset) if offset else ""
    questions = context.get("questions")
    context["many"] = isinstance(questions, list) and len(questions) > 1
    if isinstance(questions, list) and context["many"]:  # several questions (states.surveys): each its own
        context["questions"] = [{**q, "question": _question(q.get("item") or {})} for q in questions
                                if isinstance(q, dict)]
    if not context.get("question"):
        if context["metric"]:
            unit = f", {wording.unit_phrase(context['unit'])}" if context["unit"] else ""
            context["question"] = f"{context['metric']}: where does it stand today{unit}?"
        else:
            context["question"] = "How are things going since the programme?"


def _question(item: dict[str, Any]) -> str:
    metric, unit = item.get("metric") or "", item.get("unit") or ""
    if not metric:
        return "How are things going since the programme?"
    return f"{metric}: where does it stand today{', ' + wording.unit_phrase(unit) if unit else ''}?"


def _context(notification: Notification) -> dict[str, Any]:
    """What every template of ``notification`` sees: the base keys, its calendar, its context, the derived keys."""
    context = _base_context(notification)
    if notification.calendar is not None:
        cal = notification.calendar
        context["calendar"] = {
            "summary": cal.summary,
            "start": cal.start,
            "end": cal.end,
            "description": cal.description,
            "method": cal.method,
            "kind": cal.kind,
        }
    context.update(notification.context)
    _derive(context)
    return context


def _render_one(env: jinja2.Environment, filename: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(filename).render(context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateContextError(f"no template {filename}") from exc
    except jinja2.UndefinedError as exc:
        raise TemplateContextError(f"template {filename}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateContextError(f"template {filename} failed: {exc}") from exc


def _checked_name(notification: Notification) -> str:
    name = notification.template
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,59}", name or ""):
        raise TemplateContextError(f"invalid template name {name!r}")
    return name


def render_bodies(
    notification: Notification,
    *,
    templates_dir: str | os.PathLike[str] | None = None,
) -> tuple[str, str]:
    """Render the (text, html) bodies of ``notification``'s template."""
    name = _checked_name(notification)
    text_env, html_env = _environments(_templates_dir(templates_dir))
    context = _context(notification)
    return (_render_one(text_env, f"{name}.txt.j2", context), _render_one(html_env, f"{name}.html.j2", context))


def render_document(
    notification: Notification,
    kind: str,
    *,
    templates_dir: str | os.PathLike[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Render ``<template>.<kind>.j2`` (e.g. ``results_report.print.html.j2``, the PDF's page) with the HTML
    environment (autoescaped, the same filters and context as the mail), plus ``extra``."""
    name = _checked_name(notification)
    if not re.fullmatch(r"[a-z]+(\.[a-z]+)?", kind):
        raise TemplateContextError(f"invalid document kind {kind!r}")
    _, html_env = _environments(_templates_dir(templates_dir))
    return _render_one(html_env, f"{name}.{kind}.j2", {**_context(notification), **(extra or {})})


def _cte_for(text: str) -> str:
    """7bit when it safely can, else quoted-printable: no server needs 8BITMIME."""
    if text.isascii() and all(len(line) <= 78 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def render(
    notification: Notification,
    mail_from: str,
    domain: str,
    *,
    from_name: str = "Learning & Development",
    templates_dir: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    organizer: Recipient | None = None,
    reply_key: bytes | None = None,
    plus_addressing: bool = True,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """Build the e-mail for ``notification``.

    ``mail_from`` is the sender address (LDFLOW_MAIL_FROM), ``domain`` the
    right-hand side of the Message-ID, ``organizer`` the ORGANIZER of an invite or to-do that
    names none (LDFLOW_ORGANIZER; default: ``from_name <mail_from>``, so replies reach the team).
    Raises ``HeaderValueError`` / ``InvalidAddressError`` for an unsafe subject, name or address and
    ``TemplateContextError`` when the template cannot be rendered.

    With ``reply_key`` (the ``mail-tokens`` secret), a mail that invites a reply and goes to one
    recipient carries that recipient's reply code (``connectors.email.tokens``): as its Message-ID,
    in a plus-addressed Reply-To (unless ``plus_addressing`` is off or ``mail_from`` cannot take a
    tag) and as the body's ``Reply code:`` line (the templates' ``reply_code``).

    ``attachments`` are added after the bodies (the message becomes multipart/mixed): the results report's
    PDF (``connectors.email.pdf.attachments_for``).
    """
    if not notification.to:
        raise HeaderValueError("To", "a notification needs at least one recipient")
    code = None
    if reply_key is not None and invites_reply(notification.template) and len(notification.to) == 1:
        code = reply_code(reply_key, notification.key, notification.request_id, notification.to[0].email)
        notification = replace(notification, context={**notification.context, "reply_code": code})
    text, html = render_bodies(notification, templates_dir=templates_dir)

    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = make_address("From", from_name, mail_from)
    msg["To"] = _recipients(notification)
    subject = validate_header_text("Subject", notification.subject, max_length=400).strip()
    tag = request_tag(notification.request_id)
    if notification.request_id and tag.lower() not in subject.lower():  # 0: a mail about no request
        subject = f"{tag} {subject}"
    msg["Subject"] = subject
    when = (now or datetime.now(UTC)).astimezone(UTC)
    msg["Date"] = format_datetime(when)
    if code is None:
        msg["Message-ID"] = message_id_for(notification.key, domain)
    else:
        validate_address("message-id domain", f"x@{domain.strip()}")
        msg["Message-ID"] = f"<{code}@{domain.strip()}>"
        reply_to = plus_address(mail_from, code) if plus_addressing else None
        if reply_to is not None:
            msg["Reply-To"] = make_address("Reply-To", from_name, reply_to)
    parent, references = _thread(notification.context, domain)
    if parent:
        msg["In-Reply-To"] = parent
        msg["References"] = " ".join(references)
    msg["X-Ldflow-Request"] = str(int(notification.request_id))
    msg["X-Ldflow-Key"] = validate_header_text("X-Ldflow-Key", notification.key, max_length=200)
    msg["X-Ldflow-Template"] = notification.template
    # Replies from humans are welcome; auto-responders should stay quiet.
    msg["Auto-Submitted"] = "auto-generated"
    msg["MIME-Version"] = "1.0"

    msg.set_content(text, cte=_cte_for(text))
    msg.add_alternative(html, subtype="html", cte=_cte_for(html))
    if notification.calendar is not None:
        chosen = organizer or Recipient(from_name, mail_from)
        _attach_calendar(msg, with_organizer(notification.calendar, chosen), when)
    for attachment in attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        msg.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    _stable_boundaries(msg, notification.key)
    return msg


_MESSAGE_ID_RE = re.compile(r"<[^<>\s@\x00-\x1f\x7f]{1,200}@[^<>\s@\x00-\x1f\x7f]{1,200}>")


def _thread(context: dict[str, Any], domain: str) -> tuple[str | None, list[str]]:
    """``(In-Reply-To, References)``: from ``in_reply_to_key`` (a message ldflow sent) or from
    ``in_reply_to`` / ``references`` (the Message-IDs of a mail received); ids that are not one plain
    ``<left@right>`` are left out."""
    key = context.get("in_reply_to_key")
    if isinstance(key, str) and key:
        parent = message_id_for(key, domain)
        return parent, [parent]
    given = context.get("in_reply_to")
    if not isinstance(given, str) or not _MESSAGE_ID_RE.fullmatch(given):
        return None, []
    chain = context.get("references")
    ids = [m for m in chain if isinstance(m, str) and _MESSAGE_ID_RE.fullmatch(m)] if isinstance(chain, list) else []
    ids = [m for m in ids if m != given][-9:] + [given]
    return given, ids


def _recipients(notification: Notification) -> list[Any]:
    """The To addresses, checked, each once (case-insensitively), in the notification's order."""
    seen: set[str] = set()
    to = []
    for index, recipient in enumerate(notification.to):
        address = make_address(f"To[{index}]", recipient.name, recipient.email)
        if address.addr_spec.lower() not in seen:
            seen.add(address.addr_spec.lower())
            to.append(address)
    return to


def _attach_calendar(msg: EmailMessage, item: CalendarItem, when: datetime) -> None:
    """The iMIP part (text/calendar with its METHOD) and the same as an .ics attachment."""
    method = item.method.upper()
    ics = to_ics(item, method=method, dtstamp=when).decode("utf-8")
    msg.add_alternative(ics, subtype="calendar", params={"method": method}, cte=_cte_for(ics))
    msg.add_attachment(ics.encode("utf-8"), maintype="application", subtype="ics",
                       filename="invite.ics" if method != "CANCEL" else "cancel.ics")


def _stable_boundaries(msg: EmailMessage, key: str) -> None:
    """Boundaries derived from the key: re-rendering gives the same bytes (given the same Date)."""
    digest = hashlib.sha256(f"boundary:{key}".encode()).hexdigest()[:24]
    # the parts' encoded payloads and the headers: what a boundary could collide with (serialising the
    # whole message here cost a third of a survey mail's rendering)
    parts = msg.walk()
    text = "".join(str(p.get_payload()) for p in parts if not p.is_multipart()) + \
        "".join(f"{k}: {v}\n" for p in msg.walk() for k, v in p.items())
    for index, part in enumerate(msg.walk()):
        if part.is_multipart():
            boundary = f"=_ldflow_{digest}_{index}"
            if boundary not in text:  # never true for a hex digest, but a boundary must not occur in content
                part.set_boundary(boundary)


def parse_request_tag(subject: str) -> int | None:
    """The request id in a subject's ``[ldflow #N]`` tag, if any."""
    match = _TAG_RE.search(subject or "")
    return int(match.group(1)) if match else None

