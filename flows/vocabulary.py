"""The small vocabularies the entry points offer as choices (``--format``, ``--flow``, ``--sort``),
as enums: cheap to import (``ldflow --help`` lists them) and shared by the CLI and the application."""

from __future__ import annotations

from enum import StrEnum

from states.kinds import RedirectKind


class FlowName(StrEnum):
    """The Prefect flows (``ldflow run --flow``), in the order a pass runs them."""

    PIPELINE = "pipeline"
    INTAKE = "intake"
    FOLLOWUPS = "followups"
    ADVANCE = "advance"
    DISPATCH = "dispatch"


class ExportRows(StrEnum):
    """``ldflow export --rows``: one row per request (with its document), per survey answer, per checkpoint."""

    REQUESTS = "requests"
    ANSWERS = "answers"
    CHECKPOINTS = "checkpoints"


class ExportFormat(StrEnum):
    """``ldflow export``: documents with their history, or one row per request."""

    JSON = "json"
    CSV = "csv"


class ReportFormat(StrEnum):
    """``ldflow report``: what it prints."""

    TEXT = "text"
    HTML = "html"


class SortKey(StrEnum):
    """What ``ldflow list`` sorts by (a leading ``-`` reverses it)."""

    ID = "id"
    CREATED = "created"
    UPDATED = "updated"
    STATE = "state"
    TITLE = "title"


#: The redirect kinds ``ldflow redirect --kind`` offers (the domain's own enum, cheap to import).
RedirectKindChoice = RedirectKind
