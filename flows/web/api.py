"""The JSON API, ``/api/v1``: every request command and query of the CLI, for programs.

A sub-application (``create_api(app)``, mounted at ``/api/v1`` by :func:`flows.web.app.create_app`)
with its own OpenAPI document at ``/api/v1/openapi.json`` and its own error handling: every error
is an :class:`~flows.web.api_schema.ApiError` with the CLI's meaning — 400 invalid input (every
field named), 409 refused (every missing item) or conflict (``if_version``), 404 not found, 401 no
or a bad token, 403 the token's role may not write. Nothing is written when a call fails.

Callers authenticate with a personal access token (``Authorization: Bearer ldf_…``, made by
``ldflow tokens create``); a write is recorded as done by the token's owner, its events' ``via`` ``api``.

The routes hold no business logic: they read the body with the one input loader and call the same
:class:`flows.service.Service` methods and :mod:`flows.queries` as the CLI commands.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from connectors.loader import MAX_INPUT_BYTES, parse_mapping
from connectors.ports import OutboxStatus
from flows.bootstrap import App
from flows.tokens import Principal, Role
from flows.vocabulary import ExportFormat, ReportFormat
from flows.web import api_schema as doc
from flows.web.api_errors import ApiProblem, install_handlers
from states.amendments import Amendment
from states.companions import CompanionOutcome, CompanionPiece
from states.errors import FieldError, InvalidInput
from states.models import (
    Acknowledgement,
    CheckpointResult,
    Delivery,
    DesignBrief,
    Diagnosis,
    Intake,
    MeasurementPlan,
    PlanApproval,
    Reason,
    Redirect,
    Roster,
    SessionPlan,
)
from states.request import Session, TrainingRequest
from states.validation import parse

MAX_ID = 2**31 - 1  # the database's integer
DESCRIPTION = """Every request command and query of the `ldflow` CLI, for programs.

Authenticate with a personal access token (`ldflow tokens create --name NAME --role partner|viewer|admin
--owner PERSON`): `Authorization: Bearer <token>`. A `viewer` token reads; `partner` and `admin` tokens also
write, and each write is recorded in the request's history as done by the token's owner, with `via: api`
on its events (the history shows "<owner> (via api)").

