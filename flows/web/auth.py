"""Staff sessions, CSRF and sign-in rate limits for the web app.

The session is a signed cookie (``itsdangerous``, the ``web-sessions`` key): the account's id and
``session_epoch`` (a disabled account, a new role or password ends its sessions), and the CSRF
token of the session. The cookie is HttpOnly and SameSite=Lax, and Secure whenever the request came
over https (behind a TLS proxy, uvicorn takes the scheme from X-Forwarded-Proto of a trusted proxy).
Every state-changing form carries the CSRF token; a POST without the session's token, or from
another origin, is refused before anything runs. Sign-in attempts are limited per address and per
client IP (:class:`RateLimit`, in the process's memory).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from connectors.keys import secret_key
from connectors.ports import User

if TYPE_CHECKING:
    from flows.bootstrap import App

COOKIE = "ldflow_session"
SESSION_SECONDS = 12 * 3600
WRITERS = frozenset({"admin", "partner"})


class SignInRequired(Exception):
    """No signed-in account (pages redirect to the sign-in page)."""


class Forbidden(Exception):
    """Signed in, but the role may not do this (403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    """A state-changing request without this session's CSRF token, or from another site (403)."""


@dataclass
class RateLimit:
    """At most ``limit`` attempts per key within ``window`` seconds (a sliding window)."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _pruned(self, key: str) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= self.clock() - self.window:
            hits.popleft()
        return hits

    def blocked(self, key: str) -> bool:
        """Whether ``key`` has used up its attempts for now."""
        with self._lock:
            return len(self._pruned(key)) >= self.limit

    def hit(self, key: str) -> None:
        """Count one attempt for ``key``."""
        with self._lock:
            self._pruned(key).append(self.clock())

    def allow(self, key: str) -> bool:
        """Count an attempt for ``key``; False when it is over the limit (the attempt is not made)."""
        with self._lock:
            hits = self._pruned(key)
            if len(hits) >= self.limit:
                return False
            hits.append(self.clock())
            return True


@dataclass
class SignInLimits:
    """Failed sign-ins per address (guessing one account's password) and per IP (spraying many); while
    either is over its limit, even the right password is refused. Link requests count each one (each
    sends a mail)."""

    per_address: RateLimit = field(default_factory=lambda: RateLimit(5, 15 * 60))
    per_ip: RateLimit = field(default_factory=lambda: RateLimit(20, 15 * 60))

    def _keys(self, address: str, ip: str) -> tuple[str, str]:
        return f"address:{address.strip().lower()}", f"ip:{ip}"

    def blocked(self, address: str, ip: str) -> bool:
        by_address, by_ip = self._keys(address, ip)
        return self.per_ip.blocked(by_ip) or self.per_address.blocked(by_address)

    def failed(self, address: str, ip: str) -> None:
        by_address, by_ip = self._keys(address, ip)
        self.per_ip.hit(by_ip)
        self.per_address.hit(by_address)

    def allow(self, address: str, ip: str) -> bool:
        """Count an attempt that is not a password check (a link request); False when over the limit."""
        if self.blocked(address, ip):
            return False
        self.failed(address, ip)
        return True


def _serializer(app: App) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(app.settings.keys_dir, "web-sessions"), salt="ldflow.session")


def session(request: Request) -> dict[str, Any]:
    """This request's session (read once from the cookie; a new anonymous one with a fresh CSRF token when
    there is none or it is forged or expired)."""
    found: dict[str, Any] | None = getattr(request.state, "session", None)
    if found is not None:
        return found
    app: App = request.app.state.ldflow
    raw = request.cookies.get(COOKIE)
    data: dict[str, Any] | None = None
    if raw:
        try:
            loaded = _serializer(app).loads(raw, max_age=SESSION_SECONDS)
            data = loaded if isinstance(loaded, dict) and isinstance(loaded.get("c"), str) else None
        except BadSignature:
            data = None
    if data is None:
        data = {"c": secrets.token_urlsafe(24)}
        request.state.session_changed = True
    request.state.session = data
    return data


def start_session(request: Request, user: User) -> None:
    """Sign ``user`` in: a new session (new CSRF token), so nothing from before carries over."""
    request.state.session = {"u": user.id, "e": user.session_epoch, "c": secrets.token_urlsafe(24)}
    request.state.session_changed = True


def end_session(request: Request) -> None:
    request.state.session = {"c": secrets.token_urlsafe(24)}
    request.state.session_changed = True


def write_cookie(request: Request, response: Response) -> Response:
    """Set the session cookie on ``response`` when the session is new or changed."""
    if getattr(request.state, "session_changed", False):
        app: App = request.app.state.ldflow
        response.set_cookie(COOKIE, _serializer(app).dumps(request.state.session), max_age=SESSION_SECONDS,
                            httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/")
    return response


def csrf_token(request: Request) -> str:
    return str(session(request)["c"])


def current_user(request: Request) -> User | None:
    """The signed-in, active account of this request (None when anonymous or signed out since)."""
    data = session(request)
    user_id, epoch = data.get("u"), data.get("e")
    if not isinstance(user_id, int) or not isinstance(epoch, int):
        return None
    app: App = request.app.state.ldflow
    return app.accounts.active(user_id, epoch)


def require_user(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise SignInRequired()
    return user


def require_writer(request: Request) -> User:
    user = require_user(request)
    if user.role not in WRITERS:
        raise Forbidden(f"your role ({user.role}) can read requests, not change them")
    return user


def check_csrf(request: Request, form: Any) -> None:
    """Refuse a state-changing request from another site or without this session's token."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
        raise CsrfFailed()
    given = form.get("csrf") if form is not None else None
    if not isinstance(given, str) or not hmac.compare_digest(given, csrf_token(request)):
        raise CsrfFailed()


def client_ip(request: Request) -> str:
    """The client's address (uvicorn puts the proxy's X-Forwarded-For here when the proxy is trusted)."""
    return request.client.host if request.client else "unknown"
