"""The FastAPI application: ``create_app(app)`` over one ldflow ``App``.

Every response carries the security headers (a CSP without inline scripts, no framing, no MIME
sniffing); templates autoescape; static files (our CSS, vendored htmx) are served from
``flows/web/static``. Routers are added here, one module per surface.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flows.web.api import create_api

if TYPE_CHECKING:
    from flows.bootstrap import App

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response (pure ASGI, so streaming is untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def ldflow_app(request: Request) -> App:
    """The ldflow ``App`` this web app serves (a FastAPI dependency)."""
    app: App = request.app.state.ldflow
    return app


def create_app(app: App) -> FastAPI:
    """The web app over ``app`` (its settings, clock, services)."""
    web = FastAPI(title="ldflow", docs_url=None, redoc_url=None, openapi_url=None)
    web.state.ldflow = app
    web.add_middleware(SecurityHeaders)
    web.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    web.mount("/api/v1", create_api(app))  # the JSON API, its OpenAPI at /api/v1/openapi.json

    from flows.web import intake, links

    web.include_router(links.router)
    web.include_router(intake.router)

    @web.get("/healthz", response_class=PlainTextResponse, include_in_schema=False)
    def healthz() -> str:
        return "ok"

    from flows.web import analytics, pages, signin  # the staff pages (their modules use this one's helpers)

    web.include_router(signin.router)
    web.include_router(pages.router)
    web.include_router(analytics.router)
    web.include_router(analytics.shared)

    return web
