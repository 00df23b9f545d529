"""The analytics dashboard, a sponsor's page and its signed read-only link, on the fakes over the
hand-built history: the figures shown, every SVG chart valid XML with a <title> and a table beside it,
bad filters named, staff only."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from tests import analytics_history
from tests.analytics_history import QUINN, SAM
from tests.web_support import WebRig, rig

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def web(tmp_path: Path) -> tuple[WebRig, dict[str, int]]:
    w = rig(tmp_path)
    ids = analytics_history.build(w.app.service, w.clock)
    return w, ids


def charts(html: str) -> list[ET.Element]:
    found = [ET.fromstring(s) for s in SVG.findall(html)]  # raises on anything that is not well-formed XML
    for svg in found:
        assert svg.tag == f"{NS}svg"
        title = svg.find(f"{NS}title")
        assert title is not None and title.text, ET.tostring(svg)[:200]
    return found


def test_the_dashboard_shows_every_figure_as_svg_with_its_table(web: tuple[WebRig, dict[str, int]]) -> None:
    w, _ids = web
    client = w.client("viewer")
    response = client.get("/analytics")
    assert response.status_code == 200
    html = response.text
    found = charts(html)
    titles = [svg.find(f"{NS}title").text for svg in found]  # type: ignore[union-attr]
    assert any(t.startswith("Funnel") for t in titles) and "Cycle time per state: median and p90 in days" in titles
    assert "Requests received per month" in titles and any(t.startswith("Outcomes per level") for t in titles)
    # each chart's numbers in a table beside it
    assert "<td>delivered</td><td class=\"num\">2</td><td class=\"num\">66.7% of redirected/designed</td>" in html
    assert "Redirect rate: 33.3%" in html and "<td>tool_fix</td>" in html
    assert "<td>in diagnosed</td><td class=\"num\">3.0 d</td><td class=\"num\">4.0 d</td>" in html
    assert "9,000.00" in html and "SLA breaches" in html and "breached a clock of the built-in policy" in html
    assert "<script" not in html.split("</head>")[1]  # no JavaScript draws anything
    filtered = client.get("/analytics", params={"sponsor": QUINN}).text
    assert "1 request," in filtered


def test_bad_filters_are_named_and_staff_only(web: tuple[WebRig, dict[str, int]]) -> None:
    w, _ids = web
    assert w.client().get("/analytics").status_code == 303  # to the sign-in page
    bad = w.client("viewer").get("/analytics", params={"from": "2026-05-01", "to": "2026-04-01", "type": "x"})
    assert bad.status_code == 400
    assert "2026-04-01 is before from (2026-05-01)" in bad.text and "&#39;x&#39; is not one of" in bad.text
    unknown = w.client("viewer").get("/analytics", params={"sponsor": "nobody@example.org"})
    assert unknown.status_code == 400 and "no request has the sponsor nobody@example.org" in unknown.text


def test_a_sponsors_page_and_its_read_only_link(web: tuple[WebRig, dict[str, int]]) -> None:
    w, ids = web
    staff = w.client("partner").get(f"/sponsors/{quote(SAM)}")
    assert staff.status_code == 200
    charts(staff.text)
    assert f'<a href="/requests/{ids["design"]}">Objection handling</a>' in staff.text
    assert "m1 (kirkpatrick L3): partly met" in staff.text and "acknowledged" in staff.text
    url = re.search(r'class="share-link" readonly value="([^"]+)"', staff.text).group(1)  # type: ignore[union-attr]
    path = url.split("testserver", 1)[-1] if "testserver" in url else "/" + url.split("/", 3)[3]
    anonymous = w.client()
    shared = anonymous.get(path)
    assert shared.status_code == 200, shared.text
    charts(shared.text)
    assert "Objection handling" in shared.text and "read-only" in shared.text
    assert "/requests/" not in shared.text and "<form" not in shared.text  # nothing on it acts
    assert anonymous.get(path[:-3] + "abc").status_code == 403  # forged
    w.clock.advance(timedelta(days=w.app.settings.link_sponsor_days + 1))
    assert anonymous.get(path).status_code == 410  # expired
    assert w.client("partner").get("/sponsors/nobody@example.org").status_code == 404
