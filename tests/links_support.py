"""Helpers for the tests of the signed links and their pages: the links the mails carry, and form posts."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from flows.bootstrap import App
from flows.links import Links

FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def mail_links(app: App, template: str, request_id: int | None = None) -> list[str]:
    """The link paths (``/l/...``) of the queued mails of ``template``, newest row first, as the relay renders them."""
    links = Links(app.settings)
    found = []
    for row in app.uow.outbox.rows(limit=1000):
        if row.template == template and (request_id is None or row.request_id == request_id):
            found += [urlsplit(link["url"]).path for link in links.for_row(row).context.get("links", [])]
    return found


def form_token(html: str) -> str:
    match = FORM_TOKEN.search(html)
    assert match, "the page has no form token"
    return match.group(1)


def post_form(client: Any, path: str, data: dict[str, str]) -> Any:
    """GET the page for its form token, then POST ``data`` with it."""
    page = client.get(path)
    token = form_token(page.text) if page.status_code == 200 else "none"
    return client.post(path, data={**data, "form_token": token})
