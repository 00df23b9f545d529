"""The public intake form, ``/ask``: a requester asks for training without signing in.

The requester writes the ask in their own words, then answers the partner's questions (the
business result with its measure, today's value, the target and the date; what people should do
differently, vague verbs flagged as they type through ``/ask/check`` (htmx, ``states.observable``);
who is involved; what has been tried; how success will show). The request is submitted through
``Service.submit`` (the model the CLI's ``intake`` uses), so it is ``received`` and its
acknowledgement is queued in the same transaction; the relay sends it with the status link.

Spam limits: a per-client-address rate (``LDFLOW_INTAKE_PER_HOUR`` posts an hour), a honeypot field
people never see, a body of at most ``MAX_BODY`` bytes and field lengths of the model. The form
carries a signed form token (``flows.web.form_tokens``) in place of a session's CSRF token. Bad input
names the field next to it; nothing is written.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from flows.bootstrap import App
from flows.links import Links, Purpose
from flows.web.form_tokens import FormTokens
from flows.web.links import AppDep, templates
from states.errors import FieldError, InvalidInput
from states.observable import vague_phrase

router = APIRouter(include_in_schema=False)
MAX_BODY = 32_000  # bytes of one posted form
HONEYPOT = "website"
FORM_ERROR = "This form has expired or did not come from this page. Reload the page and send it again."
#: The form's fields, named as the model's (a refusal's field names the input next to it).
FIELDS = ("title", "requested_solution", "requester.name", "requester.email", "sponsor.name", "sponsor.email",
          "business_goal.metric", "business_goal.unit", "business_goal.current_value",
          "business_goal.target_value", "business_goal.target_date", "business_goal.data_source",
          "behaviour_change", "audience.description", "audience.size", "tried_already", "success_signs", "why_now")


class RateLimit:
    """At most ``per_hour`` events per key in any hour (in this process; a proxy in front may add its own)."""

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) > 10_000:  # forget quiet clients
                self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - 3600}
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - 3600:
                seen.popleft()
            if len(seen) >= self.per_hour:
                return False
            seen.append(now)
            return True


def _limit(request: Request, app: App) -> RateLimit:
    limit: RateLimit | None = getattr(request.app.state, "intake_limit", None)
    if limit is None:
        limit = request.app.state.intake_limit = RateLimit(app.settings.intake_per_hour)
    return limit


def _page(request: Request, app: App, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("values", {})
    context.setdefault("errors", {})
    context["form_token"] = FormTokens(app.settings).issue("ask", "ask")
    context["honeypot"] = HONEYPOT
    return templates.TemplateResponse(request, "ask/form.html", context, status_code=status)


def _message(request: Request, title: str, message: str, status: int) -> HTMLResponse:
    return templates.TemplateResponse(request, "links/problem.html", {"title": title, "message": message},
                                      status_code=status)


@router.get("/ask", response_class=HTMLResponse)
def ask_page(request: Request, app: AppDep) -> Response:
    return _page(request, app)


@router.get("/ask/check", response_class=HTMLResponse)
def check_actions(request: Request, behaviour_change: str = "") -> Response:
    """The vague verbs in what people should do differently, one line each (an htmx fragment)."""
    flags = []
    for line in behaviour_change[:MAX_BODY].splitlines():
        found = vague_phrase(line.strip()) if line.strip() else None
        if found is not None:
            flags.append({"line": line.strip(), "phrase": " ".join(found[0].lower().split()), "instead": found[1]})
    return templates.TemplateResponse(request, "ask/_check.html", {"flags": flags,
                                                                   "checked": bool(behaviour_change.strip())})


def _number(text: str) -> float | str | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # the model refuses it, naming the field


def intake_data(form: dict[str, str]) -> dict[str, Any]:
    """The intake model's data from the form (the sponsor defaults to the requester)."""
    value = form.get
    requester = {"name": value("requester.name", "").strip(), "email": value("requester.email", "").strip()}
    sponsor = {"name": value("sponsor.name", "").strip(), "email": value("sponsor.email", "").strip()}
    if not sponsor["name"] and not sponsor["email"]:
        sponsor = dict(requester)
    goal: dict[str, Any] = {name: value(f"business_goal.{name}", "").strip() or None
            for name in ("metric", "unit", "target_date", "data_source")}
    goal.update(current_value=_number(value("business_goal.current_value", "")),
                target_value=_number(value("business_goal.target_value", "")))
    audience: dict[str, Any] = {"description": value("audience.description", "").strip()}
    size = value("audience.size", "").strip()
    if size:
        audience["size"] = size
    return {"title": value("title", "").strip(), "requested_solution": value("requested_solution", "").strip(),
            "requester": requester, "sponsor": sponsor,
            "business_goal": {k: v for k, v in goal.items() if v is not None}, "audience": audience,
            "behaviour_change": [line.strip() for line in value("behaviour_change", "").splitlines() if line.strip()],
            "tried_already": value("tried_already", "").strip(), "success_signs": value("success_signs", "").strip(),
            "why_now": value("why_now", "").strip()}


def _form_field(name: str) -> str:
    """The input a model field's error belongs next to (``behaviour_change[1]`` → ``behaviour_change``)."""
    base = name.split("[", 1)[0]
    if base in FIELDS:
        return base
    return next((f for f in FIELDS if base.startswith(f + ".") or f.startswith(base + ".")), "")


@router.post("/ask", response_class=HTMLResponse)
async def ask_post(request: Request, app: AppDep) -> Response:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        return _message(request, "That is too long to send", "Please shorten your answers and send again.", 413)
    client = request.client.host if request.client else "unknown"
    if not _limit(request, app).allow(client):
        return _message(request, "Too many requests from here",
                        "Please wait an hour, or write to the L&D team by mail.", 429)
    body = await request.body()
    if len(body) > MAX_BODY:
        return _message(request, "That is too long to send", "Please shorten your answers and send again.", 413)
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if isinstance(v, str)}
    if form.get(HONEYPOT):
        return _message(request, "This form could not be sent", "Please write to the L&D team by mail.", 400)
    if not FormTokens(app.settings).valid(form.get("form_token", ""), "ask", "ask"):
        return _page(request, app, 403, values=form, errors={"": FORM_ERROR})
    data = intake_data(form)
    try:
        if not data["requester"]["email"]:
            raise InvalidInput([FieldError("requester.email", "give your e-mail address: we answer there")])
        # the requester is the actor, the web the channel: the history shows "rita@example.org (via web)"
        created = app.service.via("web").submit(data, data["requester"]["email"], source="web form")
    except InvalidInput as exc:
        errors: dict[str, str] = {}
        defaulted = not (form.get("sponsor.name", "").strip() or form.get("sponsor.email", "").strip())
        for e in exc.errors:
            if defaulted and e.field.startswith("sponsor"):
                continue  # the sponsor is the requester: the error shows next to the requester's field
            errors.setdefault(_form_field(e.field), e.message)
        return _page(request, app, 400, values=form, errors=errors)
    links = Links(app.settings)
    token = links.issue(Purpose.STATUS, created.id or 0, created.intake.requester.email, created.created_at)
    return templates.TemplateResponse(request, "ask/done.html", {
        "req": created, "status_url": links.url(Purpose.STATUS, created.id or 0, token)}, status_code=201)
