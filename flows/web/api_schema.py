"""The JSON API's document: the shapes it takes and returns, the errors, the OpenAPI components.

Request bodies are the CLI's input models (:mod:`states.models`, :class:`states.amendments.Amendment`):
the routes hand the body, read by the one input loader, to the same :class:`flows.service.Service`
method as the CLI, which validates it with the same model, so the API takes exactly what ``-f FILE``
takes and names the same fields when something is wrong. Their JSON schemas, and those of the
responses, are generated here from the models in one pass (:data:`COMPONENTS`), so the document
follows the models when they change.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from connectors.ports import OutboxStatus
from states.amendments import Amendment
from states.companions import CompanionOutcome, CompanionPiece
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
    Text,
)
from states.request import Session, TrainingRequest
from states.revisions import PlanRevision

# --- inputs that are not one domain model ------------------------------------------------------------


class RediagnoseInput(Diagnosis):
    """A new diagnosis and why it changes (``ldflow rediagnose ID -f FILE --reason TEXT``)."""

    reason: Text = Field(default="", description="why the diagnosis changes (required)")


class NoteInput(BaseModel):
    """A note for the request's history (``ldflow note ID TEXT``)."""

    model_config = ConfigDict(extra="forbid")
    text: Text = Field(description="the note")


# --- outputs ----------------------------------------------------------------------------------------


class Problem(BaseModel):
    """One wrong field of the input."""

    field: str = Field(description="the field, dotted (business_goal.metric, items[0].owner.email); empty for "
                                   "the body as a whole")
    message: str


class ApiError(BaseModel):
    """Every error: ``error`` says which (the CLI's exit code in ``exit_code``); nothing was written."""

    error: Literal["invalid_input", "refused", "conflict", "not_found", "unauthorized", "forbidden", "error"]
    message: str
    exit_code: int = Field(description="the exit code the CLI gives for the same error")
    errors: list[Problem] = Field(default_factory=list, description="invalid_input: every wrong field")
    missing: list[str] = Field(default_factory=list, description="refused: every missing item")
    trigger: str | None = Field(default=None, description="refused: what was refused")
    state: str | None = Field(default=None, description="refused: the request's state")
    allowed: list[str] = Field(default_factory=list, description="refused: what the state allows instead")
    expected_version: int | None = Field(default=None, description="conflict: the version asked for (if_version)")
    current_version: int | None = Field(default=None, description="conflict: the request's version now")


class RequestRow(BaseModel):
    id: int
    title: str
    state: str
    version: int
    requester: str
    sponsor: str
    created_at: str
    updated_at: str


class RequestPage(BaseModel):
    """One page of ``GET /requests`` (as ``ldflow list --json``)."""

    total: int
    page: int
    pages: int
    limit: int
    offset: int
    items: list[RequestRow]


class HistoryEntry(BaseModel):
    """One event of a request's history, a link of its hash chain (as ``ldflow history --json``)."""

    seq: int
    request_id: int
    type: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    version: int
    actor: str = Field(description="who acted: the person (through the API the token's owner); the channel is "
                                   "payload.via (entries from before it had its field: '<owner> (via api)')")
    at: str
    payload: dict[str, Any]
    prev_hash: str = Field(description="hash of the same request's previous event (64 zeros for its first)")
    hash: str
    rseq: int = Field(description="the event's number in its request's own hash chain (1, 2, …)")
    doc: str = Field(description="sha256 of the request's state and document as this event left them "
                                 "(empty for events migrated from before 0009_audit_chains, but the newest)")


class PlanView(BaseModel):
    """The measurement plan in force and a revision awaiting approval (as ``ldflow plan show --json``)."""

    id: int
    plan: MeasurementPlan | None
    version: int
    approved_by: str | None
    approved_at: str | None
    draft: PlanRevision | None


class ExportItem(BaseModel):
    request: TrainingRequest
    history: list[HistoryEntry]


