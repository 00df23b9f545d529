"""The JSON API's errors: every failure as an :class:`~flows.web.api_schema.ApiError`, with the HTTP
status of the CLI's exit code (2 → 400, 3 → 409 refused, 4 → 404, 5 → 409 conflict)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from states.errors import Conflict, InvalidInput, InvalidTransition, LdflowError, NotFound, TransitionRefused

log = logging.getLogger("ldflow.api")


class ApiProblem(Exception):
    """An error the API itself answers (401 no token, 403 a role that may not)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def _field(loc: tuple[Any, ...]) -> str:
    """``("query", "limit")`` → ``limit``; ``("path", "request_id")`` → ``request_id``."""
    parts = [p for p in loc if p not in ("query", "path", "header", "body")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _answer(status: int, error: str, message: str, exit_code: int, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, "exit_code": exit_code, **extra}, status_code=status,
                        headers=headers)


def domain_error(exc: LdflowError) -> JSONResponse:
    """The answer to a domain error, with its CLI exit code."""
    code = exc.exit_code
    if isinstance(exc, InvalidInput):
        return _answer(400, "invalid_input", str(exc), code,
                       errors=[{"field": e.field, "message": e.message} for e in exc.errors])
    if isinstance(exc, TransitionRefused):
        allowed = exc.allowed if isinstance(exc, InvalidTransition) else []
        return _answer(409, "refused", str(exc), code, missing=exc.missing, trigger=exc.trigger, state=exc.state,
                       allowed=allowed)
    if isinstance(exc, NotFound):
        return _answer(404, "not_found", str(exc), code)
    if isinstance(exc, Conflict):
        return _answer(409, "conflict", str(exc), code, expected_version=exc.expected, current_version=exc.actual)
    if code == Conflict.exit_code:  # e.g. an outbox row that changed meanwhile
        return _answer(409, "conflict", str(exc), code)
    log.error("api: %s: %s", type(exc).__name__, exc)
    return _answer(500, "error", str(exc), code)


def install_handlers(api: FastAPI) -> None:
    """Answer every error of ``api`` as an ApiError (never a traceback)."""

    @api.exception_handler(LdflowError)
    async def on_domain_error(request: Request, exc: LdflowError) -> JSONResponse:
        return domain_error(exc)

    @api.exception_handler(ApiProblem)
    async def on_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return _answer(exc.status, exc.error, exc.message, 1, headers)

    @api.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"field": _field(tuple(e.get("loc", ()))),
                     "message": "is required" if e.get("type") == "missing" else str(e.get("msg", ""))}
                    for e in exc.errors()]
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return _answer(400, "invalid_input", f"invalid input: {text}", InvalidInput.exit_code, errors=problems)

    @api.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        kinds = {404: ("not_found", 4), 405: ("invalid_input", 2), 401: ("unauthorized", 1)}
        error, code = kinds.get(exc.status_code, ("error", 1))
        return _answer(exc.status_code, error, str(exc.detail), code, headers=getattr(exc, "headers", None))

    @api.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api: internal error")
        return _answer(500, "error", f"internal error: {type(exc).__name__}", 1)
