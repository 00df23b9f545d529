"""Export writers: requests as CSV rows or as JSON with their history (``ldflow export``).

xAPI statements are in :mod:`flows.xapi`; the terminal views in :mod:`flows.views`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from connectors.db.audit import AuditRecord
from states.request import TrainingRequest


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def json_chunks(requests: Iterable[TrainingRequest], history: Callable[[int], list[AuditRecord]]) -> Iterator[str]:
    """``[{"request": ..., "history": [...]}, ...]`` piece by piece: ``[``, one piece per request, the end
    (what ``export_json`` writes, and the API streams)."""
    count = 0
    yield "["
    for r in requests:
        assert r.id is not None
        item = {"request": r.model_dump(mode="json"), "history": [dataclasses.asdict(h) for h in history(r.id)]}
        yield ("\n" if count == 0 else ",\n") + json.dumps(item, ensure_ascii=False, default=str)
        count += 1
    yield "\n]\n" if count else "]\n"


def export_json(stream: IO[str], requests: Iterable[TrainingRequest],
                history: Callable[[int], list[AuditRecord]]) -> int:
    """Stream ``[{"request": ..., "history": [...]}, ...]``; returns the count."""
    pieces = 0
    for chunk in json_chunks(requests, history):
        stream.write(chunk)
        pieces += 1
    return pieces - 2


CSV_COLUMNS = ("id", "title", "state", "version", "requester", "sponsor", "created_at", "updated_at",
               "recommended_paths", "chosen_path", "delivered_start", "delivered_end", "audience_reached",
               "results", "roi_percent", "roi_isolated_benefits", "roi_not_isolated_benefits", "costs",
               "companions")


def csv_row(r: TrainingRequest) -> dict[str, Any]:
    if r.brief is not None:
        chosen = "design"
    elif r.redirect_record is not None and r.redirect_record.kind is not None:
        chosen = f"redirect:{r.redirect_record.kind.value}"
    else:
        chosen = ""
    results = "; ".join(f"{x.item_id} {x.outcome.value} ({_num(x.result)} vs target "
                        f"{x.goal or _num(x.target)} {x.unit}{'; ' + x.isolation if x.isolation else ''})"
                        for x in r.results)
    return {
        "id": r.id, "title": r.intake.title, "state": r.state.value, "version": r.version,
        "requester": r.intake.requester.email, "sponsor": r.intake.sponsor.email,
        "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat(),
        "recommended_paths": "; ".join(x.path for x in r.recommendations), "chosen_path": chosen,
        "delivered_start": r.delivery.start_date.isoformat() if r.delivery and r.delivery.start_date else "",
        "delivered_end": r.delivery.end_date.isoformat() if r.delivery and r.delivery.end_date else "",
        "audience_reached": r.delivery.audience_reached if r.delivery else "",
        "results": results, "roi_percent": r.roi.roi_percent if r.roi else "",
        "roi_isolated_benefits": _blank(r.roi.isolated_benefits if r.roi else None),
        "roi_not_isolated_benefits": _blank(r.roi.not_isolated_benefits if r.roi else None),
        "costs": r.plan.costs.total if r.plan is not None and r.plan.costs else "",
        # the solution mix: each companion piece as "id kind: what (owner email, due date, status)"
        "companions": "; ".join(f"{c.id} {c.kind.value}: {c.what} ({c.owner.email}, due {c.due.isoformat()}, "
                                f"{c.status.value})" for c in r.companions),
    }


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (=, +, -, @ first) is prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_chunks(requests: Iterable[TrainingRequest]) -> Iterator[str]:
    """The CSV export piece by piece: the header, then one row per request."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in itertools.chain([None], requests):
        if r is not None:
            writer.writerow({k: _cell(v) for k, v in csv_row(r).items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def export_csv(stream: IO[str], requests: Iterable[TrainingRequest]) -> int:
    pieces = 0
    for chunk in csv_chunks(requests):
        stream.write(chunk)
        pieces += 1
    return pieces - 1


# --- rows per survey answer and per checkpoint result (``ldflow export --rows answers|checkpoints``) -------

ANSWER_COLUMNS = ("request_id", "checkpoint", "item", "metric", "offset", "respondent", "value", "note",
                  "answered_at", "via")
CHECKPOINT_COLUMNS = ("request_id", "checkpoint", "item", "metric", "unit", "offset", "due_at", "status", "value",
                      "responses", "asked", "response_rate", "mean", "median", "share_at_or_above", "threshold",
                      "missed_reason", "closed_at")


def answer_rows(requests: Iterable[TrainingRequest]) -> Iterator[dict[str, Any]]:
    """One row per respondent's answer (the latest; earlier ones are in the history)."""
    for r in requests:
        metrics = {i.id: i.metric for i in r.plan.items} if r.plan is not None else {}
        for c in r.checkpoints:
            for a in c.answers:
                yield {"request_id": r.id, "checkpoint": c.key, "item": c.item_id, "metric": metrics.get(c.item_id, ""),
                       "offset": c.offset, "respondent": a.email, "value": a.value, "note": a.note,
                       "answered_at": a.at, "via": a.via}


def checkpoint_rows(requests: Iterable[TrainingRequest]) -> Iterator[dict[str, Any]]:
    """One row per checkpoint: its result, and for a survey n, asked, response rate, mean, median, share."""
    from states.surveys import current_tally

    for r in requests:
        items = {i.id: i for i in r.plan.items} if r.plan is not None else {}
        for c in r.checkpoints:
            item = items.get(c.item_id)
            t = c.tally if c.tally is not None else (current_tally(c, item) if c.asked and item is not None else None)
            yield {"request_id": r.id, "checkpoint": c.key, "item": c.item_id,
                   "metric": item.metric if item else "", "unit": item.unit if item else "", "offset": c.offset,
                   "due_at": c.due_at.isoformat(), "status": c.status.value, "value": c.value,
                   "responses": t.n if t else None, "asked": t.asked if t else None,
                   "response_rate": t.response_rate if t else None, "mean": t.mean if t else None,
                   "median": t.median if t else None, "share_at_or_above": t.share_at_or_above if t else None,
                   "threshold": t.threshold if t else None, "missed_reason": c.missed_reason,
                   "closed_at": c.closed_at.isoformat() if c.closed_at else None}


def export_rows(stream: IO[str], rows: Iterable[dict[str, Any]], columns: tuple[str, ...], as_csv: bool) -> int:
    """Write ``rows`` as CSV (a header, blank cells for None, formulas defused) or a JSON array; the count."""
    count = 0
    if as_csv:
        writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(_blank(row.get(k))) for k in columns})
            count += 1
        return count
    stream.write("[")
    for row in rows:
        stream.write(("\n" if count == 0 else ",\n") + json.dumps(row, ensure_ascii=False, default=str))
        count += 1
    stream.write("\n]\n" if count else "]\n")
    return count
