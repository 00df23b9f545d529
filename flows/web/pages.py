"""The staff pages: the board (``GET /``) and a request's page (``GET /requests/{id}``) with its
action forms (``POST /requests/{id}/{command}``).

Routes stay thin: the board comes from :func:`flows.board.board`, a request and its history from
the ``Service``, the report from :func:`flows.queries.stakeholder_report`, the timeline's words from
:func:`flows.timeline.summarize`, the report's PDF (``GET /requests/{id}/report.pdf``) from
:func:`flows.queries.stakeholder_report_pdf`; a form runs the same ``Service`` method as the CLI command
(:mod:`flows.web.forms`), as the signed-in account, ``via: web``. A refusal, bad input or a stale
form re-renders the page with what went wrong next to the form, and nothing is written.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from connectors.ports import User
from flows import board as boards
from flows import queries, sla
from flows.attribution import shown
from flows.bootstrap import App
from flows.timeline import summarize
from flows.web import forms
from flows.web.auth import check_csrf, require_user, require_writer
from flows.web.common import StaffRoute, page, pdf_response, see_other
from states.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    InvalidTransition,
    LdflowError,
    NotFound,
    TransitionRefused,
)
from states.lifecycle import Command, allows

router = APIRouter(route_class=StaffRoute)


def _app(request: Request) -> App:
    app: App = request.app.state.ldflow
    return app


@router.get("/", include_in_schema=False)
def board_page(request: Request) -> Response:
    require_user(request)
    params = request.query_params
    try:
        flt = boards.board_filter(state=params.getlist("state"), sponsor=params.get("sponsor", ""),
                                  owner=params.get("owner", ""), requester=params.get("requester", ""),
                                  q=params.get("q", ""), attention=params.get("attention", ""),
                                  page=params.get("page", "1"), per_page=params.get("per_page", "50"))
    except InvalidInput as exc:
        return page(request, "board.html", {"board": None, "errors": {e.field: e.message for e in exc.errors},
                                            "params": params}, 400)
    result = boards.board(_app(request), flt)
    return page(request, "board.html", {"board": result, "errors": {}, "params": params})


HISTORY_SHOWN = 50  # newest history entries on a request's page; ?history=all shows every one


def _request_context(app: App, request_id: int, user: User, whole_history: bool = False) -> dict[str, Any]:
    r = app.service.show(request_id)  # the one read of the document: the report below uses it too
    if whole_history:
        records = app.service.history(request_id)
        total = len(records)
    else:
        records, total = app.service.recent_history(request_id, HISTORY_SHOWN)
    history = [(rec, summarize(rec), shown(rec.actor, rec.payload.get("via"))) for rec in records]
    report = queries.stakeholder_report(app, request_id, r) if allows(Command.REPORT, r.state) else None
    action, missing = boards.next_step(r)
    policy, sla_error = sla.policy_or_error(app.settings)
    # the SLA clocks run from the request's whole history (the page shows only its newest entries)
    whole = records if whole_history or total == len(records) else app.service.history(request_id)
    attention = boards.attention(r, app.now(), whole, policy)
    if sla_error:
        attention = [*attention, f"SLA clocks not shown: {sla_error}"]
    return {"r": r, "history": history, "report": report, "actions": forms.shown(r), "next_action": action,
            "missing": missing, "attention": attention, "owners": boards.owners(r),
            "open_checkpoints": [c for c in r.checkpoints if not c.closed], "is_admin": user.role == "admin",
            "history_total": total, "history_hidden": total - len(records)}


@router.get("/requests/{request_id}", include_in_schema=False)
def request_page(request: Request, request_id: int) -> Response:
    user = require_user(request)
    try:
        context = _request_context(_app(request), request_id, user,
                                   whole_history=request.query_params.get("history") == "all")
    except NotFound:
        return page(request, "message.html", {"title": "Not found", "message": f"There is no request {request_id}."},
                    404)
    done = request.query_params.get("done", "")
    return page(request, "request.html", {**context, "done": done if forms.find(done) else "", "failed": None,
                                          "posted": {}, "field_errors": {}})


def _place(action: forms.Action, exc: InvalidInput) -> tuple[dict[str, list[str]], list[str]]:
    """Each error under the form field it is about (a nested one under its field, anything inside the
    YAML under the YAML area); the rest (e.g. the version) in a list above the form."""
    names = [f.name for f in action.fields]
    yaml_field = next((f.name for f in action.fields if f.kind == "yaml"), None)
    placed: dict[str, list[str]] = {}
    loose: list[str] = []
    for e in exc.errors:
        field = next((n for n in names if e.field == n or e.field.startswith(n + ".")), None)
        if field is None and yaml_field is not None and e.field != "version":
            field = yaml_field
        if field is None:
            loose.append(str(e))
        else:
            placed.setdefault(field, []).append(str(e) if e.field and e.field != field else e.message)
    return placed, loose


@router.get("/requests/{request_id}/report.pdf", include_in_schema=False)
def report_pdf(request: Request, request_id: int) -> Response:
    """The results report as the PDF the acknowledgement mail attaches (any signed-in account; 404 for no
    request, 409 before measurement)."""
    require_user(request)
    try:
        data = queries.stakeholder_report_pdf(_app(request), request_id)
    except NotFound:
        return page(request, "message.html", {"title": "Not found", "message": f"There is no request {request_id}."},
                    404)
    except TransitionRefused as exc:
        return page(request, "message.html", {"title": "No report yet", "message": str(exc)}, 409)
    return pdf_response(data, request_id)


@router.post("/requests/{request_id}/{command}", include_in_schema=False)
async def run_action(request: Request, request_id: int, command: str) -> Response:
    form = await request.form()
    user = require_writer(request)
    check_csrf(request, form)
    app = _app(request)
    action = forms.find(command)
    if action is None:
        return page(request, "message.html", {"title": "Not found", "message": f"There is no action {command!r}."},
                    404)
    posted = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    version_text = posted.get("version", "")
    failed: dict[str, Any] = {"command": action.command.value}
    status = 400
    try:
        data = forms.form_data(action, posted)
        version = int(version_text) if version_text.isdigit() else None
        if version is None:
            raise InvalidInput([FieldError("version", "the form's version is missing: reload the page")])
        forms.run(app.service.via("web"), action, request_id, data, user.email, version, user.role == "admin")
    except NotFound:
        return page(request, "message.html", {"title": "Not found", "message": f"There is no request {request_id}."},
                    404)
    except InvalidInput as exc:
        failed["fields"], failed["invalid"] = _place(action, exc)
    except InvalidTransition as exc:
        status, failed["refused"], failed["missing"] = 409, str(exc), []
    except TransitionRefused as exc:
        status, failed["refused"], failed["missing"] = 409, str(exc).split("; missing:")[0], exc.missing
    except Conflict as exc:
        status, failed["conflict"] = 409, str(exc)
    except LdflowError as exc:
        failed["invalid"] = [str(exc)]
    else:
        return see_other(request, f"/requests/{request_id}?done={action.command.value}")
    context = _request_context(app, request_id, user)
    return page(request, "request.html", {**context, "done": "", "failed": failed, "posted": posted,
                                          "field_errors": failed.get("fields", {})}, status)
