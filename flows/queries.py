"""The read side beyond one request: the request list's filter, exports, the stakeholder report,
xAPI statements. Every entry point asks these, and renders what they return its own way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from connectors.db.store import ListFilter
from flows import report, xapi
from flows.vocabulary import SortKey
from states.errors import FieldError, InvalidInput
from states.lifecycle import State
from states.request import TrainingRequest
from states.validation import MAX_INT64

if TYPE_CHECKING:
    from flows.bootstrap import App


def _date(value: str | None, name: str, errors: list[FieldError]) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(name, f"{value!r} is not a date (YYYY-MM-DD)"))
        return None


def request_filter(*, states: Sequence[str] = (), requester: str | None = None, sponsor: str | None = None,
                   created_from: str | None = None, created_to: str | None = None, sort: str = "id",
                   limit: int = 20, offset: int = 0) -> ListFilter:
    """The list filter for these criteria, as a person types them; InvalidInput naming every wrong one.

    ``sort`` is a :class:`SortKey`, ``-`` in front for descending; dates are YYYY-MM-DD (UTC)."""
    errors: list[FieldError] = []
    known = [s.value for s in State]
    bad = [s for s in states if s not in known]
    if bad:
        errors.append(FieldError("state", f"unknown {'state' if len(bad) == 1 else 'states'} {', '.join(bad)}; "
                                          f"known: {', '.join(known)}"))
    keys = [k.value for k in SortKey]
    if sort.lstrip("-") not in keys:
        errors.append(FieldError("sort", f"{sort!r} is not one of {', '.join(keys)} (prefix '-' to reverse)"))
    start = _date(created_from, "from", errors)
    end = _date(created_to, "to", errors)
    if not 0 <= offset <= MAX_INT64:
        errors.append(FieldError("offset", f"the rows to skip (--offset or --page) must be at most {MAX_INT64:,}"))
    if errors:
        raise InvalidInput(errors)
    return ListFilter(states=tuple(states), requester=requester, sponsor=sponsor, created_from=start,
                      created_to=end, sort=sort, limit=limit, offset=offset)


def requests_to_export(app: App, request_id: int | None = None) -> Iterator[TrainingRequest]:
    """One request (NotFound when unknown, before anything is written), or every request by id."""
    if request_id is not None:
        return iter([app.service.show(request_id)])
    requests: Iterator[TrainingRequest] = app.store.iter_requests()
    return requests


def stakeholder_report(app: App, request_id: int, loaded: TrainingRequest | None = None) -> report.Report:
    """The results report of a measured request: what ``acknowledge`` sends to the stakeholders
    (of ``loaded`` when the caller has the request already, e.g. the request page)."""
    templates = app.settings.templates_dir
    request = loaded if loaded is not None and loaded.id == request_id else app.service.show(request_id)
    return report.build(request, templates_dir=str(templates) if templates else None)


def stakeholder_report_pdf(app: App, request_id: int) -> bytes:
    """The results report of a measured request as a PDF (what the acknowledgement mail attaches)."""
    templates = app.settings.templates_dir
    return report.build_pdf(app.service.show(request_id), templates_dir=str(templates) if templates else None)


def xapi_statements(app: App, request_id: int | None = None) -> list[dict[str, Any]]:
    """xAPI 1.0.3 statements for the delivered and measured events of one request or of all."""
    return xapi.statements(app.service, request_id)
