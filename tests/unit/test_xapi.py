"""xAPI 1.0.3 statements for delivered and measured events."""

from __future__ import annotations

import re
import uuid

import pytest

from flows import xapi
from flows.service import Service
from tests.builders import ACTOR, drive_to, record_when_due

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _measured(service: Service) -> int:
    r = drive_to(service, "delivered")
    for c in r.checkpoints:
        record_when_due(service, r.id, c.key, {"value": 80.0}, ACTOR)
    service.measure(r.id, "ldflow-pipeline")
    return r.id


def _check_shape(s: dict) -> None:  # type: ignore[type-arg]
    """The parts xAPI 1.0.3 requires, in the forms it requires."""
    assert UUID.match(s["id"])
    actor = s["actor"]
    assert actor["objectType"] == "Agent"
    assert ("mbox" in actor) != ("account" in actor)  # exactly one inverse functional identifier
    if "mbox" in actor:
        assert actor["mbox"].startswith("mailto:")
    else:
        assert actor["account"]["homePage"].startswith("http") and actor["account"]["name"]
    assert s["verb"]["id"].startswith("http") and s["verb"]["display"]["en-US"]
    assert s["object"]["objectType"] == "Activity" and s["object"]["id"].startswith("http")
    assert s["object"]["definition"]["type"].startswith("http://adlnet.gov/expapi/activities/")
    assert UUID.match(s["context"]["registration"])
    assert all(k.startswith("http") for k in s["context"]["extensions"])
    assert all(k.startswith("http") for k in s["result"].get("extensions", {}))
    assert ISO.match(s["timestamp"])
    assert s["version"] == "1.0.3"


def test_delivered_and_measured_statements(memory_service: Service) -> None:
    rid = _measured(memory_service)
    statements = xapi.statements(memory_service, rid, base="https://lrs.example.org/ldflow")
    assert [s["verb"]["display"]["en-US"] for s in statements] == ["delivered", "evaluated"]
    for s in statements:
        _check_shape(s)
    delivered, measured = statements
    assert delivered["verb"]["id"] == "http://activitystrea.ms/schema/1.0/deliver"
    assert delivered["actor"] == {"objectType": "Agent", "mbox": f"mailto:{ACTOR}"}
    assert delivered["result"]["extensions"]["https://lrs.example.org/ldflow/extensions/audience-reached"] == 38
    assert delivered["object"]["id"] == f"https://lrs.example.org/ldflow/requests/{rid}"
    assert measured["actor"]["account"] == {"homePage": "https://lrs.example.org/ldflow", "name": "ldflow-pipeline"}
    # m1: 62 -> 80 against 75 (met), m2: 80 against 4.2 (met)
    assert measured["result"]["success"] is True
    assert measured["result"]["score"] == {"scaled": 1.0, "raw": 2, "min": 0, "max": 2}
    roi = measured["result"]["extensions"]["https://lrs.example.org/ldflow/extensions/roi"]
    assert roi["benefit_cost_ratio"] == pytest.approx(2.25)  # (80 - 62) x 1000 / 8000


def test_one_registration_per_request_and_stable_ids(memory_service: Service) -> None:
    first, second = _measured(memory_service), _measured(memory_service)
    a = xapi.statements(memory_service, first)
    assert len({s["context"]["registration"] for s in a}) == 1
    b = xapi.statements(memory_service, second)
    assert a[0]["context"]["registration"] != b[0]["context"]["registration"]
    assert [s["id"] for s in a] == [s["id"] for s in xapi.statements(memory_service, first)]  # re-export: same ids
    assert len({s["id"] for s in a + b}) == 4
    uuid.UUID(a[0]["context"]["registration"])


def test_all_requests_only_delivered_ones(memory_service: Service) -> None:
    measured = _measured(memory_service)
    delivered = drive_to(memory_service, "delivered").id
    drive_to(memory_service, "designed")
    drive_to(memory_service, "declined")
    statements = xapi.statements(memory_service)
    assert [(s["object"]["id"].rsplit("/", 1)[1], s["verb"]["display"]["en-US"]) for s in statements] == [
        (str(measured), "delivered"), (str(measured), "evaluated"), (str(delivered), "delivered")]


def test_a_redirect_is_a_performance_activity(memory_service: Service) -> None:
    r = drive_to(memory_service, "delivered", path="redirect")
    (s,) = xapi.statements(memory_service, r.id)
    assert s["object"]["definition"]["type"] == xapi.ACTIVITY_PERFORMANCE
    assert s["object"]["definition"]["extensions"][f"{xapi.default_base()}/extensions/path"] == "redirect:tool_fix"


def test_not_measured_all_met_is_not_success(memory_service: Service) -> None:
    r = drive_to(memory_service, "delivered")
    for c in r.checkpoints:
        record_when_due(memory_service, r.id, c.key, {"value": 1.0}, ACTOR)
    memory_service.measure(r.id, ACTOR)
    measured = xapi.statements(memory_service, r.id)[-1]
    assert measured["result"]["success"] is False and measured["result"]["score"]["raw"] == 0