A write takes the same fields as the CLI command's `-f FILE`, as JSON or YAML (`Content-Type:
application/yaml`); `if_version` is the CLI's `--if-version`. Errors carry the CLI's exit code: 400 invalid
input (every field named), 409 refused (every missing item) or conflict (`if_version`), 404 not found, 401 no
or a bad token, 403 the token's role may not write. Nothing is written when a call fails."""
_bearer = HTTPBearer(auto_error=False, scheme_name="token",
                     description="A personal access token: `ldflow tokens create --name NAME --role ROLE --owner WHO`.")


# --- dependencies -----------------------------------------------------------------------------------

def _app(request: Request) -> App:
    app: App = request.app.state.ldflow
    return app


def reader(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
           ) -> Principal:
    """The caller, from the bearer token; 401 without a valid, unrevoked one."""
    if credentials is None:
        raise ApiProblem(401, "unauthorized", "send a personal access token: 'Authorization: Bearer <token>' "
                                              "(ldflow tokens create)")
    principal = _app(request).tokens.authenticate(credentials.credentials)
    if principal is None:
        raise ApiProblem(401, "unauthorized", "the token is not valid or was revoked")
    return principal


def writer(who: Annotated[Principal, Depends(reader)]) -> Principal:
    """The caller, if their role may write; 403 for a viewer (nothing is written)."""
    if not who.role.writes:
        raise ApiProblem(403, "forbidden", f"a {who.role} token may only read; nothing was written")
    return who


class Body:
    """A write's body as the CLI reads a ``-f`` file: the one loader (JSON, or YAML by Content-Type)."""

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.data = data
        self.source = source


async def body(request: Request) -> Body:
    chunks, size = [], 0
    async for chunk in request.stream():  # never more than the limit in memory
        size += len(chunk)
        if size > MAX_INPUT_BYTES:
            raise InvalidInput([FieldError("", f"the request body is larger than {MAX_INPUT_BYTES // 1_000_000} MB")])
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput([FieldError("", "the request body is not UTF-8 text")]) from None
    kind: Literal["json", "yaml"] = "yaml" if "yaml" in request.headers.get("content-type", "") else "json"
    return Body(parse_mapping(text or "{}", "the request body", kind), "")


Caller = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
AppDep = Annotated[App, Depends(_app)]
Input = Annotated[Body, Depends(body)]
RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="The request's id.")]
IfVersion = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Refuse (409) unless the request is at this "
                                                                     "version (the CLI's --if-version).")]

Format = Annotated[ExportFormat, Query(description="json (documents with their history) or csv.")]


def _text(value: str | None, name: str) -> str | None:
    """A query text without control characters (a database refuses NUL): 400 naming it otherwise."""
    if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput([FieldError(name, "must be one line without control characters")])
    return value


# --- responses -------------------------------------------------------------------------------------

def _document(request: TrainingRequest, status: int = 200) -> JSONResponse:
    headers = {"location": f"/api/v1/requests/{request.id}"} if status == 201 else None
    return JSONResponse(request.model_dump(mode="json"), status_code=status, headers=headers)


_DOC = doc.ref(TrainingRequest)
_WRITE = doc.responses(_DOC, 400, 401, 403, 404, 409, description="The request as it is now (as `GET`).")


def _write(model: type[BaseModel], summary: str) -> dict[str, Any]:
    return {"summary": summary, "responses": _WRITE, "tags": ["commands"],
            "openapi_extra": doc.body(model, f"The same fields as the CLI's -f file ({model.__name__}).")}


def create_api(app: App) -> FastAPI:
    """The ``/api/v1`` sub-application over ``app``."""
    api = FastAPI(title="ldflow API", version="1", docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  description=DESCRIPTION)
    api.state.ldflow = copy.copy(app)
    api.state.ldflow.service = app.service.via("api")  # each write's events say they came through the API
    install_handlers(api)
    _commands(api)
    _queries(api)
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = doc.finish(generate())
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


def _commands(api: FastAPI) -> None:  # noqa: C901 - one small function per command
    @api.post("/requests", status_code=201, summary="Submit a new request (ldflow submit)", tags=["commands"],
              responses=doc.responses(_DOC, 400, 401, 403, status=201, description="The new request."),
              openapi_extra=doc.body(Intake, "The intake (Intake): title, requester, sponsor, requested solution …"))
    def submit(who: Writer, data: Input, app: AppDep) -> JSONResponse:
        return _document(app.service.submit(data.data, who.actor, data.source), 201)

    def command(path: str, model: type[BaseModel], summary: str,
                call: Callable[[App, int, Body, str, int | None], TrainingRequest]) -> None:
        def route(request_id: RequestId, who: Writer, data: Input, app: AppDep,
                  if_version: IfVersion = None) -> JSONResponse:
            return _document(call(app, request_id, data, who.actor, if_version))

        route.__name__ = path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
        api.post("/requests/{request_id}" + path, **_write(model, summary))(route)

    command("/diagnose", Diagnosis, "Diagnose (ldflow diagnose)",
            lambda app, i, b, who, v: app.service.diagnose(i, b.data, who, v, b.source))
    command("/rediagnose", doc.RediagnoseInput, "Diagnose again, with a reason (ldflow rediagnose)",
            lambda app, i, b, who, v: app.service.rediagnose(
                i, {k: x for k, x in b.data.items() if k != "reason"}, {"reason": b.data.get("reason", "")}, who, v,
                b.source))
    command("/plan/draft", MeasurementPlan, "Draft the measurement plan, or a new version (ldflow plan draft)",
            lambda app, i, b, who, v: app.service.draft_plan(i, b.data, who, v, b.source))

    @api.post("/requests/{request_id}/plan/approve", **_write(
        PlanApproval, "Record the sponsor's approval of the plan (ldflow plan approve): by the sponsor's own "
                      "token, or an admin token giving a reason (recorded on the sponsor's behalf)"))
    def plan_approve(request_id: RequestId, who: Writer, data: Input, app: AppDep,
                     if_version: IfVersion = None) -> JSONResponse:
        return _document(app.service.approve_plan(request_id, data.data, who.actor, if_version, data.source,
                                                  admin=who.role is Role.ADMIN))
    command("/design", DesignBrief, "Design (ldflow design)",
            lambda app, i, b, who, v: app.service.design(i, b.data, who, v, b.source))
    command("/redirect", Redirect, "Redirect: solve it without training (ldflow redirect)",
            lambda app, i, b, who, v: app.service.redirect(i, b.data, who, v, b.source))
    command("/sessions", SessionPlan, "Schedule or reschedule a session (ldflow session)",
            lambda app, i, b, who, v: app.service.schedule_session(i, b.data, who, v, b.source))
    command("/deliver", Delivery, "Record the delivery; checkpoints are scheduled (ldflow deliver)",
            lambda app, i, b, who, v: app.service.deliver(i, b.data, who, v, b.source))
    command("/roster", Roster, "Give or change the delivery's roster: the learners surveyed (ldflow roster)",
            lambda app, i, b, who, v: app.service.set_roster(i, b.data, who, v, b.source))
    command("/acknowledge", Acknowledgement, "Close the loop; the report goes out (ldflow acknowledge)",
            lambda app, i, b, who, v: app.service.acknowledge(i, b.data, who, v, b.source))
    command("/decline", Reason, "Decline, with a reason (ldflow decline)",
            lambda app, i, b, who, v: app.service.decline(i, b.data, who, v, b.source))
    command("/cancel", Reason, "Cancel, with a reason (ldflow cancel)",
            lambda app, i, b, who, v: app.service.cancel(i, b.data, who, v, b.source))
    command("/reopen", Reason, "Re-open a declined or cancelled request (ldflow reopen)",
            lambda app, i, b, who, v: app.service.reopen(i, b.data, who, v, b.source))
    command("/amend", Amendment, "Correct an open request, with a reason (ldflow amend)",
            lambda app, i, b, who, v: app.service.amend(i, b.data, who, v, b.source))
    command("/companions", CompanionPiece, "Add a companion piece to the solution mix; its owner is told "
                                           "(ldflow companion add)",
            lambda app, i, b, who, v: app.service.add_companion(i, b.data, who, v, b.source))

    @api.post("/requests/{request_id}/companions/{piece}/done",
              **_write(CompanionOutcome, "Mark a companion piece done (ldflow companion done)"))
    def companion_done(request_id: RequestId, piece: str, who: Writer, data: Input, app: AppDep,
                       if_version: IfVersion = None) -> JSONResponse:
        outcome = parse(CompanionOutcome, data.data, data.source)
        return _document(app.service.complete_companion(request_id, piece, outcome.note, who.actor, if_version))

    @api.post("/requests/{request_id}/companions/{piece}/drop",
              **_write(Reason, "Drop a companion piece, with a reason (ldflow companion drop)"))
    def companion_drop(request_id: RequestId, piece: str, who: Writer, data: Input, app: AppDep,
                       if_version: IfVersion = None) -> JSONResponse:
        return _document(app.service.drop_companion(request_id, piece, data.data, who.actor, if_version, data.source))

    command("/notes", doc.NoteInput, "Add a note (ldflow note)",
            lambda app, i, b, who, v: app.service.add_note(i, _note(b), who, b.source, expect_version=v))

    @api.post("/requests/{request_id}/measure", summary="Close measurement (ldflow measure)", tags=["commands"],
              responses=_WRITE)
    def measure(request_id: RequestId, who: Writer, app: AppDep, if_version: IfVersion = None) -> JSONResponse:
        return _document(app.service.measure(request_id, who.actor, if_version))

    @api.post("/requests/{request_id}/checkpoints/{key}/result",
              **_write(CheckpointResult, "Record a checkpoint's result, or close it as missed (ldflow record)"))
    def record(request_id: RequestId, key: Annotated[str, Path(max_length=200, description="e.g. m1:P30D")],
               who: Writer, data: Input, app: AppDep, if_version: IfVersion = None) -> JSONResponse:
        return _document(app.service.record(request_id, key.strip(), data.data, who.actor, if_version, data.source))


def _note(data: Body) -> str:
    """The note's text: a mapping ``{"text": ...}``, checked as the CLI's argument is (by the domain)."""
    from states.validation import parse

    return parse(doc.NoteInput, data.data).text


def _queries(api: FastAPI) -> None:
    read: list[str | Enum] = ["queries"]

    @api.get("/requests", summary="List requests: filters, sort, paging (ldflow list)", tags=read,
             responses=doc.responses(doc.ref(doc.RequestPage), 400, 401))
    def list_requests(
        who: Caller, app: AppDep,
        state: Annotated[list[str] | None, Query(description="Only requests in this state (repeatable).")] = None,
        requester: Annotated[str | None, Query(max_length=320, description="Only this requester (e-mail).")] = None,
        sponsor: Annotated[str | None, Query(max_length=320, description="Only this sponsor (e-mail).")] = None,
        created_from: Annotated[str | None, Query(alias="from", description="Created on or after (YYYY-MM-DD).")]
        = None,
        created_to: Annotated[str | None, Query(alias="to", description="Created on or before (YYYY-MM-DD).")] = None,
        sort: Annotated[str, Query(description="id, created, updated, state or title; '-' first to reverse.")] = "id",
        limit: Annotated[int, Query(ge=1, le=1000, description="Rows per page.")] = 20,
        page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number (from 1).")] = 1,
        offset: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Skip this many rows (instead of page).")]
        = None,
    ) -> JSONResponse:
        from flows.queries import request_filter

        start = offset if offset is not None else (page - 1) * limit
        flt = request_filter(states=[_text(s, "state") or "" for s in state or ()],
                             requester=_text(requester, "requester"), sponsor=_text(sponsor, "sponsor"),
                             created_from=_text(created_from, "from"), created_to=_text(created_to, "to"),
                             sort=_text(sort, "sort") or "id", limit=limit, offset=start)
        rows, total = app.service.list(flt)
        items = [{"id": r.id, "title": r.title, "state": r.state, "version": r.version, "requester": r.requester,
                  "sponsor": r.sponsor, "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}
                 for r in rows]
        return JSONResponse({"total": total, "page": start // limit + 1, "pages": max(1, math.ceil(total / limit)),
                             "limit": limit, "offset": start, "items": items})

    @api.get("/requests/{request_id}", summary="Everything about one request (ldflow show)", tags=read,
             responses=doc.responses(_DOC, 400, 401, 404))
    def show(request_id: RequestId, who: Caller, app: AppDep) -> JSONResponse:
        return _document(app.service.show(request_id))

    @api.get("/requests/{request_id}/history", summary="The request's history (ldflow history)", tags=read,
             responses=doc.responses(doc.array(doc.HistoryEntry), 400, 401, 404))
    def history(request_id: RequestId, who: Caller, app: AppDep) -> JSONResponse:
        return JSONResponse([asdict(r) for r in app.service.history(request_id)])

    @api.get("/requests/{request_id}/plan", summary="The measurement plan and its approval (ldflow plan show)",
             tags=read, responses=doc.responses(doc.ref(doc.PlanView), 400, 401, 404))
    def plan(request_id: RequestId, who: Caller, app: AppDep) -> JSONResponse:
        r = app.service.show(request_id)
        return JSONResponse({
            "id": r.id, "plan": r.plan.model_dump(mode="json") if r.plan else None, "version": r.plan_version,
            "approved_by": r.plan_approved_by,
            "approved_at": r.plan_approved_at.isoformat() if r.plan_approved_at else None,
            "draft": r.plan_draft.model_dump(mode="json") if r.plan_draft else None})

    @api.get("/attention", summary="What waits on a person: needs-review checkpoints, SLA breaches (ldflow attention)",
             tags=read, responses=doc.responses(doc.ref(doc.AttentionList), 400, 401))
    def attention_list(who: Caller, app: AppDep) -> JSONResponse:
        from flows import attention, sla

        policy = sla.load_policy(app.settings)
        items = attention.attention_list(app, policy=policy)
        return JSONResponse({"policy": policy.source, "total": len(items), "items": [i.as_dict() for i in items]})

    @api.get("/requests/{request_id}/sessions", summary="The request's delivery sessions", tags=read,
             responses=doc.responses(doc.array(Session), 400, 401, 404))
    def sessions(request_id: RequestId, who: Caller, app: AppDep) -> JSONResponse:
        return JSONResponse([s.model_dump(mode="json") for s in app.service.show(request_id).sessions])

    @api.get("/requests/{request_id}/report", summary="The stakeholder report of a measured request (ldflow report)",
             tags=read, responses=doc.responses(
                 {"type": "object", "additionalProperties": True}, 400, 401, 404, 409,
                 description="The report's data (format json), its text, its HTML or its PDF.",
                 more={"text/plain": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}},
                       "application/pdf": {"schema": {"type": "string", "format": "binary"}}}))
    def report(request_id: RequestId, who: Caller, app: AppDep,
               format: Annotated[str, Query(description="json (the data), text, html or pdf.",
                                            json_schema_extra={"enum": ["json", "text", "html", "pdf"]})] = "json",
               ) -> Response:
        from flows.queries import stakeholder_report, stakeholder_report_pdf

        if format not in ("json", ReportFormat.TEXT, ReportFormat.HTML, "pdf"):
            raise InvalidInput([FieldError("format", f"{format!r} is not one of json, text, html, pdf")])
        if format == "pdf":
            return Response(stakeholder_report_pdf(app, request_id), media_type="application/pdf")
        built = stakeholder_report(app, request_id)
        if format == "json":
            return JSONResponse(built.data)
        if format == ReportFormat.HTML:
            return Response(built.html, media_type="text/html; charset=utf-8")
        return PlainTextResponse(built.text)

    def export(app: App, request_id: int | None, format: ExportFormat) -> Response:
        from flows import exports
        from flows.queries import requests_to_export

        requests = requests_to_export(app, request_id)  # NotFound before the first byte
        if format == ExportFormat.CSV:
            return StreamingResponse(exports.csv_chunks(requests), media_type="text/csv; charset=utf-8")
        return StreamingResponse(exports.json_chunks(requests, app.service.history), media_type="application/json")

    exported = doc.responses(doc.array(doc.ExportItem), 400, 401, description="JSON (documents with their history) "
                             "or CSV (one row per request).", more={"text/csv": {"schema": {"type": "string"}}})

    @api.get("/export", summary="Export every request (ldflow export)", tags=read, responses=exported)
    def export_all(who: Caller, app: AppDep, format: Format = ExportFormat.JSON) -> Response:
        return export(app, None, format)

    @api.get("/requests/{request_id}/export", summary="Export one request (ldflow export ID)", tags=read,
             responses={**exported, **doc.errors(404)})
    def export_one(request_id: RequestId, who: Caller, app: AppDep, format: Format = ExportFormat.JSON) -> Response:
        return export(app, request_id, format)

    @api.get("/analytics", summary="Pipeline analytics from the audit history (ldflow analytics)", tags=read,
             responses=doc.responses(doc.ref(doc.Analytics), 400, 401))
    def analytics(
        who: Caller, app: AppDep,
        date_from: Annotated[str | None, Query(alias="from", description="Received on or after (YYYY-MM-DD).")] = None,
        date_to: Annotated[str | None, Query(alias="to", description="Received on or before (YYYY-MM-DD).")] = None,
        sponsor: Annotated[str | None, Query(max_length=320, description="Only this sponsor (e-mail).")] = None,
        owner: Annotated[str | None, Query(max_length=320, description="Only requests this person owns.")] = None,
        type_: Annotated[str | None, Query(alias="type", description="design, redirect or a redirect kind.")] = None,
    ) -> JSONResponse:
        from flows import analytics as query

        flt = query.analytics_filter(date_from=_text(date_from, "from"), date_to=_text(date_to, "to"),
                                     sponsor=_text(sponsor, "sponsor"), owner=_text(owner, "owner"),
                                     type_=_text(type_, "type"))
        clocks = query.clocks_of(app.settings, app.now())
        if flt.sponsor:
            view = query.sponsor_view(app.store, flt, clocks)
            return JSONResponse({**view["figures"], "sponsor_requests": view["requests"]})
        return JSONResponse(query.figures(app.store, flt, clocks))

    @api.get("/outbox", summary="The outbox: one row per e-mail, newest first (ldflow outbox list)", tags=read,
             responses=doc.responses(doc.array(doc.OutboxItem), 400, 401))
    def outbox(who: Caller, app: AppDep, status: Annotated[OutboxStatus | None, Query()] = None,
               limit: Annotated[int, Query(ge=1, le=10_000)] = 200) -> JSONResponse:
        rows = app.mail.outbox(status, limit)
        return JSONResponse([{"id": r.id, "key": r.key, "request_id": r.request_id, "template": r.template,
                              "status": r.status.value, "attempts": r.attempts, "last_error": r.last_error,
                              "sent_at": r.sent_at.isoformat() if r.sent_at else None, "message_id": r.message_id}
                             for r in rows])

