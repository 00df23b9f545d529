"""Signed links for the people outside L&D: making them for the mails, reading them back.

A link names its purpose (plan approval, survey answer, result record, request status), the
request, the person (address) it was issued to, and what it acts on (the plan version and a digest
of that plan's content; the checkpoint). It is signed with ``itsdangerous`` under the key
``secret_key(settings.keys_dir, "links")``; a link whose signature does not verify is forged. It
carries its issue time and expiry: the time the outbox row was queued (the domain's clock) plus
the purpose's lifetime (``LDFLOW_LINK_*_DAYS``). Because the issue time is the row's, rendering
the same row again (a retried send) gives the same link, byte for byte.

``link.id`` names the link without its secret (purpose, request, person, version, plan digest,
checkpoint): uses are recorded under it (``connectors.ports.LinkUseLog``), and two mails for the
same plan version share it, so approving through one uses both. What people do through a link is
in :mod:`flows.responses`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from connectors.keys import secret_key
from connectors.ports import OutboxRow
from flows.settings import Settings
from states.errors import LdflowError
from states.notifications import Notification


class Purpose(StrEnum):
    PLAN_APPROVAL = "plan_approval"
    SURVEY = "survey"
    RESULT = "result"
    STATUS = "status"
    SPONSOR = "sponsor"  # a sponsor's read-only page of their requests and results (request id 0)


#: The path segment of each purpose's page: ``/l/<segment>/<request id>/<token>``.
SEGMENTS = {Purpose.PLAN_APPROVAL: "approve", Purpose.SURVEY: "survey", Purpose.RESULT: "result",
            Purpose.STATUS: "status", Purpose.SPONSOR: "sponsor"}
#: Links that work once (a second use is refused as used); a survey link works until it expires.
SINGLE_USE = frozenset({Purpose.PLAN_APPROVAL, Purpose.RESULT})
#: Which mails carry which link, for each recipient.
TEMPLATE_PURPOSES = {"plan_approval_request": Purpose.PLAN_APPROVAL, "survey": Purpose.SURVEY,
                     "survey_reminder": Purpose.SURVEY, "checkpoint_reminder": Purpose.RESULT,
                     "intake_acknowledgement": Purpose.STATUS}
_SALT = "ldflow.link.v1"


class LinkRefused(LdflowError):
    """A link that cannot be used; ``status`` is the HTTP status its page answers with."""

    exit_code = 3
    status = 403
    title = "This link does not work"


class LinkForged(LinkRefused):
    title = "This link is not valid"


class LinkElsewhere(LinkRefused):
    title = "This link is for another page"


class LinkExpired(LinkRefused):
    status = 410
    title = "This link has expired"


class LinkUsed(LinkRefused):
    status = 410
    title = "This link has been used"


class LinkStale(LinkRefused):
    status = 410
    title = "This link is out of date"


def plan_digest(plan: Any) -> str:
    """A short digest of a plan's content (its JSON), so a link names the plan it showed."""
    if hasattr(plan, "model_dump"):
        plan = plan.model_dump(mode="json")
    text = json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Link:
    """A verified link's content."""

    purpose: Purpose
    request_id: int
    person: str
    issued_at: datetime
    expires_at: datetime
    version: int | None = None
    plan: str | None = None  # plan_digest of the plan version it approves
    checkpoint: str | None = None

    @property
    def id(self) -> str:
        parts = [self.purpose.value, str(self.request_id), self.person.lower(), str(self.version or ""),
                 self.plan or "", self.checkpoint or ""]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    @property
    def actor(self) -> str:
        """Who acted, as the history records it: the person (the entries' ``via`` says ``link``)."""
        return self.person

    @property
    def single_use(self) -> bool:
        return self.purpose in SINGLE_USE


def _epoch(at: datetime) -> int:
    return int(at.astimezone(UTC).timestamp())


