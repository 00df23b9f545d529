"""What the staff pages share: rendering a page (with the session cookie and the signed-in account),
redirects, and :class:`StaffRoute`, which turns the sign-in, role and CSRF refusals into responses
(so each router is one ``include_router`` line in ``create_app``)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from flows.web.auth import CsrfFailed, Forbidden, SignInRequired, csrf_token, current_user, write_cookie
from states import wording

# The staff pages' templates: the frame's folder (base.html), autoescaped as every .html template is
# (flows/web/app.py keeps its own instance; importing it here would make a cycle with create_app).
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# words for people, from the one formatter (states/wording.py), as the mails and the CLI use them
templates.env.filters.update(number=wording.number, money=wording.money, quantity=wording.quantity)


def page(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    """Render template ``name`` for the signed-in account, with the CSRF token for its forms."""
    user = current_user(request)
    ctx = {"user": user, "csrf": csrf_token(request), "can_write": user is not None and user.role in
           ("admin", "partner"), **(context or {})}
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    return write_cookie(request, response)


def pdf_response(data: bytes, request_id: int) -> Response:
    """A report's PDF as a download, never cached (it names people and their results)."""
    from connectors.email.pdf import report_filename

    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{report_filename(request_id)}"',
                             "Cache-Control": "no-store"})


def see_other(request: Request, url: str) -> Response:
    """A 303 to ``url`` (after a POST: the browser GETs it), with the session cookie when it changed."""
    return write_cookie(request, RedirectResponse(url, status_code=303))


def refusal_page(request: Request, status: int, title: str, message: str) -> Response:
    return page(request, "message.html", {"title": title, "message": message}, status)


class StaffRoute(APIRoute):
    """A route whose sign-in, role and CSRF refusals become pages: anonymous GET → the sign-in page
    (303), anonymous POST → 401, a role that may not → 403, a failed CSRF check → 403. Nothing the
    route would have done has been done."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.method == "GET":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return see_other(request, f"/sign-in?next={quote(target, safe='')}")
                return refusal_page(request, 401, "Sign in first", "Sign in to do this; nothing was changed.")
            except Forbidden as exc:
                return refusal_page(request, 403, "Not allowed", f"{exc.message}; nothing was changed.")
            except CsrfFailed:
                return refusal_page(request, 403, "Form expired",
                                    "This form has expired or came from another site; nothing was changed. "
                                    "Reload the page and try again.")

        return guarded


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


__all__ = ["HTMLResponse", "StaffRoute", "page", "refusal_page", "safe_next", "see_other"]
