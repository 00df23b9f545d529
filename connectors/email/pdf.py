"""The results report as a PDF: the report's print page (``results_report.print.html.j2``) through WeasyPrint.

The page is rendered by :func:`connectors.email.render.render_document` with the mails' HTML environment
(autoescaped, the same filters, context and ``LDFLOW_TEMPLATES_DIR`` overrides), so the PDF says what the
mail says, in the same words. Its font is the vendored DejaVu Sans (``fonts/``, referenced by ``@font-face``
relative to that folder): the PDF looks the same on any machine and embeds a subset of the font, with no
network and no system font needed. The page loads nothing else: any other URL (an ``<img>`` or a stylesheet
a template override might add) is refused, so rendering never reaches the network or the file system.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Final

from connectors.email.render import Attachment, render_document
from states.notifications import Notification

__all__ = ["FONTS", "PDF_TEMPLATES", "PdfUnavailable", "attachments_for", "report_filename", "report_pdf"]

FONTS: Final = Path(__file__).resolve().parent / "fonts"
PDF_TEMPLATES: Final = frozenset({"results_report"})  # the mails that carry their report as a PDF
_ALLOWED: Final = tuple(f"file://{FONTS}/{name}" for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf",
                                                             "DejaVuSans-Oblique.ttf"))


class PdfUnavailable(RuntimeError):
    """WeasyPrint cannot run here (a system library is missing)."""


def _fetcher() -> Any:
    """WeasyPrint's URL fetcher, for our fonts only."""
    from weasyprint import URLFetcher

    class FontsOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            if url not in _ALLOWED:
                raise ValueError(f"the report loads no outside resource ({url[:80]})")
            return super().fetch(url, headers)

    return FontsOnly(allowed_protocols=("file",))


def report_filename(request_id: int) -> str:
    """``ldflow-report-42.pdf``."""
    return f"ldflow-report-{int(request_id)}.pdf"


def report_pdf(notification: Notification, *, templates_dir: str | os.PathLike[str] | None = None) -> bytes:
    """The PDF of ``notification`` (a ``results_report``): its print page rendered, then laid out by WeasyPrint
    (about half a second for a three-page report: see bench/report_pdf.py).

    Raises ``TemplateContextError`` when the page cannot be rendered, ``PdfUnavailable`` without Pango."""
    html = render_document(notification, "print.html", templates_dir=templates_dir)
    try:
        from weasyprint import HTML  # imported on first use: it loads Pango
    except OSError as exc:  # WeasyPrint is installed, the system library it needs is not
        raise PdfUnavailable(f"the report's PDF needs Pango: install libpango-1.0-0 and libpangoft2-1.0-0 "
                             f"({exc})") from exc

    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # a refused URL is our rule, not a warning to print
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = HTML(string=html, base_url=f"{FONTS.as_uri()}/", url_fetcher=_fetcher())
    data: bytes = document.write_pdf()
    return data


def attachments_for(notification: Notification, *,
                    templates_dir: str | os.PathLike[str] | None = None) -> list[Attachment]:
    """What a mail of ``notification`` carries besides its bodies: the results report carries its PDF."""
    if notification.template not in PDF_TEMPLATES:
        return []
    return [Attachment(report_filename(notification.request_id), "application/pdf",
                       report_pdf(notification, templates_dir=templates_dir))]
