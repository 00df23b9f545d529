"""The acknowledgement mail carries the results report as a PDF: the pipeline's send step (``flows.steps``)
writes the .eml (SQLite app, the outbox folder), and the message parsed back is multipart/mixed with the
text and HTML bodies and one application/pdf part that opens and says the report's words."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

from flows import bootstrap, steps
from flows.clock import FixedClock
from flows.settings import Settings
from tests.builders import T0
from tests.report_support import evidence_request, pdffonts, pdftotext, poppler, to_png


def _eml(folder: Path, template: str) -> list[EmailMessage]:
    found = []
    for path in sorted(folder.rglob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["X-Ldflow-Template"] == template:
            found.append(message)
    return found


def test_the_acknowledgement_mail_attaches_the_report_pdf(tmp_path: Path) -> None:
    poppler()
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ldflow.db'}", mail_from="ld@example.org")
    app = bootstrap.build(settings, clock=FixedClock(T0))
    try:
        rid = evidence_request(app.service)
        summary = steps.send_outbox(app)
        assert summary.counts["failed"] == 0, summary.errors
    finally:
        app.close()
    [mail] = _eml(settings.outbox_dir, "results_report")
    assert mail.get_content_type() == "multipart/mixed"
    body, attachment = mail.get_payload()  # type: ignore[misc]
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.get_payload()] == ["text/plain", "text/html"]
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == f"ldflow-report-{rid}.pdf"
    data = attachment.get_content()
    assert data.startswith(b"%PDF-") and 5_000 < len(data) < 200_000  # a few pages: tens of KB, fonts subset
    pdf = tmp_path / "attached.pdf"
    pdf.write_bytes(data)
    text = pdftotext(pdf)
    assert "Support desk: fix it the first time" in text and "1. What we take away" in text
    assert all(f["emb"] == "yes" for f in pdffonts(pdf))
    to_png(pdf, tmp_path / "pages")
    # the other mails carry no attachment
    others = _eml(settings.outbox_dir, "plan_approval_request") + _eml(settings.outbox_dir, "diagnosis_summary")
    assert others
    for other in others:
        assert not list(other.iter_attachments())
