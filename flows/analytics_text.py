"""The analytics figures as terminal text and as CSV (``ldflow analytics``); the JSON is the figures as they are."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from states.wording import plural


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:g} d"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def text(f: dict[str, Any], sponsor: dict[str, Any] | None = None) -> str:
    out: list[str] = []
    shown = ", ".join(f"{k} {v}" for k, v in f["filter"].items() if v) or "all requests"
    out.append(f"Pipeline analytics ({shown}): {plural(f['requests'], 'request')}")
    if sponsor is not None:
        out.append("")
        out.append(f"Requests of {sponsor['sponsor']}")
        for r in sponsor["requests"]:
            results = ", ".join(f"{x['item']} (L{x['level']}) {x['outcome'].replace('_', ' ')}" for x in r["results"])
            out.append(f"  #{r['id']:<5} {r['state']:<12} received {r['received']}  {r['title']}"
                       + (f"  results: {results}" if results else ""))
    out += ["", "Funnel (requests that ever reached each stage; conversion from the stage before)"]
    for row in f["funnel"]:
        conv = f"  {_pct(row['conversion'])} of {row['from']}" if row["from"] else ""
        out.append(f"  {row['stage']:<13} {row['count']:>7}{conv}")
    rd = f["redirects"]
    out += ["", f"Redirect rate: {_pct(rd['rate'])} ({rd['redirected']} of {rd['routed']} routed requests "
                "solved without training)"]
    out += [f"  by kind   {r['kind']:<24} {r['count']:>6}  {_pct(r['share'])}" for r in rd["by_kind"]]
    out += [f"  by cause  {r['cause']:<26} {r['redirected']:>4} of {r['requests']:<5} {_pct(r['rate'])}"
            for r in rd["by_cause"]]
    cy = f["cycle_days"]
    out += ["", "Cycle time (days: median, p90, requests)"]
    rows = [(f"in {r['state']}", r) for r in cy["per_state"]]
    rows += [(label, cy[key]) for label, key in (("to plan approval", "plan_approval"),
                                                 ("delivery → last result", "delivery_to_last_result"))]
    width = max(len(label) for label, _ in rows)  # one column of labels, the figures aligned under each other
    out += [f"  {label:<{width}} {_days(r['median']):>9} {_days(r['p90']):>9}  n={r['n']}" for label, r in rows]
    out += ["", "Trend by month received   received redirected designed delivered measured declined cancelled"]
    out += [f"  {r['month']:<24} {r['received']:>8} {r['redirected']:>10} {r['designed']:>8} {r['delivered']:>9} "
            f"{r['measured']:>8} {r['declined']:>8} {r['cancelled']:>9}" for r in f["trend"]]
    m = f["measurement"]
    out += ["", f"Measurement: {m['scheduled']} checkpoints scheduled, {m['sent']} surveys sent, {m['answered']} "
                f"answered, {m['missed']} missed, {m['needs_review']} need review; response rate "
                f"{_pct(m['response_rate'])}; every checkpoint closed on {m['all_closed']} of "
                f"{m['delivered_with_checkpoints']} delivered requests ({_pct(m['all_closed_share'])})"]
    o = f["outcomes"]
    out += ["", "Outcomes (met / partly met / not met / worse / no data)"]
    rows = [(f"{r['framework']} level {r['level']}", r) for r in o["by_level"]]
    rows += [(r["sponsor"], r) for r in o["by_sponsor"]]
    width = max((len(label) for label, _ in rows), default=0)
    out += [f"  {label:<{width}} {r['met']:>5} {r['partly_met']:>5} {r['not_met']:>5} {r['worse']:>5} "
            f"{r['no_data']:>5}" for label, r in rows]
    out += ["", "ROI portfolio (benefits isolated from other causes shown apart from those not isolated)"]
    out += [f"  {r['currency']}: isolated {_money(r['isolated_benefits'])}, not isolated "
            f"{_money(r['not_isolated_benefits'])}, fully loaded costs {_money(r['costs'])} "
            f"({plural(r['requests'], 'request')}); ROI on the isolated benefits "
            f"{'–' if r['isolated_roi_percent'] is None else str(r['isolated_roi_percent']) + '%'}"
            for r in f["roi"]] or ["  no measured request with an ROI"]
    b = f["sla_breaches"]
    if b["status"] != "computed":
        out += ["", f"SLA breaches: {b['status']} ({b['note']})"]
    else:
        out += ["", f"SLA breaches ({b['policy']} policy, as of {b['as_of'][:16].replace('T', ' ')} UTC): "
                    f"{b['requests_breached']} of {plural(b['requests'], 'request')} breached a clock"]
        out += [f"  {r['title']}: {r['breached']} breached ({r['running_breached']} still running), "
                f"{r['near']} near" for r in b["slas"]]
    return "\n".join(out) + "\n"


def _rows(f: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    yield "requests", "", "count", f["requests"]
    for r in f["funnel"]:
        yield "funnel", r["stage"], "count", r["count"]
        yield "funnel", r["stage"], "conversion", r["conversion"]
    rd = f["redirects"]
    yield "redirects", "", "rate", rd["rate"]
    for r in rd["by_kind"]:
        yield "redirects.kind", r["kind"], "count", r["count"]
    for r in rd["by_cause"]:
        yield "redirects.cause", r["cause"], "rate", r["rate"]
        yield "redirects.cause", r["cause"], "requests", r["requests"]
    for r in f["cycle_days"]["per_state"]:
        for k in ("median", "p90", "n"):
            yield "cycle_days", r["state"], k, r[k]
    for key in ("plan_approval", "delivery_to_last_result"):
        for k, v in f["cycle_days"][key].items():
            yield "cycle_days", key, k, v
    for r in f["trend"]:
        for k, v in r.items():
            if k != "month":
                yield "trend", r["month"], k, v
    for k, v in f["measurement"].items():
        yield "measurement", "", k, v
    for r in f["outcomes"]["by_level"]:
        for k in ("met", "partly_met", "not_met", "worse", "no_data"):
            yield "outcomes.level", f"{r['framework']} {r['level']}", k, r[k]
    for r in f["outcomes"]["by_sponsor"]:
        for k in ("met", "partly_met", "not_met", "worse", "no_data"):
            yield "outcomes.sponsor", r["sponsor"], k, r[k]
    for r in f["roi"]:
        for k, v in r.items():
            if k != "currency":
                yield "roi", r["currency"], k, v
    yield "sla_breaches", "", "status", f["sla_breaches"]["status"]
    for r in f["sla_breaches"].get("slas", []):
        for k in ("breached", "running_breached", "near"):
            yield "sla_breaches", r["sla"], k, r[k]


def csv_text(f: dict[str, Any]) -> str:
    """One figure a row: section, key, measure, value (empty for none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("section", "key", "measure", "value"))
    for section, key, measure, value in _rows(f):
        writer.writerow((section, key, measure, "" if value is None else value))
    return buffer.getvalue()
