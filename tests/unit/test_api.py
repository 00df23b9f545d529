"""The JSON API on the in-memory fakes: every endpoint, its errors (the CLI's codes as HTTP statuses),
the role matrix (anonymous, bad token, revoked token, viewer, partner, admin), and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.testing import InMemorySender, InMemoryUnitOfWork
from flows import bootstrap
from flows.bootstrap import App
from flows.clock import FixedClock
from flows.queries import request_filter
from flows.settings import Settings
from flows.web.app import create_app
from tests.api_walk import API, bearer, design_path, ok, other_commands
from tests.builders import SPONSOR, T0, brief_data, diagnosis_data, drive_to, intake_data, plan_data


@dataclass
class Api:
    app: App
    client: TestClient
    headers: dict[str, dict[str, str]]  # caller kind -> its headers

    def snapshot(self) -> Any:
        """Everything a write could change: each request's version and history, the outbox."""
        store = self.app.store
        rows, _ = self.app.service.list(request_filter(limit=1000))
        return ([(r.id, r.version, r.state, len(store.history(r.id))) for r in rows],
                len(self.app.mail.outbox(None, 10_000)))


CALLERS = ("anonymous", "bad", "revoked", "viewer", "partner", "admin")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    uow = InMemoryUnitOfWork()
    app = bootstrap.compose(Settings(home=tmp_path), store=uow.store, uow=uow, clock=FixedClock(T0),
                            sender=InMemorySender(), sources=lambda: [])
    tokens = {role: app.tokens.create(role, role, f"{role.title()} Person", "test").secret
              for role in ("viewer", "partner", "admin")}
    revoked = app.tokens.create("old", "admin", "Old Person", "test").secret
    app.tokens.revoke("old")
    headers = {"anonymous": {}, "bad": bearer("ldf_" + "x" * 43), "revoked": bearer(revoked),
               **{role: bearer(secret) for role, secret in tokens.items()}}
    with TestClient(create_app(app)) as client:
        yield Api(app, client, headers)


# --- every endpoint ----------------------------------------------------------------------------------

def test_the_design_path_and_every_other_command_through_the_api(api: Api) -> None:
    sponsor = bearer(api.app.tokens.create("sponsor", "partner", SPONSOR, "test").secret)
    rid = design_path(api.client, api.headers["partner"], sponsor)
    ids = other_commands(api.client, api.headers["admin"])
    history = ok(api.client.get(f"{API}/requests/{rid}/history", headers=api.headers["viewer"]))
    # every write is the token owner's, through the API (the events' via), in the history
    writes = [e for e in history if e["type"] not in ("email_sent",)]
    assert {e["actor"] for e in writes} == {"Partner Person", SPONSOR}
    assert {e["payload"]["via"] for e in writes} == {"api"}
    cancelled = ok(api.client.get(f"{API}/requests/{ids['cancel']}/history", headers=api.headers["viewer"]))[-1]
    assert (cancelled["actor"], cancelled["payload"]["via"]) == ("Admin Person", "api")
    shown = ok(api.client.get(f"{API}/requests/{rid}", headers=api.headers["viewer"]))
    assert shown["state"] == "acknowledged" and shown["id"] == rid


def test_list_filters_sorts_and_pages_like_the_cli(api: Api) -> None:
    for n in range(5):
        api.app.service.submit(intake_data(sponsor_email=f"s{n % 2}@example.org"), "ops")
    api.app.service.decline(2, {"reason": "no"}, "ops")
    page = ok(api.client.get(f"{API}/requests", params={"limit": 2, "page": 2}, headers=api.headers["viewer"]))
    assert (page["total"], page["page"], page["pages"], page["offset"]) == (5, 2, 3, 2)
    assert [r["id"] for r in page["items"]] == [3, 4]
    declined = ok(api.client.get(f"{API}/requests", params={"state": ["declined"]}, headers=api.headers["viewer"]))
    assert [r["id"] for r in declined["items"]] == [2]
    by_sponsor = ok(api.client.get(f"{API}/requests", params={"sponsor": "s1@example.org", "sort": "-id"},
                                   headers=api.headers["viewer"]))
    assert [r["id"] for r in by_sponsor["items"]] == [4, 2]
    wrong = api.client.get(f"{API}/requests", params={"state": "nope", "sort": "size", "from": "May"},
                           headers=api.headers["viewer"])
    assert wrong.status_code == 400
    assert [e["field"] for e in wrong.json()["errors"]] == ["state", "sort", "from"]


