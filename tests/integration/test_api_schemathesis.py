"""Schemathesis against the API's own OpenAPI document, with a partner token on a fresh SQLite
database: no 5xx, and every response as the document says (status, content type, headers, body).

Bounded: a few examples per operation (``API_FUZZ_EXAMPLES``, default 6) and a deadline per call;
the whole module takes well under two minutes. Two requests are seeded so that generated ids hit
real ones too (a received request, and a measured one with checkpoints, a report and mail).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from flows import bootstrap
from flows.clock import FixedClock
from flows.settings import Settings
from flows.web.app import create_app
from tests.builders import T0, drive_to, intake_data

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "6"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance]
_caller: dict[str, str] = {}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    app = bootstrap.build(Settings(home=home), clock=FixedClock(T0))
    drive_to(app.service, "measured")
    app.service.submit(intake_data(), "ops")
    _caller["Authorization"] = "Bearer " + app.tokens.create("fuzz", "partner", "Fuzz Partner", "test").secret
    yield create_app(app)
    app.close()


def send(client: TestClient, case: Any) -> httpx.Response:
    """The generated call through the ASGI test client (httpx). Schemathesis's own transport is
    ``requests``, which the ``urllib3-future`` that caldav brings in (through niquests) breaks."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver/api/v1", headers=dict(_caller))
    data = kwargs.pop("data", None)
    if data is not None:
        kwargs["content" if isinstance(data, bytes | str) else "data"] = data
    for unused in ("allow_redirects", "timeout", "verify", "stream", "cookies"):
        kwargs.pop(unused, None)
    return client.request(**kwargs)


def test_no_server_error_and_every_response_as_documented(web: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", web)
    client = TestClient(web)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=5000, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            response = send(client, case)
            case.validate_response(response, checks=CHECKS, headers=dict(_caller))

        try:
            call()
        except Exception as exc:  # every operation is tried; the failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 24
    assert not failures, "\n\n".join(failures)
