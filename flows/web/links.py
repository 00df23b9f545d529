"""The pages people outside L&D reach through the signed links in their mails (no sign-in).

``/l/approve/<id>/<token>`` the sponsor's plan approval, ``/l/survey/…`` a respondent's answer,
``/l/result/…`` an owner's result, ``/l/status/…`` the requester's status page (and, once the request is
acknowledged, ``/l/status/…/report.pdf`` the results report they were sent). Each GET shows the
page; each POST carries the page's form token (``flows.web.form_tokens``) and runs one command of
``flows.link_actions`` (the use and the action in one transaction). A link that cannot be used
shows why with 403 (forged, for another request or page) or 410 (expired, used, out of date) and
writes nothing; bad input shows the field next to it (400); a refusal lists what is missing (409).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from flows import report
from flows.bootstrap import App
from flows.link_actions import LinkResponses, Opened, status_words
from flows.links import LinkRefused, Purpose
from flows.web.common import pdf_response
from flows.web.form_tokens import FormTokens
from states import responses, wording
from states.errors import FieldError, InvalidInput, NotFound, TransitionRefused
from states.request import TrainingRequest

router = APIRouter(prefix="/l", include_in_schema=False)
_TOKEN_IN_PATH = re.compile(r"(/l/[a-z]+/\d+/)[^/?\s]+")


class RedactLinks(logging.Filter):
    """Keeps link secrets out of the access log: ``/l/approve/7/<token>`` is logged as
    ``/l/approve/7/…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_PATH.sub(r"\1…", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _TOKEN_IN_PATH.sub(r"\1…", record.msg)
        return True


logging.getLogger("uvicorn.access").addFilter(RedactLinks())
#: The pages' templates (flows/web/templates, autoescaped), with the mails' wording as filters. Its own
#: instance, so this module does not import ``flows.web.app`` (which includes this router).
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
for _name in ("after_delivery", "offsets_after_delivery", "quantity", "money", "path_label", "metric_label",
              "unit_phrase"):
    templates.env.filters[_name] = getattr(wording, _name)


def ldflow_app(request: Request) -> App:
    """The ldflow ``App`` the web app serves (``flows.web.app.ldflow_app``, without importing it)."""
    app: App = request.app.state.ldflow
    return app
FORM_ERROR = "This form has expired or did not come from this page. Open the link from your mail again."


AppDep = Annotated[App, Depends(ldflow_app)]


def _responses(app: AppDep) -> LinkResponses:
    return LinkResponses(app)


Actions = Annotated[LinkResponses, Depends(_responses)]


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def _problem(request: Request, exc: Exception) -> HTMLResponse:
    if isinstance(exc, LinkRefused):
        return _page(request, "links/problem.html", {"title": exc.title, "message": str(exc)}, exc.status)
    if isinstance(exc, NotFound):
        return _page(request, "links/problem.html", {"title": "Nothing here", "message":
                                                     "The request this link was made for is not there any more."}, 404)
    raise exc


def _opened(request: Request, actions: LinkResponses, token: str, purpose: Purpose,
            request_id: int) -> Opened | HTMLResponse:
    try:
        return actions.open(token, purpose, request_id)
    except (LinkRefused, NotFound) as exc:
        return _problem(request, exc)


def _context(actions: LinkResponses, opened: Opened, form: str, **more: Any) -> dict[str, Any]:
    tokens = FormTokens(actions.app.settings)
    return {"opened": opened, "req": opened.request, "link": opened.link, "item": opened.item,
            "checkpoint": opened.checkpoint, "form_token": tokens.issue(form, opened.link.id),
            "errors": {}, "values": {}, **more}


def _submit(request: Request, actions: LinkResponses, token: str, purpose: Purpose, request_id: int,
            form: dict[str, str], page: str, name: str, act: Callable[[], Any], done: str,
            extra: Callable[[Opened], dict[str, Any]] | None = None) -> HTMLResponse:
    """Check the form token, run ``act``; the page again with the errors (nothing written) when it fails."""
    opened = _opened(request, actions, token, purpose, request_id)
    if isinstance(opened, HTMLResponse):
        return opened
    more = extra(opened) if extra else {}
    if not FormTokens(actions.app.settings).valid(form.get("form_token", ""), name, opened.link.id):
        context = _context(actions, opened, name, **more)
        context.update(values=form, errors={"": FORM_ERROR})
        return _page(request, page, context, 403)
    try:
        result = act()
    except (LinkRefused, NotFound) as exc:
        return _problem(request, exc)
    except InvalidInput as exc:
        context = _context(actions, opened, name, **more)
        context.update(values=form, errors={e.field or "": e.message for e in exc.errors})
        return _page(request, page, context, 400)
    except TransitionRefused as exc:
        context = _context(actions, opened, name, **more)
        context.update(values=form, refused=exc.missing)
        return _page(request, page, context, 409)
    return _page(request, "links/done.html", {"req": result, "message": done, "link": opened.link})


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: str(v)[:5000] for k, v in data.items() if isinstance(v, str)}


def _number(text: str) -> float | str | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # the model names the field


# --- the sponsor's plan approval ------------------------------------------------------------------