def test_export_outbox_and_report_reads(api: Api) -> None:
    rid = design_path(api.client, api.headers["partner"],
                      bearer(api.app.tokens.create("sponsor", "partner", SPONSOR, "test").secret))
    viewer = api.headers["viewer"]
    exported = ok(api.client.get(f"{API}/export", headers=viewer))
    assert [x["request"]["id"] for x in exported] == [rid] and exported[0]["history"]
    one = ok(api.client.get(f"{API}/requests/{rid}/export", params={"format": "csv"}, headers=viewer))
    assert one.splitlines()[0].startswith("id,title,state") and f"{rid},Objection" in one
    outbox = ok(api.client.get(f"{API}/outbox", params={"limit": 3}, headers=viewer))
    assert len(outbox) == 3 and {"key", "template", "status"} <= set(outbox[0])
    assert api.client.get(f"{API}/outbox", params={"status": "nope"}, headers=viewer).status_code == 400


# --- errors, with the CLI's meaning ------------------------------------------------------------------

def test_invalid_input_is_400_naming_every_field_and_writes_nothing(api: Api) -> None:
    partner = api.headers["partner"]
    before = api.snapshot()
    response = api.client.post(f"{API}/requests", json={**intake_data(), "title": "x", "colour": "red"},
                               headers=partner)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_input" and body["exit_code"] == 2
    assert {e["field"] for e in body["errors"]} == {"title", "colour"}
    for raw, why in (("{bad", "malformed JSON"), ("[1, 2]", "mapping"), ('{"a": 1, "a": 2}', "twice")):
        answer = api.client.post(f"{API}/requests", content=raw,
                                 headers={**partner, "content-type": "application/json"})
        assert answer.status_code == 400 and why in answer.json()["message"], (raw, answer.text)
    assert api.snapshot() == before


def test_a_yaml_body_is_read_like_a_cli_file(api: Api) -> None:
    import yaml

    made = api.client.post(f"{API}/requests", content=yaml.safe_dump(intake_data()),
                           headers={**api.headers["partner"], "content-type": "application/yaml"})
    assert made.status_code == 201 and made.headers["location"] == f"{API}/requests/{made.json()['id']}"


def test_refused_is_409_listing_every_missing_item_and_writes_nothing(api: Api) -> None:
    rid = drive_to(api.app.service, "received").id
    api.app.service.diagnose(rid, diagnosis_data(), "ops")
    before = api.snapshot()
    response = api.client.post(f"{API}/requests/{rid}/design", json=brief_data(), headers=api.headers["partner"])
    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["exit_code"], body["trigger"], body["state"]) == ("refused", 3, "design", "diagnosed")
    assert any("measurement plan" in m for m in body["missing"]), body
    not_allowed = api.client.post(f"{API}/requests/{rid}/measure", headers=api.headers["partner"]).json()
    assert not_allowed["error"] == "refused" and "design" in not_allowed["allowed"]
    assert api.snapshot() == before


def test_stale_version_is_409_conflict_and_writes_nothing(api: Api) -> None:
    rid = drive_to(api.app.service, "received").id
    api.app.service.add_note(rid, "moved on", "ops")
    before = api.snapshot()
    response = api.client.post(f"{API}/requests/{rid}/diagnose", params={"if_version": 1}, json=diagnosis_data(),
                               headers=api.headers["partner"])
    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["exit_code"], body["expected_version"], body["current_version"]) == \
        ("conflict", 5, 1, 2)
    assert api.snapshot() == before
    fresh = api.client.post(f"{API}/requests/{rid}/diagnose", params={"if_version": 2}, json=diagnosis_data(),
                            headers=api.headers["partner"])
    assert fresh.status_code == 200 and fresh.json()["version"] == 3


def test_not_found_is_404_and_bad_parameters_are_400(api: Api) -> None:
    partner = api.headers["partner"]
    assert api.client.get(f"{API}/requests/99", headers=partner).json()["error"] == "not_found"
    assert api.client.get(f"{API}/requests/99/history", headers=partner).status_code == 404
    assert api.client.post(f"{API}/requests/99/notes", json={"text": "x"}, headers=partner).status_code == 404
    rid = drive_to(api.app.service, "delivered").id
    missing = api.client.post(f"{API}/requests/{rid}/checkpoints/zz:P1D/result", json={"value": 1}, headers=partner)
    assert missing.status_code == 404, missing.text
    for path, field in ((f"{API}/requests/abc", "request_id"), (f"{API}/requests/0", "request_id"),
                        (f"{API}/requests?limit=0", "limit"), (f"{API}/requests?requester=a%00b", "requester")):
        answer = api.client.get(path, headers=partner)
        assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == field, (path, answer.text)
    assert api.client.post(f"{API}/requests/{rid}/notes", params={"if_version": 0}, json={"text": "x"},
                           headers=partner).json()["errors"][0]["field"] == "if_version"
    assert api.client.get(f"{API}/requests/{rid}/report", headers=partner).status_code == 409  # not measured


