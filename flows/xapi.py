"""xAPI 1.0.3 statements for the ``delivered`` and ``measured`` events of training requests.

One statement per event, built from the audit history (so an export is the
same every time: the statement id is derived from the event's hash), with one
registration UUID per request tying its statements together in a Learning
Record Store:

* delivered: ``<actor> delivered <the programme>`` — verb
  ``http://activitystrea.ms/schema/1.0/deliver``; ``result.extensions`` hold
  the audience reached and the format.
* survey_answered: ``<respondent> answered <the checkpoint's question>`` — verb
  ``http://adlnet.gov/expapi/verbs/answered``, the actor the respondent's ``mbox``, the object the
  question (``<base>/requests/<id>/checkpoints/<item>/<offset>``, its parent the programme),
  ``result.response`` and ``result.score.raw`` the answer (``min``/``max`` the item's scale);
  an answer that replaces an earlier one says so in ``result.extensions``.
* measured: ``<actor> evaluated <the programme>`` — verb
  ``http://www.tincanapi.co.uk/verbs/evaluated``; ``result.success`` is true
  when every plan item met its target, ``result.score.scaled`` the share of
  items that did, and ``result.extensions`` hold each item's result against
  baseline and target and the Phillips benefit-cost ratio and ROI when known.

The actor is who recorded the event: an ``mbox`` when it is an e-mail address,
else an ``account`` on ``base``. ``base`` (``LDFLOW_XAPI_BASE``, default
``http://localhost/ldflow``) prefixes activity ids and extension keys; set it
to a URL your organisation controls before sending statements to a shared LRS.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

from flows import attribution
from states import lifecycle
from states.events import Delivered, Measured, SurveyAnswered
from states.lifecycle import State
from states.request import TrainingRequest
from states.results import Outcome
from states.wording import article

VERSION = "1.0.3"
NAMESPACE = uuid.UUID("6c646666-6c6f-5778-8000-617069000000")
VERB_DELIVERED = {"id": "http://activitystrea.ms/schema/1.0/deliver", "display": {"en-US": "delivered"}}
VERB_MEASURED = {"id": "http://www.tincanapi.co.uk/verbs/evaluated", "display": {"en-US": "evaluated"}}
ACTIVITY_COURSE = "http://adlnet.gov/expapi/activities/course"
ACTIVITY_PERFORMANCE = "http://adlnet.gov/expapi/activities/performance"
VERB_ANSWERED = {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"en-US": "answered"}}
ACTIVITY_QUESTION = "http://adlnet.gov/expapi/activities/question"
EVENTS = (Delivered.type, Measured.type, SurveyAnswered.type)
# Only a request that reached delivery has statements: it is delivered or in a state after it.
_DELIVERED_OR_LATER = tuple(s.value for s in State if s in lifecycle.reachable(State.DELIVERED))
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def default_base() -> str:
    return (os.environ.get("LDFLOW_XAPI_BASE") or "http://localhost/ldflow").rstrip("/")


def registration(request: TrainingRequest) -> str:
    """The request's registration UUID: the same for all its statements, stable across exports."""
    return str(uuid.uuid5(NAMESPACE, f"registration:{request.id}:{request.created_at.isoformat()}"))


def _agent(actor: str, base: str) -> dict[str, Any]:
    if _EMAIL.match(actor):
        return {"objectType": "Agent", "mbox": f"mailto:{actor.lower()}"}
    return {"objectType": "Agent", "name": actor, "account": {"homePage": base, "name": actor}}


def _lang(text: str) -> dict[str, str]:
    return {"en-US": text}


def _activity(request: TrainingRequest, base: str) -> dict[str, Any]:
    redirected = request.redirect_record is not None
    definition: dict[str, Any] = {
        "name": _lang(request.intake.title),
        "description": _lang(request.intake.requested_solution[:2000]),
        "type": ACTIVITY_PERFORMANCE if redirected else ACTIVITY_COURSE,
        "extensions": {f"{base}/extensions/path": (
            f"redirect:{request.redirect_record.kind.value}" if request.redirect_record and request.redirect_record.kind
            else "design")},
    }
    return {"objectType": "Activity", "id": f"{base}/requests/{request.id}", "definition": definition}


def _context(request: TrainingRequest, base: str) -> dict[str, Any]:
    goal = request.intake.business_goal
    return {
        "registration": registration(request),
        "platform": "ldflow",
        "language": "en-US",
        "extensions": {
            f"{base}/extensions/request-id": request.id,
            f"{base}/extensions/business-goal": goal.model_dump(mode="json"),
        },
    }


def _timestamp(at: str) -> str:
    return at if at.endswith("Z") or "+" in at[10:] else at + "Z"