class OutboxItem(BaseModel):
    """One e-mail of the outbox (as ``ldflow outbox list --json``)."""

    id: int
    key: str
    request_id: int
    template: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    sent_at: str | None
    message_id: str | None


class AttentionItem(BaseModel):
    """One thing that waits on a person (as an item of ``ldflow attention --json``)."""

    request_id: int
    title: str
    kind: Literal["checkpoint", "sla"]
    status: Literal["needs_review", "breached", "near"]
    text: str
    owners: list[str]
    checkpoint: str
    sla: str


class AttentionList(BaseModel):
    """The attention list (as ``ldflow attention --json``): the SLA policy in force and the items."""

    policy: str
    total: int
    items: list[AttentionItem]


class Analytics(BaseModel):
    """``GET /analytics`` (as ``ldflow analytics --json``): every section of the figures; with ``sponsor``,
    also ``sponsor_requests``. The sections' rows are described in the README's Analytics section."""

    filter: dict[str, str]
    requests: int
    funnel: list[dict[str, Any]]
    redirects: dict[str, Any]
    cycle_days: dict[str, Any]
    trend: list[dict[str, Any]]
    measurement: dict[str, Any]
    outcomes: dict[str, Any]
    roi: list[dict[str, Any]]
    sla_breaches: dict[str, Any]
    sponsor_requests: list[dict[str, Any]] | None = None


# --- the components ---------------------------------------------------------------------------------

INPUTS: tuple[type[BaseModel], ...] = (Intake, Diagnosis, RediagnoseInput, MeasurementPlan, PlanApproval,
                                       DesignBrief, Redirect, SessionPlan, Delivery, CheckpointResult,
                                       Acknowledgement, Reason, Amendment, NoteInput, CompanionPiece,
                                       CompanionOutcome, Roster)
OUTPUTS: tuple[type[BaseModel], ...] = (TrainingRequest, Session, RequestPage, HistoryEntry, PlanView, ExportItem,
                                       OutboxItem, ApiError, AttentionList, Analytics)

_REFS, _DEFS = models_json_schema([(m, "validation") for m in INPUTS] + [(m, "serialization") for m in OUTPUTS],
                                  ref_template="#/components/schemas/{model}")
COMPONENTS: dict[str, Any] = _DEFS.get("$defs", {})


def ref(model: type[BaseModel], mode: Literal["validation", "serialization"] = "serialization") -> dict[str, Any]:
    """The ``$ref`` of ``model``'s schema in :data:`COMPONENTS`."""
    return dict(_REFS[(model, mode)])


def array(model: type[BaseModel]) -> dict[str, Any]:
    return {"type": "array", "items": ref(model)}


def body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """The ``requestBody`` of a write: ``model`` as JSON or YAML (as ``ldflow … -f FILE`` reads)."""
    schema = ref(model, "validation")
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": schema},
                                        "application/yaml": {"schema": schema}}}}


_ERRORS = {
    400: "Invalid input: every wrong field is named (`errors`); nothing was written.",
    401: "No token, or one that is not valid or was revoked (`Authorization: Bearer <token>`).",
    403: "The token's role may not do this (a viewer writes); nothing was written.",
    404: "No such request (or checkpoint).",
    409: "Refused (`missing` lists every missing item) or a conflict (the request is not at `if_version`); "
         "nothing was written.",
}


def errors(*codes: int) -> dict[int | str, Any]:
    """The documented error responses ``codes`` (each an :class:`ApiError`)."""
    return {code: {"description": _ERRORS[code], "content": {"application/json": {"schema": ref(ApiError)}}}
            for code in codes}


def responses(ok: dict[str, Any], *codes: int, status: int = 200, description: str = "OK",
              content_type: str = "application/json", more: dict[str, Any] | None = None) -> dict[int | str, Any]:
    """The documented responses of a route: its success and its possible errors."""
    return {status: {"description": description, "content": {content_type: {"schema": ok}, **(more or {})}},
            **errors(*codes)}


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document with our components, and without FastAPI's 422 (the API answers 400)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(COMPONENTS)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    return document