# --- who may do what ---------------------------------------------------------------------------------

READS = ["/requests", "/requests/1", "/requests/1/history", "/requests/1/plan", "/requests/1/sessions",
         "/requests/1/report", "/requests/1/export", "/export", "/outbox", "/analytics"]
WRITES: list[tuple[str, Any]] = [
    ("/requests", intake_data()), ("/requests/2/diagnose", diagnosis_data()),
    ("/requests/2/rediagnose", {**diagnosis_data(), "reason": "r"}), ("/requests/2/plan/draft", plan_data()),
    ("/requests/2/plan/approve", {"approver": "sam.sponsor@example.org"}), ("/requests/2/design", brief_data()),
    ("/requests/2/redirect", {"kind": "job_aid"}), ("/requests/2/deliver", {"start_date": "2026-04-01"}),
    ("/requests/2/sessions", {"title": "t", "start": "2026-04-06T09:00:00Z", "end": "2026-04-06T10:00:00Z"}),
    ("/requests/2/checkpoints/m1:P30D/result", {"value": 1}), ("/requests/2/measure", None),
    ("/requests/2/acknowledge", {}), ("/requests/2/decline", {"reason": "r"}), ("/requests/2/cancel", {"reason": "r"}),
    ("/requests/2/reopen", {"reason": "r"}), ("/requests/2/amend", {"reason": "r", "title": "New title"}),
    ("/requests/2/notes", {"text": "hello"}), ("/requests/2/companions", {"kind": "job_aid"}),
    ("/requests/2/companions/c1/done", {}), ("/requests/2/companions/c1/drop", {"reason": "r"}),
]


@pytest.fixture
def seeded(api: Api) -> Api:
    drive_to(api.app.service, "measured")  # 1: every read answers 200
    api.app.service.submit(intake_data(), "ops")  # 2: received, for the writes
    return api


@pytest.mark.parametrize("caller", CALLERS)
def test_every_read_by_every_caller(seeded: Api, caller: str) -> None:
    for path in READS:
        response = seeded.client.get(API + path, headers=seeded.headers[caller])
        expected = 401 if caller in ("anonymous", "bad", "revoked") else 200
        assert response.status_code == expected, (caller, path, response.text[:300])
        if expected == 401:
            assert response.headers["www-authenticate"] == "Bearer" and response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("caller", CALLERS)
def test_every_write_by_every_caller_and_a_refused_one_changes_nothing(seeded: Api, caller: str) -> None:
    for path, data in WRITES:
        before = seeded.snapshot()
        response = seeded.client.post(API + path, json=data, headers=seeded.headers[caller])
        if caller in ("anonymous", "bad", "revoked", "viewer"):
            assert response.status_code == (403 if caller == "viewer" else 401), (caller, path, response.text)
            assert response.json()["error"] == ("forbidden" if caller == "viewer" else "unauthorized")
            assert seeded.snapshot() == before, (caller, path)
        else:
            assert response.status_code in (200, 201, 400, 404, 409), (caller, path, response.text)
            if response.status_code >= 400:
                assert seeded.snapshot() == before, (caller, path)


def test_an_invalid_body_from_a_viewer_is_403_and_from_nobody_401(seeded: Api) -> None:
    """Who asks is checked before what they send."""
    for caller, status in (("anonymous", 401), ("viewer", 403)):
        response = seeded.client.post(f"{API}/requests", content="{bad", headers=seeded.headers[caller])
        assert response.status_code == status


# --- the OpenAPI document -------------------------------------------------------------------------------

