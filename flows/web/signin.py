"""Staff sign-in: a password, or a single-use link by mail (queued in the outbox); sign-out.

Failed attempts are limited per address and per client IP (``flows.web.auth.SignInLimits``); a
refusal says the same whether or not the account exists. Passwords and link tokens are never
logged: the app logs no request bodies, and the link's token travels in the path of a GET that
only shows a button (a mail scanner that fetches it signs nobody in; the POST of that button uses
it), which uvicorn's access log shows redacted (:class:`RedactSignInLinks`).
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from flows.bootstrap import App
from flows.web.auth import SignInLimits, check_csrf, client_ip, current_user, end_session, require_user, start_session
from flows.web.common import StaffRoute, page, safe_next, see_other

router = APIRouter(route_class=StaffRoute)

_LINK_PATH = re.compile(r"(/sign-in/link/)[^/?\s]+")


class RedactSignInLinks(logging.Filter):
    """Keeps sign-in link tokens out of uvicorn's access log (its record's path argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_LINK_PATH.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = _LINK_PATH.sub(r"\1[redacted]", record.msg)
        return True


logging.getLogger("uvicorn.access").addFilter(RedactSignInLinks())

_REFUSED = "That e-mail and password do not match an active account."
_SLOW_DOWN = "Too many sign-in attempts; wait a few minutes and try again."


def _limits(request: Request) -> SignInLimits:
    state = request.app.state
    if not hasattr(state, "sign_in_limits"):
        state.sign_in_limits = SignInLimits()
    limits: SignInLimits = state.sign_in_limits
    return limits


def _app(request: Request) -> App:
    app: App = request.app.state.ldflow
    return app


@router.get("/sign-in", include_in_schema=False)
def sign_in_form(request: Request, next: str = "/") -> Response:  # noqa: A002 - the query parameter's name
    if current_user(request) is not None:
        return see_other(request, safe_next(next))
    return page(request, "sign_in.html", {"next": safe_next(next), "email": "", "error": "", "sent": False})


@router.post("/sign-in", include_in_schema=False)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    email, password = str(form.get("email") or "").strip(), str(form.get("password") or "")
    target = safe_next(str(form.get("next") or "/"))
    limits, ip = _limits(request), client_ip(request)
    if limits.blocked(email, ip):
        return page(request, "sign_in.html", {"next": target, "email": email, "error": _SLOW_DOWN, "sent": False},
                    429)
    user = _app(request).accounts.authenticate(email, password)
    if user is None:
        limits.failed(email, ip)
        return page(request, "sign_in.html", {"next": target, "email": email, "error": _REFUSED, "sent": False},
                    401)
    start_session(request, user)
    return see_other(request, target)


@router.post("/sign-in/link", include_in_schema=False)
async def request_link(request: Request) -> Response:
    """Queue a sign-in link's mail; the page says the same whether the account exists or not."""
    form = await request.form()
    check_csrf(request, form)
    email = str(form.get("email") or "").strip()
    if not _limits(request).allow(email, client_ip(request)):
        return page(request, "sign_in.html", {"next": "/", "email": email, "error": _SLOW_DOWN, "sent": False}, 429)
    _app(request).accounts.send_sign_in_link(email)
    return page(request, "sign_in.html", {"next": "/", "email": email, "error": "", "sent": True})


@router.get("/sign-in/link/{token}", include_in_schema=False)
def link_form(request: Request, token: str) -> Response:
    return page(request, "sign_in_link.html", {"token": token, "error": ""})


@router.post("/sign-in/link/{token}", include_in_schema=False)
async def use_link(request: Request, token: str) -> Response:
    form = await request.form()
    check_csrf(request, form)
    if not _limits(request).per_ip.allow(f"ip:{client_ip(request)}"):
        return page(request, "sign_in_link.html", {"token": token, "error": _SLOW_DOWN}, 429)
    user = _app(request).accounts.redeem(token)
    if user is None:
        return page(request, "sign_in_link.html", {
            "token": "", "error": "This sign-in link is not valid any more (used, expired or mistyped). "
                                  "Ask for a new one."}, 400)
    start_session(request, user)
    return see_other(request, "/")


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request) -> Response:
    form = await request.form()
    require_user(request)
    check_csrf(request, form)
    end_session(request)
    return see_other(request, "/sign-in")