def statement(request: TrainingRequest, event: Any, base: str | None = None) -> dict[str, Any]:
    """The statement for one audit record (``type`` delivered or measured) of ``request``."""
    base = (base or default_base()).rstrip("/")
    payload = event.payload or {}
    out: dict[str, Any] = {
        "id": str(uuid.uuid5(NAMESPACE, f"statement:{event.hash}")),
        "actor": _agent(attribution.person(event.actor), base),  # an old "Ann (via api)" is Ann
        "object": _activity(request, base),
        "context": _context(request, base),
        "timestamp": _timestamp(event.at),
        "version": VERSION,
    }
    if event.type == Delivered.type:
        delivery = payload.get("delivery") or {}
        out["verb"] = VERB_DELIVERED
        out["result"] = {"completion": True, "extensions": {
            f"{base}/extensions/audience-reached": delivery.get("audience_reached"),
            f"{base}/extensions/format": delivery.get("format"),
            f"{base}/extensions/start-date": delivery.get("start_date"),
            f"{base}/extensions/end-date": delivery.get("end_date"),
        }}
    elif event.type == SurveyAnswered.type:
        out.update(_answered(request, payload, base))
    elif event.type == Measured.type:
        results = payload.get("results") or []
        met = sum(1 for r in results if r.get("outcome") == Outcome.MET)
        result: dict[str, Any] = {
            "completion": True,
            "success": bool(results) and met == len(results),
            "extensions": {f"{base}/extensions/results": results},
        }
        if results:
            result["score"] = {"scaled": round(met / len(results), 4), "raw": met, "min": 0, "max": len(results)}
        if payload.get("roi"):
            result["extensions"][f"{base}/extensions/roi"] = payload["roi"]
        out["verb"] = VERB_MEASURED
        out["result"] = result
    else:
        raise ValueError(f"no xAPI statement for {article(event.type)} {event.type!r} event (only {', '.join(EVENTS)})")
    return out


def _answered(request: TrainingRequest, payload: dict[str, Any], base: str) -> dict[str, Any]:
    """The actor, verb, object, result and context of a survey answer's statement."""
    key = str(payload.get("checkpoint", ""))
    _, item_id, offset = (key.split(":") + ["", "", ""])[:3]
    item = next((i for i in request.plan.items if i.id == item_id), None) if request.plan is not None else None
    value = payload.get("value")
    score: dict[str, Any] = {"raw": value}
    if item is not None and item.survey is not None:
        score.update(min=item.survey.scale_min, max=item.survey.scale_max)
    result: dict[str, Any] = {"response": f"{value:g}" if isinstance(value, (int, float)) else str(value),
                              "score": score, "completion": True}
    if payload.get("replaces") is not None:
        result["extensions"] = {f"{base}/extensions/replaces": payload["replaces"]}
    context = _context(request, base)
    context["contextActivities"] = {"parent": [{"objectType": "Activity", "id": f"{base}/requests/{request.id}"}]}
    name = item.metric if item is not None else key
    return {"actor": _agent(str(payload.get("respondent", "")), base), "verb": VERB_ANSWERED, "result": result,
            "context": context,
            "object": {"objectType": "Activity", "id": f"{base}/requests/{request.id}/checkpoints/{item_id}/{offset}",
                       "definition": {"name": _lang(name), "type": ACTIVITY_QUESTION,
                                      "interactionType": "numeric"}}}


def _requests(service: Any, request_id: int | None) -> Iterator[TrainingRequest]:
    if request_id is not None:
        yield service.show(request_id)
        return
    iter_requests = getattr(service.store, "iter_requests", None)
    if iter_requests is not None:
        yield from iter_requests()
        return
    from connectors.db.store import ListFilter

    offset = 0
    while True:
        page, _total = service.list(ListFilter(states=_DELIVERED_OR_LATER,
                                               limit=500, offset=offset))
        if not page:
            return
        for summary in page:
            yield service.show(summary.id)
        offset += len(page)


def iter_statements(service: Any, request_id: int | None = None, base: str | None = None) -> Iterator[dict[str, Any]]:
    """Statements for one request, or for every request, in request then history order."""
    for request in _requests(service, request_id):
        if request.delivery is None and request_id is None:
            continue  # never delivered: no statement, and no need to read its history
        assert request.id is not None
        for event in service.history(request.id):
            if event.type in EVENTS:
                yield statement(request, event, base)


def statements(service: Any, request_id: int | None = None, base: str | None = None) -> list[dict[str, Any]]:
    """All statements as a list (``ldflow export --format xapi``); see :func:`iter_statements`."""
    return list(iter_statements(service, request_id, base))