def test_the_openapi_document_covers_every_operation_with_the_cli_models(api: Api) -> None:
    document = ok(api.client.get(f"{API}/openapi.json"))
    operations = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert {("GET", p.split("?")[0].replace("/1", "/{request_id}")) for p in READS} <= operations
    assert {("POST", p.replace("/2", "/{request_id}").replace("m1:P30D", "{key}").replace("/c1/", "/{piece}/"))
            for p, _ in WRITES} <= operations
    schemas = document["components"]["schemas"]
    assert {"Intake", "Diagnosis", "MeasurementPlan", "Amendment", "TrainingRequest", "ApiError"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    assert document["components"]["securitySchemes"]["token"] == {
        "type": "http", "scheme": "bearer",
        "description": "A personal access token: `ldflow tokens create --name NAME --role ROLE --owner WHO`."}
    diagnose = document["paths"]["/requests/{request_id}/diagnose"]["post"]
    assert diagnose["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/Diagnosis"}
    assert set(diagnose["responses"]) == {"200", "400", "401", "403", "404", "409"}
    assert all("422" not in op["responses"] for ops in document["paths"].values() for op in ops.values())


def test_an_admin_token_records_the_sponsors_approval_on_their_behalf_only_with_a_reason(api: Api) -> None:
    rid = api.app.service.submit(intake_data(), "ops").id
    api.app.service.diagnose(rid, diagnosis_data(), "ops")
    api.app.service.draft_plan(rid, plan_data(), "ops")
    url = f"{API}/requests/{rid}/plan/approve"
    without = api.client.post(url, json={"approver": SPONSOR}, headers=api.headers["admin"])
    assert without.status_code == 409 and "reason" in without.json()["missing"][0]
    assert api.app.service.show(rid).plan_approved_by is None
    ok(api.client.post(url, json={"approver": SPONSOR, "reason": "approved in the steering meeting"},
                       headers=api.headers["admin"]))
    shown = api.app.service.show(rid)
    assert shown.plan_approved_by == SPONSOR and shown.plan_approval_recorded_by == "Admin Person"


def test_a_roster_through_the_api_and_a_duplicate_address_is_400_naming_it(api: Api) -> None:
    from tests.builders import roster_data

    rid = drive_to(api.app.service, "designed").id
    partner = api.headers["partner"]
    roster = roster_data(3)
    before = api.snapshot()
    twice = api.client.post(f"{API}/requests/{rid}/roster", headers=partner,
                            json={**roster, "learners": [*roster["learners"], roster["learners"][0]]})
    assert twice.status_code == 400 and twice.json()["errors"][0]["field"] == "learners"
    assert "listed twice" in twice.json()["errors"][0]["message"] and api.snapshot() == before
    given = api.client.post(f"{API}/requests/{rid}/roster", headers=partner, json=roster)
    assert given.status_code == 200 and len(given.json()["roster"]["learners"]) == 3


def test_plan_draft_answers_with_the_plan_review_and_attention_lists_what_waits(api: Api) -> None:
    from datetime import timedelta

    rid = api.app.service.submit(intake_data(), "ops").id
    drafted = ok(api.client.post(f"{API}/requests/{rid}/plan/draft", json=plan_data(),
                                 headers=api.headers["partner"]))
    assert drafted["plan_review"][0].startswith("no item measures a business result")
    assert ok(api.client.get(f"{API}/attention", headers=api.headers["viewer"])) == \
        {"policy": "built-in", "total": 0, "items": []}
    api.app.clock.advance(timedelta(days=8))  # type: ignore[attr-defined]
    listed = ok(api.client.get(f"{API}/attention", headers=api.headers["viewer"]))
    assert [(i["request_id"], i["kind"], i["sla"], i["status"]) for i in listed["items"]] == \
        [(rid, "sla", "diagnose", "breached")]  # the sponsor's approval: 6 of 10 days, not near yet
    assert api.client.get(f"{API}/attention").status_code == 401


def test_analytics_is_the_clis_query(api: Api) -> None:
    from flows import analytics
    from tests import analytics_history

    clock = api.app.clock
    assert isinstance(clock, FixedClock)
    analytics_history.build(api.app.service, clock)
    viewer = api.headers["viewer"]
    got = ok(api.client.get(f"{API}/analytics", headers=viewer))
    assert got == analytics.figures(api.app.store, None, analytics.clocks_of(api.app.settings, api.app.now()))
    assert got["redirects"]["rate"] == 0.3333 and got["sla_breaches"]["status"] == "computed"
    sam = ok(api.client.get(f"{API}/analytics", params={"sponsor": SPONSOR, "type": "design"}, headers=viewer))
    assert sam["requests"] == 2 and [r["state"] for r in sam["sponsor_requests"]] == ["acknowledged", "designed"]
    bad = api.client.get(f"{API}/analytics", params={"from": "2026-05-01", "to": "2026-04-01",
                                                     "sponsor": "x@example.org"}, headers=viewer)
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"to"}
    unknown = api.client.get(f"{API}/analytics", params={"sponsor": "x@example.org"}, headers=viewer)
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "sponsor"
