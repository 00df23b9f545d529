"""Helpers for the tests of the results report's PDF: a request with every kind of evidence, and the
Poppler tools (pdftotext, pdffonts, pdftoppm) that read a PDF back as a person's viewer would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from connectors.loader import load_file
from tests.builders import (
    ACTOR,
    ack_data,
    approval_data,
    brief_data,
    delivery_data,
    diagnosis_data,
    intake_data,
    record_when_due,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MISSED_REASON = "the ITSM export failed that month"


def poppler() -> None:
    """The Poppler tools are part of the machine (.ci/run installs poppler-utils); fail loudly without them."""
    missing = [tool for tool in ("pdftotext", "pdffonts", "pdftoppm", "pdfinfo") if shutil.which(tool) is None]
    assert not missing, f"install poppler-utils: {', '.join(missing)} not found"


def evidence_request(service: Any, *, title: str = "Support desk: fix it the first time",
                     acknowledge: bool = True) -> int:
    """A request measured on the evidence plan (trend line, estimate, guardrail, a range, cost lines), one
    checkpoint closed as missed, and acknowledged with the three touchpoints (unless ``acknowledge`` is off)."""
    rid = service.submit(intake_data(title=title), ACTOR).id
    service.diagnose(rid, diagnosis_data(), ACTOR)
    plan, _ = load_file(str(EXAMPLES / "plan-evidence.yaml"))
    service.draft_plan(rid, plan, ACTOR)
    sponsor = service.show(rid).intake.sponsor.email
    service.approve_plan(rid, approval_data(sponsor), sponsor)
    service.design(rid, brief_data(), ACTOR)
    service.deliver(rid, delivery_data(), ACTOR)
    record_when_due(service, rid, "backlog:P30D", {"missed_reason": MISSED_REASON}, ACTOR)
    for key, value in (("incidents:P90D", 7), ("handling-time:P90D", 395), ("first-time-fix:P90D", 71),
                       ("backlog:P90D", 90)):
        record_when_due(service, rid, key, {"value": value, "note": "ITSM"}, ACTOR)
    service.measure(rid, ACTOR)
    if acknowledge:
        service.acknowledge(rid, ack_data(), ACTOR)
    return rid


def _run(args: list[str], data: bytes | None = None) -> str:
    proc = subprocess.run(args, input=data, capture_output=True, timeout=60, check=True)
    return proc.stdout.decode("utf-8")


def pdftotext(pdf: Path) -> str:
    """The PDF's text as a viewer's copy would give it (layout kept), whitespace runs made single spaces."""
    return " ".join(_run(["pdftotext", "-layout", str(pdf), "-"]).split())


def pdffonts(pdf: Path) -> list[dict[str, str]]:
    """Each font of the PDF: its name and whether it is embedded (``emb``)."""
    lines = _run(["pdffonts", str(pdf)]).splitlines()[2:]
    fonts = []
    for line in lines:
        cols = line.split()
        # name type... encoding emb sub uni object-id gen: the flags are the 5th/4th/3rd columns from the end
        fonts.append({"name": cols[0], "emb": cols[-5], "sub": cols[-4], "uni": cols[-3]})
    return fonts


def pages(pdf: Path) -> int:
    info = _run(["pdfinfo", str(pdf)])
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def to_png(pdf: Path, out: Path, dpi: int = 80) -> list[Path]:
    """Each page as a PNG (``pdftoppm``), under ``out``; copied to ``LDFLOW_TEST_ARTIFACTS`` when set (CI keeps
    them to look at)."""
    out.mkdir(parents=True, exist_ok=True)
    _run(["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(out / pdf.stem)])
    made = sorted(out.glob(f"{pdf.stem}*.png"))
    keep = os.environ.get("LDFLOW_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for png in made:
            shutil.copy(png, Path(keep) / png.name)
    return made


def ink(png: Path) -> float:
    """The share of a page's pixels that are not white: an empty or blank page is near 0."""
    from PIL import Image

    with Image.open(png) as image:
        grey = image.convert("L")
        histogram = grey.histogram()
    return 1 - sum(histogram[250:]) / max(1, sum(histogram))
