"""Every adapter and fake has every method of its port with the port's signature.

Names alone are not enough: a fake whose ``fetch_new(limit, is_seen)`` swapped two parameters, or
whose ``publish`` took ``dtstamp`` positionally, would pass a name check and fail in production.
So each method's parameters must match the port's by name, kind and default, and their annotations
(and the return annotation, unless the port returns ``object``) must resolve to the same types.
The contract tests (``tests/integration/test_contract_*.py``) then check the behaviour.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from connectors.calendar.caldav_client import CaldavPublisher
from connectors.db.links import SqlLinkUses
from connectors.db.store import SqlStore
from connectors.db.tokens import SqlTokens
from connectors.db.users import SqlUsers
from connectors.email.config import ImapConfig
from connectors.email.dropfolder import DropFolderSource
from connectors.email.imap import ImapSource
from connectors.email.smtp import FileSender, SmtpSender
from connectors.ports import (
    CalendarPublisher,
    InboundSource,
    LinkUseLog,
    RequestStore,
    Sender,
    SendResult,
    TokenStore,
    UserStore,
)
from connectors.testing import (
    InMemoryCalendar,
    InMemoryInbox,
    InMemoryLinkUses,
    InMemorySender,
    InMemoryStore,
    InMemoryTokens,
    InMemoryUsers,
)
from states.analytics import Track
from states.analytics_figures import Filter
from states.analytics_summary import Summary
from states.notifications import Notification
from states.request import TrainingRequest

PORTS: dict[type, list[type]] = {
    RequestStore: [SqlStore, InMemoryStore],
    Sender: [SmtpSender, FileSender, InMemorySender],
    InboundSource: [ImapSource, DropFolderSource, InMemoryInbox],
    CalendarPublisher: [CaldavPublisher, InMemoryCalendar],
    TokenStore: [SqlTokens, InMemoryTokens],
    LinkUseLog: [SqlLinkUses, InMemoryLinkUses],
    UserStore: [SqlUsers, InMemoryUsers],
}
CASES = [pytest.param(port, impl, id=f"{port.__name__}-{impl.__name__}") for port, impls in PORTS.items()
         for impl in impls]

# Names the ports module imports for type checking only (they would pull in pydantic, icalendar).
_TYPE_ONLY = {"TrainingRequest": TrainingRequest, "Calendar": Calendar, "Notification": Notification, "Track": Track,
              "Filter": Filter, "Summary": Summary}


def port_methods(port: type) -> dict[str, Callable[..., Any]]:
    return {name: member for name, member in vars(port).items() if inspect.isfunction(member)
            and not name.startswith("_")}


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    return typing.get_type_hints(function, localns=_TYPE_ONLY)


def mismatches(port: type, impl: type) -> list[str]:
    """What in ``impl`` does not match ``port``, one line each (empty when it conforms)."""
    problems: list[str] = []
    for name, method in port_methods(port).items():
        implemented = getattr(impl, name, None)
        if not callable(implemented):
            problems.append(f"{impl.__name__} has no method {name}")
            continue
        want = list(inspect.signature(method).parameters.values())
        got = list(inspect.signature(implemented).parameters.values())
        shape = [(p.name, p.kind, p.default) for p in want]
        if [(p.name, p.kind, p.default) for p in got] != shape:
            problems.append(f"{impl.__name__}.{name}{inspect.signature(implemented)} is not "
                            f"{port.__name__}.{name}{inspect.signature(method)}")
            continue
        want_types, got_types = _hints(method), _hints(implemented)
        for key, expected in want_types.items():
            if key == "return" and expected is object:
                continue  # the port does not care what comes back
            if got_types.get(key) != expected:
                problems.append(f"{impl.__name__}.{name}: {key} is {got_types.get(key)}, the port says {expected}")
    return problems


@pytest.mark.parametrize(("port", "impl"), CASES)
def test_every_port_method_has_the_ports_signature(port: type, impl: type) -> None:
    assert port_methods(port), f"{port.__name__} declares no methods"
    assert mismatches(port, impl) == []


def test_the_store_port_lists_what_the_service_and_the_pipeline_need() -> None:
    assert set(port_methods(RequestStore)) == {
        "add", "save", "update", "get", "history", "counts_by_state", "due_checkpoints", "count_due_checkpoints",
        "measurable_requests", "requests_owing_reminders", "unanswered_checkpoints", "verify", "list",
        "claim_followups",  # the follow-ups fire under its claims
        "checkpoint", "checkpoints", "public_key", "iter_history",  # the audit's signed checkpoints
        "board", "recent_history",  # the web's board and request page
        "analytics_tracks", "analytics_summary", "analytics_refresh", "audit_head",  # ldflow analytics, its cache key
        # the SLA clocks, the attention list and their outcomes' cache
        "sla_heads", "sla_summaries", "needs_review_ids", "sla_outcomes", "keep_sla_outcomes", "sla_stale", "sla_due",
        "sla_section"}


@pytest.mark.parametrize("sender", PORTS[Sender], ids=lambda c: c.__name__)
def test_every_sender_says_whether_it_is_idempotent(sender: type) -> None:
    assert "idempotent" in typing.get_type_hints(Sender)
    assert isinstance(sender.idempotent, bool)
    assert sender.idempotent is (sender is FileSender)


def test_every_inbound_source_names_its_source(tmp_path: Path) -> None:
    assert "source" in typing.get_type_hints(InboundSource)
    sources = [ImapSource(ImapConfig(host="127.0.0.1", mailbox="Requests")), DropFolderSource(tmp_path),
               InMemoryInbox()]
    assert [type(s) for s in sources] == PORTS[InboundSource]
    assert [s.source.split(":")[0] for s in sources] == ["imap", "drop", "imap"]


@pytest.mark.parametrize(("module", "forbidden"), [
    ("connectors.ports", {"connectors.db", "sqlalchemy", "pydantic", "icalendar", "caldav", "smtplib", "imaplib"}),
    ("connectors.testing", {"connectors.db", "sqlalchemy", "psycopg", "alembic", "caldav"}),
])
def test_the_ports_and_the_fakes_need_no_database_and_no_network(module: str, forbidden: set[str]) -> None:
    code = (f"import sys, {module}\n"
            "print(' '.join(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.split()
    assert [m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden)] == []


class _Drifted:
    """A sender whose ``send`` swapped its parameters' names and types: a name check would pass it."""

    idempotent = False

    def send(self, recipients: list[str], message: object = None) -> SendResult:
        raise NotImplementedError

    def fetch_new(self, is_seen: Callable[[str], bool] | None = None, limit: int | None = None) -> None:
        raise NotImplementedError


def test_the_check_catches_what_a_name_check_would_miss() -> None:
    [send] = mismatches(Sender, _Drifted)
    assert "_Drifted.send(self, recipients: 'list[str]', message: 'object' = None)" in send
    is_seen, returns, missing = mismatches(InboundSource, _Drifted)
    assert is_seen.startswith("_Drifted.fetch_new: is_seen is") and "Callable[[str], bool]" in is_seen
    assert returns.startswith("_Drifted.fetch_new: return is") and "Iterator" in returns
    assert missing == "_Drifted has no method acknowledge"
