"""The staff pages' security: the authorization matrix, CSRF, cookies, rate limits, escaping, sign-in links."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from flows.users import with_sign_in_url
from states.notifications import Notification
from tests.builders import ACTOR, drive_to, intake_data
from tests.web_support import ADMIN, PARTNER, PASSWORD, VIEWER, WebRig, csrf_of, post_form, rig, sign_in


@pytest.fixture
def web(tmp_path: Path) -> WebRig:
    return rig(tmp_path)


def _state(web: WebRig, rid: int) -> tuple[int, int]:
    return web.app.service.show(rid).version, len(web.app.service.history(rid))


ROLES = [None, "viewer", "partner", "admin"]
# route -> the status for anonymous, viewer, partner, admin
MATRIX = {
    ("GET", "/"): (303, 200, 200, 200),
    ("GET", "/requests/{rid}"): (303, 200, 200, 200),
    ("POST", "/requests/{rid}/add_note"): (401, 403, 303, 303),
    ("POST", "/requests/{rid}/cancel"): (401, 403, 303, 303),
    ("POST", "/sign-out"): (401, 303, 303, 303),
    ("GET", "/sign-in"): (200, 303, 303, 303),
    ("GET", "/healthz"): (200, 200, 200, 200),
}


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("route", list(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_authorization_matrix(web: WebRig, route: tuple[str, str], role: str | None) -> None:
    rid = drive_to(web.app.service, "received").id
    client = web.client(role)
    method, template = route
    path = template.format(rid=rid)
    before = _state(web, rid)
    if method == "GET":
        response = client.get(path)
    else:
        token = csrf_of(client.get("/sign-in" if role is None else "/").text)
        response = client.post(path, data={"csrf": token, "version": str(before[0]), "text": "a note",
                                           "reason": "no longer needed"})
    expected = MATRIX[route][ROLES.index(role)]
    assert response.status_code == expected, response.text[:500]
    writes = method == "POST" and "/requests/" in path
    if writes and expected != 303:
        assert _state(web, rid) == before  # a role that may not write changes nothing
    if writes and expected == 303:
        last = web.app.service.history(rid)[-1]
        assert last.actor == (PARTNER if role == "partner" else ADMIN) and last.payload["via"] == "web"
    if expected == 303 and role is None:
        assert response.headers["location"].startswith("/sign-in?next=")


def test_a_cross_site_post_fails_and_changes_nothing(web: WebRig) -> None:
    rid = drive_to(web.app.service, "received").id
    client = web.client("partner")
    before = _state(web, rid)
    version = str(before[0])
    assert client.post(f"/requests/{rid}/add_note", data={"version": version, "text": "x"}).status_code == 403
    assert client.post(f"/requests/{rid}/add_note", data={"csrf": "forged", "version": version,
                                                          "text": "x"}).status_code == 403
    token = csrf_of(client.get(f"/requests/{rid}").text)
    evil = client.post(f"/requests/{rid}/add_note", data={"csrf": token, "version": version, "text": "x"},
                       headers={"origin": "https://evil.example"})
    assert evil.status_code == 403 and "came from another site" in evil.text
    # another browser's token (its own session) does not work in this one either
    other = web.client("partner")
    theirs = csrf_of(other.get(f"/requests/{rid}").text)
    assert client.post(f"/requests/{rid}/add_note", data={"csrf": theirs, "version": version,
                                                          "text": "x"}).status_code == 403
    assert _state(web, rid) == before
    ok = client.post(f"/requests/{rid}/add_note", data={"csrf": token, "version": version, "text": "x"},
                     headers={"origin": "http://testserver"})
    assert ok.status_code == 303


def test_the_sign_in_form_needs_its_csrf_token(web: WebRig) -> None:
    client = web.client()
    response = client.post("/sign-in", data={"email": PARTNER, "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/").status_code == 303  # still signed out


@pytest.mark.parametrize("https", [False, True])
def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(web: WebRig, https: bool) -> None:
    client = web.client(https=https)
    token = csrf_of(client.get("/sign-in").text)
    response = client.post("/sign-in", data={"csrf": token, "email": PARTNER, "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert ("Secure" in cookie) == https
    assert PASSWORD not in cookie


def test_sign_in_is_rate_limited_per_address(web: WebRig) -> None:
    client = web.client()
    token = csrf_of(client.get("/sign-in").text)
    for _ in range(5):
        assert client.post("/sign-in", data={"csrf": token, "email": PARTNER, "password": "wrong guess"}) \
            .status_code == 401
    limited = client.post("/sign-in", data={"csrf": token, "email": PARTNER, "password": PASSWORD})
    assert limited.status_code == 429 and "Too many sign-in attempts" in limited.text
    sign_in(web.client(), ADMIN)  # another address from the same IP still may (below the IP's limit)
    for _ in range(6):  # successful sign-ins do not use up the attempts
        sign_in(web.client(), ADMIN)


def test_sign_in_is_rate_limited_per_ip(web: WebRig) -> None:
    client = web.client()
    token = csrf_of(client.get("/sign-in").text)
    for n in range(20):
        assert client.post("/sign-in", data={"csrf": token, "email": f"nobody{n}@example.org",
                                             "password": "x"}).status_code == 401
    limited = client.post("/sign-in", data={"csrf": token, "email": ADMIN, "password": PASSWORD})
    assert limited.status_code == 429


def test_a_failed_sign_in_says_the_same_for_unknown_and_wrong(web: WebRig) -> None:
    client = web.client()
    token = csrf_of(client.get("/sign-in").text)
    unknown = client.post("/sign-in", data={"csrf": token, "email": "who@example.org", "password": "x"})
    wrong = client.post("/sign-in", data={"csrf": token, "email": PARTNER, "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert "do not match an active account" in unknown.text and "do not match an active account" in wrong.text


def test_disabling_an_account_or_changing_its_role_ends_its_sessions(web: WebRig) -> None:
    client = web.client("partner")
    assert client.get("/").status_code == 200
    web.app.accounts.set_role(PARTNER, "viewer")
    assert client.get("/").status_code == 303
    sign_in(client, PARTNER)
    web.app.accounts.disable(PARTNER)
    assert client.get("/").status_code == 303
    token = csrf_of(client.get("/sign-in").text)
    assert client.post("/sign-in", data={"csrf": token, "email": PARTNER, "password": PASSWORD}).status_code == 401


def test_passwords_are_stored_as_argon2_hashes_only(web: WebRig) -> None:
    user = web.app.accounts.users.user_by_email(PARTNER)
    assert user is not None and user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_a_script_in_a_title_shows_as_text_on_the_board_and_the_request_page(web: WebRig) -> None:
    title = "<script>alert('x')</script> & <b>bold</b>"
    rid = web.app.service.submit(intake_data(title=title), ACTOR).id
    client = web.client("viewer")
    for path in ("/", f"/requests/{rid}", "/?q=%3Cscript%3E"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<b>bold</b>" not in html, path
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html, path


def test_viewers_see_no_forms(web: WebRig) -> None:
    rid = drive_to(web.app.service, "delivered").id
    viewer = web.client("viewer").get(f"/requests/{rid}").text
    assert f'action="/requests/{rid}/' not in viewer and "can read this request, not change it" in viewer
    partner = web.client("partner").get(f"/requests/{rid}").text
    assert f'action="/requests/{rid}/record_result"' in partner


def test_a_sign_in_link_by_mail_works_once_and_only_before_it_expires(web: WebRig) -> None:
    client = web.client()
    token = csrf_of(client.get("/sign-in").text)
    page = client.post("/sign-in/link", data={"csrf": token, "email": VIEWER})
    assert page.status_code == 200 and "a sign-in link is on its way" in page.text
    client.post("/sign-in/link", data={"csrf": token, "email": "nobody@example.org"})  # same page, no mail
    rows = [m for m in web.app.store.outbox.values() if m.template == "sign_in_link"]  # type: ignore[attr-defined]
    assert len(rows) == 1 and rows[0].notification["to"][0]["email"] == VIEWER
    context = rows[0].notification["context"]
    assert set(context) == {"link", "minutes"}  # the stored row is no working link: no token, no url
    note = Notification(key=rows[0].key, request_id=0, template="sign_in_link", to=(), subject="",
                        context=context)
    url = with_sign_in_url(web.app.settings, note).context["url"]
    path = url.removeprefix(web.app.settings.web_url)
    assert path.startswith("/sign-in/link/") and context["link"] not in path
    assert client.get(path).status_code == 200  # a GET (a mail scanner) signs nobody in
    assert client.get("/").status_code == 303
    used = client.post(path, data={"csrf": csrf_of(client.get(path).text)})
    assert used.status_code == 303 and client.get("/").status_code == 200
    again = web.client()
    assert again.post(path, data={"csrf": csrf_of(again.get(path).text)}).status_code == 400
    forged = path[:-3] + ("abc" if not path.endswith("abc") else "xyz")
    assert again.post(forged, data={"csrf": csrf_of(again.get("/sign-in").text)}).status_code == 400
    # a second link, used too late
    again.post("/sign-in/link", data={"csrf": csrf_of(again.get("/sign-in").text), "email": VIEWER})
    late = [m for m in web.app.store.outbox.values()  # type: ignore[attr-defined]
            if m.template == "sign_in_link" and m.key != rows[0].key][0]
    web.clock.advance(timedelta(minutes=16))
    late_url = with_sign_in_url(web.app.settings, Notification(
        key=late.key, request_id=0, template="sign_in_link", to=(), subject="",
        context=late.notification["context"])).context["url"].removeprefix(web.app.settings.web_url)
    assert again.post(late_url, data={"csrf": csrf_of(again.get("/sign-in").text)}).status_code == 400


def test_post_form_helper_reads_the_token_of_the_page(web: WebRig) -> None:
    rid = drive_to(web.app.service, "received").id
    client = web.client("partner")
    version = str(web.app.service.show(rid).version)
    assert post_form(client, f"/requests/{rid}/add_note", {"version": version, "text": "hello"}).status_code == 303


def test_the_access_log_shows_sign_in_links_redacted() -> None:
    import logging

    from flows.web.signin import RedactSignInLinks

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/sign-in/link/eyJsaW5rIjoi.secret?x=1", "1.1", 200), None)
    assert RedactSignInLinks().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /sign-in/link/[redacted]?x=1 HTTP/1.1" 200'
    assert any(isinstance(f, RedactSignInLinks) for f in logging.getLogger("uvicorn.access").filters)


def test_every_staff_page_carries_the_security_headers(web: WebRig) -> None:
    from flows.web.app import SECURITY_HEADERS

    rid = drive_to(web.app.service, "received").id
    client = web.client("partner")
    for path in ("/", f"/requests/{rid}", "/sign-in", "/requests/999"):
        response = client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (path, name)
