"""The results report as a PDF, read back as a person's viewer reads it: it opens, says what the report says
(pdftotext), embeds its fonts (pdffonts), and its pages render (pdftoppm; PNGs kept in LDFLOW_TEST_ARTIFACTS).
Its charts are valid SVG with a title and the table of the same numbers beside them; text people typed is
shown as text, never markup."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from connectors.email.pdf import report_pdf
from connectors.email.render import render_document
from connectors.testing import InMemoryStore
from flows import report
from flows.clock import FixedClock
from flows.service import Service
from tests.builders import ACTOR, T0, ack_data, intake_data
from tests.report_support import MISSED_REASON, evidence_request, ink, pages, pdffonts, pdftotext, poppler, to_png

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def service() -> Service:
    poppler()
    return Service(InMemoryStore(), FixedClock(T0))


def _pdf(service: Service, rid: int, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(report.build_pdf(service.show(rid)))
    return path


def test_the_pdf_states_results_isolation_roi_costs_missed_checkpoints_and_the_three_touchpoints(
        service: Service, tmp_path: Path) -> None:
    rid = evidence_request(service)
    pdf = _pdf(service, rid, tmp_path, "report-evidence")
    assert pdf.read_bytes().startswith(b"%PDF-") and 5_000 < pdf.stat().st_size < 200_000
    text = pdftotext(pdf)
    for expected in (
        "RESULTS REPORT", "Support desk: fix it the first time", f"[ldflow #{rid}]",
        "Results against baseline and target",
        # each result against its baseline and target, and how its effect was isolated (evidence.py's words)
        "Repeat incidents per month · Kirkpatrick level 4", "at most 10",
        "How the effect was isolated: the programme's effect: 9 incidents (trend line: 16 incidents expected "
        "without the programme (ITSM, linear trend Oct 2025 - Sep 2026)), worth 10,800 EUR",
        "estimate: 60% of the change attributed to the programme × 80% confidence",
        "Average handling time", "Guardrail", "held",
        "Open tickets at the end of the day", "between 60 and 100",
        # the missed checkpoint, with its reason
        "Checkpoints without a result", "Open tickets at the end of the day 30 days after delivery " + MISSED_REASON,
        # the honest ROI and the fully loaded costs, line by line
        "Return on investment", "Benefit-cost ratio 0.92, return on investment -8.5% (14,640 EUR of benefits for "
        "16,000 EUR invested)", "The benefits are the programme's isolated effect, not the raw change.",
        "Design 4,000 EUR", "Participants' time 24 agents x 4 hours 6,000 EUR", "Fully loaded costs 16,000 EUR",
        # the three touchpoints
        "1. What we take away", "resolution rate rose from 62% to 71%",
        "2. Our action plan", "add LAER to the onboarding path Olga Owner Wed 30 Sep 2026",
        "3. Thank you", "Sam Sponsor: freed two hours a week for practice",
    ):
        assert expected in text, f"{expected!r} not in the PDF's text:\n{text}"
    assert "draft" not in text.lower() and "(to be completed together)" not in text
    assert re.search(r"page 1 of \d", text)

    fonts = pdffonts(pdf)
    assert fonts, "the PDF names no font"
    assert all(f["emb"] == "yes" and f["sub"] == "yes" for f in fonts), fonts  # embedded subsets, nothing external
    assert {re.sub(r"^[A-Z]{6}\+", "", f["name"]) for f in fonts} <= {"Report-Sans", "Report-Sans-Bold",
                                                                    "Report-Sans-Oblique"}

    pngs = to_png(pdf, tmp_path / "pages")
    assert len(pngs) == pages(pdf) >= 2
    assert all(0.01 < ink(png) < 0.5 for png in pngs), [ink(p) for p in pngs]  # text on every page, none black


def test_each_result_has_a_chart_that_is_valid_svg_with_a_title_and_its_table(service: Service) -> None:
    rid = evidence_request(service)
    from dataclasses import replace

    from states.report import results_report

    notification = replace(results_report(service.show(rid)), key=f"{rid}:results_report")
    page = render_document(notification, "print.html")
    charts = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert len(charts) == len(service.show(rid).results) == 4
    for svg, metric in zip(charts, [r.metric for r in service.show(rid).results], strict=True):
        root = ET.fromstring(svg)  # well-formed XML, or this raises
        assert root.tag == f"{SVG}svg" and root.get("role") == "img"
        title = root.find(f"{SVG}title")
        assert title is not None and title.text is not None and title.text.startswith(metric)
        assert root.get("aria-labelledby") == title.get("id")
        assert root.findall(f"{SVG}circle"), "no marks"
        after = page[page.index(svg) + len(svg):]
        assert after.lstrip().startswith('<table class="figures">')  # the same numbers as a table, beside it
    incidents = ET.fromstring(charts[0])
    assert incidents.find(f"{SVG}title").text == "Repeat incidents per month: before 18, now 7, target at most 10"  # type: ignore[union-attr]
    labels = [t.text for t in incidents.iter(f"{SVG}text")]
    assert labels == ["target 10", "before 18", "now 7"]
    backlog = ET.fromstring(charts[3])
    assert backlog.find(f"{SVG}rect") is not None  # a range target is a band


def test_a_measured_request_gives_a_draft_with_the_touchpoints_still_to_come(service: Service,
                                                                            tmp_path: Path) -> None:
    rid = evidence_request(service, acknowledge=False)
    text = pdftotext(_pdf(service, rid, tmp_path, "report-draft"))
    assert "RESULTS REPORT · DRAFT" in text and "still to be completed together" in text
    assert "(to be completed together)" in text and "(to be agreed)" in text
    to_png(tmp_path / "report-draft.pdf", tmp_path / "pages")


def test_a_script_title_and_recap_are_text_in_the_pdf(service: Service, tmp_path: Path) -> None:
    title = '<script>alert("x")</script> & <b>bold</b> course'
    rid = evidence_request(service, title=title, acknowledge=False)
    service.acknowledge(rid, ack_data(recap=["<img src=x onerror=alert(1)> worked"]), ACTOR)
    notification = report.build(service.show(rid))
    assert "<script>" not in notification.html
    pdf = _pdf(service, rid, tmp_path, "report-escaped")
    text = pdftotext(pdf)
    assert title in text  # shown as typed, in the heading and in the footer
    assert text.count('<script>alert("x")</script>') >= 2
    assert "<img src=x onerror=alert(1)> worked" in text
    to_png(pdf, tmp_path / "pages")


def test_the_page_loads_nothing_from_outside(service: Service, tmp_path: Path) -> None:
    """A template override that points at a URL or a local file gets nothing: the page loads only our fonts."""
    rid = evidence_request(service, acknowledge=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET CONTENT")
    overrides = tmp_path / "templates"
    overrides.mkdir()
    packaged = Path(render_document.__code__.co_filename).parent / "templates" / "results_report.print.html.j2"
    page = packaged.read_text(encoding="utf-8").replace(
        "</body>", f'<img src="http://127.0.0.1:9/x.png"><object data="file://{secret}"></object>'
                   f'<link rel="stylesheet" href="file://{secret}"></body>')
    (overrides / "results_report.print.html.j2").write_text(page, encoding="utf-8")
    from dataclasses import replace

    from states.report import results_report

    notification = replace(results_report(service.show(rid)), key=f"{rid}:results_report")
    pdf = tmp_path / "override.pdf"
    pdf.write_bytes(report_pdf(notification, templates_dir=overrides))
    assert "TOP SECRET" not in pdftotext(pdf)


def test_no_pdf_before_measurement(service: Service) -> None:
    from states.errors import TransitionRefused

    rid = service.submit(intake_data(), ACTOR).id
    with pytest.raises(TransitionRefused):
        report.build_pdf(service.show(rid))