class Links:
    """Makes and reads the signed links of one installation (its key, base URL and lifetimes)."""

    def __init__(self, settings: Settings) -> None:
        self._signer = URLSafeSerializer(secret_key(settings.keys_dir, "links"), salt=_SALT)
        self.base_url = settings.web_url
        self.lifetimes = {Purpose.PLAN_APPROVAL: timedelta(days=settings.link_plan_approval_days),
                          Purpose.SURVEY: timedelta(days=settings.link_survey_days),
                          Purpose.RESULT: timedelta(days=settings.link_result_days),
                          Purpose.STATUS: timedelta(days=settings.link_status_days),
                          Purpose.SPONSOR: timedelta(days=settings.link_sponsor_days)}

    def issue(self, purpose: Purpose, request_id: int, person: str, issued_at: datetime, *,
              version: int | None = None, plan: str | None = None, checkpoint: str | None = None) -> str:
        """The token of a new link (deterministic: the same arguments give the same token)."""
        issued = _epoch(issued_at)
        payload: dict[str, Any] = {"p": purpose.value, "r": int(request_id), "a": person.lower(), "t": issued,
                                   "e": issued + int(self.lifetimes[purpose].total_seconds())}
        for key, value in (("v", version), ("d", plan), ("c", checkpoint)):
            if value is not None:
                payload[key] = value
        return str(self._signer.dumps(payload))

    def url(self, purpose: Purpose, request_id: int, token: str) -> str:
        return f"{self.base_url}/l/{SEGMENTS[purpose]}/{int(request_id)}/{token}"

    def read(self, token: str, purpose: Purpose, request_id: int, now: datetime) -> Link:
        """The link ``token`` stands for, used on ``purpose``'s page of ``request_id`` at ``now``.

        ``LinkForged`` (403) when the signature does not verify, ``LinkElsewhere`` (403) when it was
        issued for another purpose or request, ``LinkExpired`` (410) after its expiry."""
        try:
            data = self._signer.loads(token)
            link = Link(purpose=Purpose(data["p"]), request_id=int(data["r"]), person=str(data["a"]),
                        issued_at=datetime.fromtimestamp(int(data["t"]), UTC),
                        expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
                        version=data.get("v"), plan=data.get("d"), checkpoint=data.get("c"))
        except (BadData, KeyError, TypeError, ValueError):
            raise LinkForged("The link is damaged or was not made by us. Use the link in your mail as it is, "
                             "or ask the L&D team for a new one.") from None
        if link.purpose != purpose or link.request_id != request_id:
            raise LinkElsewhere("This link was made for another request or another page. Use the link in your "
                                "mail as it is.")
        if now.astimezone(UTC) >= link.expires_at:
            raise LinkExpired(f"The link worked until {link.expires_at:%d %B %Y}. Ask the L&D team for a new "
                              "one if you still need it.")
        return link

    # --- the links in the mails ---------------------------------------------------------------------

    def for_row(self, row: OutboxRow) -> Notification:
        """``row``'s notification with its recipients' links in the context (``links``: name, email,
        url, expires; the status link also as ``request_url``). Issued at the row's ``created_at``,
        so a retried send of the row carries the same links."""
        n = row.notification
        purpose = TEMPLATE_PURPOSES.get(n.template)
        if purpose is None or row.created_at is None or not n.request_id:
            return n
        context = dict(n.context)
        extra: dict[str, Any] = {}
        if purpose == Purpose.PLAN_APPROVAL:
            extra = {"version": int(context.get("plan_version") or 1), "plan": plan_digest(context.get("plan", {}))}
        elif purpose in (Purpose.SURVEY, Purpose.RESULT):
            checkpoint = context.get("checkpoint")
            key = checkpoint.get("key") if isinstance(checkpoint, dict) else None
            if not key:
                return n
            extra = {"checkpoint": str(key)}
        links = []
        expires = (row.created_at + self.lifetimes[purpose]).date().isoformat()
        questions = context.get("questions")
        keys = [str(q["checkpoint"]["key"]) for q in questions if isinstance(q, dict)] \
            if purpose == Purpose.SURVEY and isinstance(questions, list) and len(questions) > 1 else []
        for recipient in n.to:
            if keys:  # a survey of several questions: each question its own link (its own answer channel)
                for number, key in enumerate(keys, start=1):
                    token = self.issue(purpose, n.request_id, recipient.email, row.created_at, checkpoint=key)
                    links.append({"name": recipient.name, "email": recipient.email, "expires": expires,
                                  "url": self.url(purpose, n.request_id, token), "question": number})
                continue
            token = self.issue(purpose, n.request_id, recipient.email, row.created_at, **extra)
            links.append({"name": recipient.name, "email": recipient.email, "expires": expires,
                          "url": self.url(purpose, n.request_id, token)})
        context["links"] = links
        if purpose == Purpose.STATUS:
            context["request_url"] = links[0]["url"]
        return dataclasses.replace(n, context=context)
