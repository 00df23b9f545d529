"""The report's PDF from the web app: the staff request page links ``/requests/{id}/report.pdf`` (any signed-in
role; sign-in first, 404 for no request, 409 before measurement), and the requester's status link offers the final
report once the request is acknowledged (404 before; a forged link 403)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.links_support import mail_links
from tests.report_support import evidence_request, pdftotext, poppler, to_png
from tests.web_support import WebRig, rig


@pytest.fixture
def web(tmp_path: Path) -> WebRig:
    poppler()
    return rig(tmp_path)


def _is_pdf(response: object, rid: int, tmp_path: Path, name: str) -> str:
    assert getattr(response, "status_code", None) == 200, getattr(response, "text", "")
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["content-type"] == "application/pdf"
    assert headers["content-disposition"] == f'attachment; filename="ldflow-report-{rid}.pdf"'
    assert headers["cache-control"] == "no-store"
    pdf = tmp_path / f"{name}.pdf"
    pdf.write_bytes(response.content)  # type: ignore[attr-defined]
    to_png(pdf, tmp_path / "pages")
    return pdftotext(pdf)


def test_staff_download_the_report_pdf_from_the_request_page(web: WebRig, tmp_path: Path) -> None:
    rid = evidence_request(web.app.service, acknowledge=False)
    viewer = web.client("viewer")
    page = viewer.get(f"/requests/{rid}").text
    assert f'href="/requests/{rid}/report.pdf"' in page
    text = _is_pdf(viewer.get(f"/requests/{rid}/report.pdf"), rid, tmp_path, "staff-draft")
    assert "RESULTS REPORT · DRAFT" in text and "Repeat incidents per month" in text

    anonymous = TestClient(web.web, follow_redirects=False).get(f"/requests/{rid}/report.pdf")
    assert anonymous.status_code in (303, 401) and anonymous.headers.get("content-type") != "application/pdf"
    assert viewer.get("/requests/999/report.pdf").status_code == 404
    fresh = web.app.service.submit(web.app.service.show(rid).intake.model_dump(mode="json"), "ops@example.org").id
    early = viewer.get(f"/requests/{fresh}/report.pdf")
    assert early.status_code == 409 and "reported on once it is measured" in early.text


def test_the_requester_downloads_the_final_report_from_the_status_link(web: WebRig, tmp_path: Path) -> None:
    rid = evidence_request(web.app.service, acknowledge=False)
    [status] = mail_links(web.app, "intake_acknowledgement", rid)
    client = TestClient(web.web, follow_redirects=False)
    assert "report.pdf" not in client.get(status).text
    before = client.get(f"{status}/report.pdf")
    assert before.status_code == 404 and "No report yet" in before.text

    from tests.builders import ACTOR, ack_data

    web.app.service.acknowledge(rid, ack_data(), ACTOR)
    page = client.get(status).text
    assert f'href="{status}/report.pdf"' in page
    text = _is_pdf(client.get(f"{status}/report.pdf"), rid, tmp_path, "status-final")
    assert "1. What we take away" in text and "DRAFT" not in text
    forged = client.get(status[:-4] + "AAAA/report.pdf")
    assert forged.status_code == 403 and forged.headers["content-type"].startswith("text/html")


def test_the_api_gives_the_report_as_pdf(tmp_path: Path) -> None:
    from connectors.testing import InMemorySender, InMemoryUnitOfWork
    from flows import bootstrap
    from flows.clock import FixedClock
    from flows.settings import Settings
    from flows.web.app import create_app
    from tests.api_walk import API, bearer
    from tests.builders import T0

    poppler()
    uow = InMemoryUnitOfWork()
    app = bootstrap.compose(Settings(home=tmp_path), store=uow.store, uow=uow, clock=FixedClock(T0),
                            sender=InMemorySender(), sources=lambda: [])
    viewer = bearer(app.tokens.create("reader", "viewer", "Vic Viewer", "test").secret)
    rid = evidence_request(app.service)
    with TestClient(create_app(app)) as client:
        got = client.get(f"{API}/requests/{rid}/report", params={"format": "pdf"}, headers=viewer)
        assert got.headers["content-type"] == "application/pdf"
        assert "1. What we take away" in _is_pdf_bytes(got.content, tmp_path)
        assert client.get(f"{API}/requests/{rid}/report", params={"format": "pdf"}).status_code == 401
        bad = client.get(f"{API}/requests/{rid}/report", params={"format": "docx"}, headers=viewer)
        assert bad.status_code == 400 and "json, text, html, pdf" in bad.text


def _is_pdf_bytes(data: bytes, tmp_path: Path) -> str:
    pdf = tmp_path / "api.pdf"
    pdf.write_bytes(data)
    return pdftotext(pdf)
