"""Staff accounts (``flows.users.Accounts``) and approvals recorded on the sponsor's behalf."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.testing import InMemoryUsers
from flows.clock import FixedClock
from flows.report import build as build_report
from flows.service import Service
from flows.settings import Settings
from flows.timeline import summarize
from flows.users import Accounts
from states.errors import InvalidInput, NotFound, TransitionRefused
from tests.builders import ACTOR, SPONSOR, T0, ack_data, diagnosis_data, drive_to, intake_data, plan_data
from tests.web_support import CHEAP

ADMIN = "ada.admin@example.org"


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(InMemoryUsers(), Settings(home=tmp_path), lambda: T0, hasher=CHEAP)


def test_add_refuses_bad_fields_naming_each(accounts: Accounts) -> None:
    with pytest.raises(InvalidInput) as caught:
        accounts.add("not an address", "", "owner", "short")
    assert {e.field for e in caught.value.errors} == {"email", "role", "password", "name"}
    accounts.add("ada@example.org", "Ada", "admin", "a long enough password")
    with pytest.raises(InvalidInput, match="exists"):
        accounts.add("ADA@example.org", "Ada", "viewer", None)
    assert accounts.users.users()[0].email == "ada@example.org"


def test_authenticate_checks_the_hash_and_the_account(accounts: Accounts) -> None:
    accounts.add("ada@example.org", "Ada", "partner", "a long enough password")
    accounts.add("bob@example.org", "Bob", "partner", None)  # link only
    assert accounts.authenticate("Ada@example.org", "a long enough password") is not None
    assert accounts.authenticate("ada@example.org", "wrong") is None
    assert accounts.authenticate("bob@example.org", "") is None
    assert accounts.authenticate("nobody@example.org", "a long enough password") is None
    accounts.disable("ada@example.org")
    assert accounts.authenticate("ada@example.org", "a long enough password") is None
    with pytest.raises(NotFound):
        accounts.disable("nobody@example.org")
    with pytest.raises(InvalidInput, match="role"):
        accounts.set_role("bob@example.org", "owner")


def test_is_admin_only_for_an_active_admin(accounts: Accounts) -> None:
    accounts.add(ADMIN, "Ada", "admin", None)
    accounts.add("pat@example.org", "Pat", "partner", None)
    assert accounts.is_admin(ADMIN) and not accounts.is_admin("pat@example.org")
    assert not accounts.is_admin("not an address")
    accounts.disable(ADMIN)
    assert not accounts.is_admin(ADMIN)


def _drafted(service: Service) -> int:
    rid = service.submit(intake_data(), ACTOR).id
    assert rid is not None
    service.diagnose(rid, diagnosis_data(), ACTOR)
    service.draft_plan(rid, plan_data(), ACTOR)
    return rid


def test_only_the_sponsor_or_an_admin_with_a_reason_approves(memory_service: Service) -> None:
    rid = _drafted(memory_service)
    with pytest.raises(TransitionRefused, match=f"the approver's own approval: {ACTOR} is not {SPONSOR}"):
        memory_service.approve_plan(rid, {"approver": SPONSOR}, ACTOR)
    with pytest.raises(TransitionRefused, match="a reason for recording"):
        memory_service.approve_plan(rid, {"approver": SPONSOR}, ADMIN, admin=True)
    # every missing item at once: not the sponsor, and not the actor either
    with pytest.raises(TransitionRefused) as caught:
        memory_service.approve_plan(rid, {"approver": "rita.requester@example.org"}, ACTOR)
    assert len(caught.value.missing) == 2
    assert memory_service.show(rid).plan_approved_by is None
    memory_service.approve_plan(rid, {"approver": SPONSOR, "reason": "Signed off in the steering group."},
                                ADMIN, admin=True)
    record = memory_service.history(rid)[-1]
    assert record.payload["recorded_by"] == ADMIN
    assert summarize(record) == (f"approved by {SPONSOR} (recorded on their behalf by the admin {ADMIN}; "
                                 "reason: Signed off in the steering group.)")


def test_the_sponsor_approving_in_person_records_no_one_else(memory_service: Service) -> None:
    rid = _drafted(memory_service)
    memory_service.approve_plan(rid, {"approver": SPONSOR}, SPONSOR.upper())
    assert "recorded_by" not in memory_service.history(rid)[-1].payload
    assert memory_service.show(rid).plan_approval_recorded_by is None


def test_the_report_says_an_admin_recorded_the_approval(memory_service: Service, clock: FixedClock) -> None:
    rid = _drafted(memory_service)
    memory_service.approve_plan(rid, {"approver": SPONSOR, "reason": "Approved by phone; mail is down."},
                                ADMIN, admin=True)
    request = drive_to(memory_service, "measured", request_id=rid)
    report = build_report(request)
    said = (f"The measurement plan was approved by {SPONSOR}; the admin {ADMIN} recorded that approval on "
            "their behalf (reason: Approved by phone; mail is down.)")
    assert said in report.text and said in report.html
    memory_service.acknowledge(rid, ack_data(), ACTOR)
    plain = drive_to(memory_service, "measured")
    assert "on their behalf" not in build_report(plain).text


def test_via_marks_every_event_a_command_records(memory_service: Service) -> None:
    rid = memory_service.via("cli").submit(intake_data(), ACTOR).id
    assert rid is not None
    memory_service.via("web").add_note(rid, "hello", ACTOR)
    memory_service.add_note(rid, "unsaid", ACTOR)
    assert [r.payload.get("via") for r in memory_service.history(rid)] == ["cli", "web", None]
