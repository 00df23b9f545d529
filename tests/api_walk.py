"""The JSON API driven as a program would: the design path from intake to acknowledged, and the
other commands, over any httpx client (FastAPI's TestClient, or httpx against a real uvicorn).
Shared by the unit tests (fakes) and the integration tests (SQLite, PostgreSQL through uvicorn)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.builders import (
    SPONSOR,
    ack_data,
    approval_data,
    brief_data,
    companion_data,
    delivery_data,
    diagnosis_data,
    intake_data,
    plan_data,
    reason_data,
    redirect_data,
    result_data,
)

API = "/api/v1"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON of ``response``, which must have ``status``."""
    assert response.status_code == status, (response.status_code, response.text[:2000])
    return response.json() if "json" in response.headers.get("content-type", "") else response.text


def design_path(client: httpx.Client, headers: dict[str, str], sponsor: dict[str, str]) -> int:
    """Submit a request and take it to acknowledged through the API (the plan approved with the
    sponsor's own token ``sponsor``); returns its id."""
    made = ok(client.post(f"{API}/requests", json=intake_data(), headers=headers), 201)
    rid = made["id"]
    base = f"{API}/requests/{rid}"
    assert made["state"] == "received" and made["version"] == 1
    diagnosed = ok(client.post(f"{base}/diagnose", json=diagnosis_data(), headers=headers))
    assert diagnosed["state"] == "diagnosed" and diagnosed["recommendations"]
    ok(client.post(f"{base}/plan/draft", json=plan_data(), headers=headers))
    plan = ok(client.get(f"{base}/plan", headers=headers))
    assert plan["approved_by"] is None and len(plan["plan"]["items"]) == 2
    refused = client.post(f"{base}/plan/approve", json=approval_data(SPONSOR), headers=headers)
    assert refused.status_code == 409 and "only an admin may record an approval" in refused.json()["missing"][0]
    ok(client.post(f"{base}/plan/approve", json=approval_data(SPONSOR), headers=sponsor))
    assert ok(client.get(f"{base}/plan", headers=headers))["approved_by"] == SPONSOR
    designed = ok(client.post(f"{base}/design", json=brief_data(), headers=headers))
    assert designed["state"] == "designed"
    session = {"id": "s1", "title": "Practice 1", "start": "2026-04-06T09:00:00+02:00",
               "end": "2026-04-06T10:30:00+02:00", "location": "Room 4"}
    ok(client.post(f"{base}/sessions", json=session, headers=headers))
    sessions = ok(client.get(f"{base}/sessions", headers=headers))
    assert [s["plan"]["id"] for s in sessions] == ["s1"]
    delivered = ok(client.post(f"{base}/deliver", json=delivery_data(), headers=headers))
    keys = [c["key"] for c in delivered["checkpoints"]]
    assert sorted(k.split(":", 1)[1] for k in keys) == ["m1:P30D", "m1:P90D", "m2:P1D"], keys
    for key in keys:  # the full key, or the item:offset the CLI's --checkpoint takes
        short = key.split(":", 1)[1]
        ok(client.post(f"{base}/checkpoints/{short if short.startswith('m2') else key}/result",
                       json=result_data(71.0, early_reason="recorded ahead of the due date by the walk"),
                       headers=headers))
    measured = ok(client.post(f"{base}/measure", headers=headers))
    assert measured["state"] == "measured" and measured["results"]
    report = ok(client.get(f"{base}/report", headers=headers))
    assert report["final"] is False and report["subject"]
    acknowledged = ok(client.post(f"{base}/acknowledge", json=ack_data(), headers=headers))
    assert acknowledged["state"] == "acknowledged"
    assert ok(client.get(f"{base}/report", headers=headers))["final"] is True
    assert "Thank you all." in ok(client.get(f"{base}/report", params={"format": "text"}, headers=headers))
    html = client.get(f"{base}/report", params={"format": "html"}, headers=headers)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    return int(rid)


def other_commands(client: httpx.Client, headers: dict[str, str]) -> dict[str, int]:
    """Redirect, decline, cancel, re-open, re-diagnose, amend and note, each once; the ids by path."""
    ids: dict[str, int] = {}
    for name in ("redirect", "decline", "cancel", "rediagnose"):
        ids[name] = ok(client.post(f"{API}/requests", json=intake_data(), headers=headers), 201)["id"]
    r = f"{API}/requests/{ids['redirect']}"
    ok(client.post(f"{r}/diagnose", json=diagnosis_data(skill_gap=False), headers=headers))
    ok(client.post(f"{r}/plan/draft", json=plan_data(), headers=headers))
    ok(client.post(f"{r}/plan/approve", json=approval_data(SPONSOR, reason="approved in the steering meeting"),
                   headers=headers))  # an admin token, on the sponsor's behalf
    assert ok(client.post(f"{r}/redirect", json=redirect_data(), headers=headers))["state"] == "redirected"
    mix = ok(client.post(f"{r}/companions", json=companion_data(), headers=headers))  # a solution mix
    mix = ok(client.post(f"{r}/companions", json=companion_data(what="a second card"), headers=headers))
    assert [c["id"] for c in mix["companions"]] == ["c1", "c2"]
    ok(client.post(f"{r}/companions/c1/done", json={"note": "printed"}, headers=headers))
    mix = ok(client.post(f"{r}/companions/c2/drop", json=reason_data("one card is enough"), headers=headers))
    assert [(c["status"], c["outcome"], c["reason"]) for c in mix["companions"]] == [
        ("done", "printed", ""), ("dropped", "", "one card is enough")]
    d = f"{API}/requests/{ids['decline']}"
    assert ok(client.post(f"{d}/decline", json=reason_data("out of scope"), headers=headers))["state"] == "declined"
    assert ok(client.post(f"{d}/reopen", json=reason_data("back in scope"), headers=headers))["state"] == "received"
    c = f"{API}/requests/{ids['cancel']}"
    assert ok(client.post(f"{c}/cancel", json=reason_data(), headers=headers))["state"] == "cancelled"
    x = f"{API}/requests/{ids['rediagnose']}"
    ok(client.post(f"{x}/diagnose", json=diagnosis_data(), headers=headers))
    again = ok(client.post(f"{x}/rediagnose", json={**diagnosis_data(skill_gap=False), "reason": "new facts"},
                           headers=headers))
    assert again["diagnosis"]["summary"].startswith("The knowledge base")
    amended = ok(client.post(f"{x}/amend", json={"reason": "typo", "title": "Objection handling, EMEA"},
                             headers=headers))
    assert amended["intake"]["title"] == "Objection handling, EMEA"
    ok(client.post(f"{x}/notes", json={"text": "Sponsor called."}, headers=headers))
    types = [e["type"] for e in ok(client.get(f"{x}/history", headers=headers))]
    assert types[-3:] == ["rediagnosed", "amended", "note_added"], types
    return ids
