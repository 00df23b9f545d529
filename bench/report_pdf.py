"""The results report as a PDF: what one PDF costs next to the HTML report, and what the acknowledgement
mail costs with its PDF attached next to the same mail without it (issue 11, item 4).

Measured on one acknowledged request with every kind of evidence (tests/report_support.py: four items with a
trend line, an estimate, a guardrail and a range target, a missed checkpoint, four cost lines; three pages),
in one process, interleaved round by round so the machine's load falls on both sides alike:
  * baseline: ``flows.report.build`` — the text and HTML report (``ldflow report``, the web page);
  * ``flows.report.build_pdf`` — the PDF (``ldflow report --pdf``, ``GET /requests/{id}/report.pdf``);
  * the acknowledgement mail: ``connectors.email.render.render`` without attachments (baseline) and with
    ``connectors.email.pdf.attachments_for`` (what the pipeline's send step does).
Also the first PDF of a process (importing WeasyPrint and loading Pango and the font: what a CLI call pays).

    python bench/report_pdf.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._common import emit_json, environment, summary_ms  # noqa: E402
from connectors.email.render import render  # noqa: E402
from connectors.testing import InMemoryStore  # noqa: E402
from flows import report  # noqa: E402
from flows.clock import FixedClock  # noqa: E402
from flows.service import Service  # noqa: E402
from states.report import results_report  # noqa: E402
from tests.builders import T0  # noqa: E402
from tests.report_support import evidence_request  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    console = Console()
    service = Service(InMemoryStore(), FixedClock(T0))
    request = service.show(evidence_request(service))
    assert request.id is not None
    notification = replace(results_report(request), key=f"{request.id}:results_report", request_id=request.id)

    started = time.perf_counter()
    from connectors.email.pdf import attachments_for

    first = report.build_pdf(request)
    cold = time.perf_counter() - started

    def mail(with_pdf: bool) -> int:
        attachments = attachments_for(notification) if with_pdf else ()
        message = render(notification, "ld@example.org", "example.org", now=T0, attachments=attachments)
        return len(message.as_bytes())

    times: dict[str, list[float]] = {"html": [], "pdf": [], "mail": [], "mail+pdf": []}
    sizes = {"html": len(report.build(request).html.encode()), "pdf": len(first), "mail": mail(False),
             "mail+pdf": mail(True)}
    steps = {"html": lambda: report.build(request), "pdf": lambda: report.build_pdf(request),
             "mail": lambda: mail(False), "mail+pdf": lambda: mail(True)}
    for _ in range(args.rounds):
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)

    stats = {name: summary_ms(values) for name, values in times.items()}
    table = Table(title=f"results report, {args.rounds} rounds (ms)")
    for column in ("what", "p50", "p95", "mean", "bytes", "× baseline (p50)"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for name, baseline in (("html", "html"), ("pdf", "html"), ("mail", "mail"), ("mail+pdf", "mail")):
        s = stats[name]
        table.add_row(name, f"{s['p50']:.1f}", f"{s['p95']:.1f}", f"{s['mean']:.1f}", f"{sizes[name]:,}",
                      f"{s['p50'] / stats[baseline]['p50']:.1f}")
    console.print(table)
    console.print(f"first PDF of a process (import WeasyPrint, load Pango and the font): {cold * 1000:.0f} ms")
    emit_json("report_pdf", {"rounds": args.rounds, "ms": stats, "bytes": sizes, "cold_first_pdf_ms": cold * 1000,
                             "pdf_over_html_p50": stats["pdf"]["p50"] / stats["html"]["p50"],
                             "mail_pdf_over_mail_p50": stats["mail+pdf"]["p50"] / stats["mail"]["p50"],
                             "env": environment()})


if __name__ == "__main__":
    main()