def _plan(opened: Opened) -> dict[str, Any]:
    pending = responses.pending_plan(opened.request)
    return {"plan": pending[1] if pending else None, "version": pending[0] if pending else None}


@router.get("/approve/{request_id}/{token}", response_class=HTMLResponse)
def approval_page(request: Request, request_id: int, token: str,
                  actions: Actions) -> Response:
    opened = _opened(request, actions, token, Purpose.PLAN_APPROVAL, request_id)
    if isinstance(opened, HTMLResponse):
        return opened
    return _page(request, "links/approve.html", _context(actions, opened, "approve", **_plan(opened)))


@router.post("/approve/{request_id}/{token}", response_class=HTMLResponse)
async def approval_post(request: Request, request_id: int, token: str,
                        actions: Actions) -> Response:
    form = await _form(request)
    comment = form.get("comment", "")
    if form.get("decision") == "changes":
        def act() -> Any:
            return actions.ask_changes(token, request_id, comment)
        done = "Thank you. We have passed your comments to the plan's owners; you will get the revised plan to approve."
    else:
        def act() -> Any:
            return actions.approve(token, request_id, comment)
        done = "Thank you: the measurement plan is approved. We will take the baseline and start the design."
    return _submit(request, actions, token, Purpose.PLAN_APPROVAL, request_id, form, "links/approve.html",
                   "approve", act, done, _plan)


# --- a respondent's survey ------------------------------------------------------------------------

@router.get("/survey/{request_id}/{token}", response_class=HTMLResponse)
def survey_page(request: Request, request_id: int, token: str,
                actions: Actions) -> Response:
    opened = _opened(request, actions, token, Purpose.SURVEY, request_id)
    if isinstance(opened, HTMLResponse):
        return opened
    return _page(request, "links/survey.html", _context(actions, opened, "survey"))


@router.post("/survey/{request_id}/{token}", response_class=HTMLResponse)
async def survey_post(request: Request, request_id: int, token: str,
                      actions: Actions) -> Response:
    form = await _form(request)
    value = _number(form.get("value", ""))

    def act() -> Any:
        if value is None:
            raise InvalidInput([FieldError("value", "give your answer as a number")])
        return actions.answer(token, request_id, {"value": value, "note": form.get("note", "").strip()})
    return _submit(request, actions, token, Purpose.SURVEY, request_id, form, "links/survey.html", "survey", act,
                   "Thank you: your answer is recorded. You can change it with the same link while the survey is open.")


# --- an owner's result ----------------------------------------------------------------------------

@router.get("/result/{request_id}/{token}", response_class=HTMLResponse)
def result_page(request: Request, request_id: int, token: str,
                actions: Actions) -> Response:
    opened = _opened(request, actions, token, Purpose.RESULT, request_id)
    if isinstance(opened, HTMLResponse):
        return opened
    return _page(request, "links/result.html", _context(actions, opened, "result"))


@router.post("/result/{request_id}/{token}", response_class=HTMLResponse)
async def result_post(request: Request, request_id: int, token: str,
                      actions: Actions) -> Response:
    form = await _form(request)
    if form.get("decision") == "missed":
        def act() -> Any:
            return actions.close_missed(token, request_id, form.get("missed_reason", ""))
        done = "Thank you: the checkpoint is closed as missed, with your reason."
    else:
        def act() -> Any:
            value = _number(form.get("value", ""))
            if isinstance(value, str):
                raise InvalidInput([FieldError("value", "give the result as a number")])
            return actions.record_result(token, request_id, value, form.get("source", ""),
                                         _date(form.get("measured_on", "")), form.get("note", ""))
        done = "Thank you: the result is recorded."
    return _submit(request, actions, token, Purpose.RESULT, request_id, form, "links/result.html", "result", act,
                   done)


# --- the requester's status -----------------------------------------------------------------------

@router.get("/status/{request_id}/{token}", response_class=HTMLResponse)
def status_page(request: Request, request_id: int, token: str,
                actions: Actions) -> Response:
    opened = _opened(request, actions, token, Purpose.STATUS, request_id)
    if isinstance(opened, HTMLResponse):
        return opened
    where, next_step = status_words(opened.request)
    return _page(request, "links/status.html", {"req": opened.request, "where": where, "next_step": next_step,
                                                "report_pdf": _final_report(opened.request)})


def _final_report(r: TrainingRequest) -> bool:
    """The requester may download the results report once it is final (acknowledged: they were sent it)."""
    return r.acknowledgement is not None


@router.get("/status/{request_id}/{token}/report.pdf")
def status_report_pdf(request: Request, request_id: int, token: str, actions: Actions) -> Response:
    """The final results report as a PDF, for the holder of the requester's status link (404 before it is final)."""
    opened = _opened(request, actions, token, Purpose.STATUS, request_id)
    if isinstance(opened, HTMLResponse):
        return opened
    if not _final_report(opened.request):
        return _page(request, "links/problem.html", {"title": "No report yet", "message":
                                                     "The results report is sent once the results are in and "
                                                     "discussed; this page will offer it then."}, 404)
    templates_dir = actions.app.settings.templates_dir
    data = report.build_pdf(opened.request, templates_dir=str(templates_dir) if templates_dir else None)
    return pdf_response(data, request_id)


def _date(text: str) -> date | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
