"""The file and in-memory senders and the in-memory inbox (no servers needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from icalendar import Calendar

from connectors.email.render import render
from connectors.email.smtp import FileSender, Refusal, TemporarySendError, envelope_recipients
from connectors.testing import InMemoryInbox, InMemorySender
from states.notifications import CalendarItem, Notification, Recipient

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def message(key: str = "1:request_cancelled", calendar: CalendarItem | None = None, request_id: int = 1):  # type: ignore[no-untyped-def]
    n = Notification(key=key, request_id=request_id, template="request_cancelled",
                     to=(Recipient("Dana", "dana@example.org"), Recipient("Sam", "sam@example.org")),
                     subject="Cancelled", context={"request": {"title": "Coaching"}}, calendar=calendar)
    return render(n, "ld@example.org", "example.org", now=NOW)


def test_file_sender_writes_once_per_message_id(tmp_path: Path) -> None:
    sender = FileSender(tmp_path / "outbox")
    first = sender.send(message())
    again = sender.send(message())
    sender.send(message("2:request_cancelled", request_id=2))
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert len(files) == 2 and all(f.endswith(".eml") for f in files)
    assert files[0].startswith("req1_request_cancelled_")
    assert first.accepted == again.accepted == ("dana@example.org", "sam@example.org")
    assert (tmp_path / "outbox" / files[0]).read_bytes() == message().as_bytes()


def test_file_sender_puts_the_ics_beside_the_eml(tmp_path: Path) -> None:
    cal = CalendarItem(uid="u1@ldflow", kind="event", summary="Workshop", start="2026-12-01T09:00:00Z",
                       end="2026-12-01T10:00:00Z", organizer=Recipient("L&D", "ld@example.org"), method="CANCEL")
    sender = FileSender(tmp_path)
    sender.send(message(calendar=cal))
    [eml] = tmp_path.glob("*.eml")
    ics = eml.with_suffix(".ics")
    parsed = Calendar.from_ical(ics.read_bytes())
    assert str(parsed["METHOD"]) == "CANCEL"
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_in_memory_sender_refusals_and_failures() -> None:
    sender = InMemorySender()
    sender.refuse["sam@example.org"] = Refusal(550, "no such user")
    result = sender.send(message())
    assert result.accepted == ("dana@example.org",)
    assert result.refused_permanent == {"sam@example.org": Refusal(550, "no such user")}
    assert set(result.done) == {"dana@example.org", "sam@example.org"}
    sender.failures.append(TemporarySendError("421 later"))
    with pytest.raises(TemporarySendError):
        sender.send(message())
    assert len(sender.deliveries("dana@example.org")) == 1 and sender.deliveries("sam@example.org") == []


def test_envelope_recipients_are_strict() -> None:
    assert envelope_recipients(message()) == ["dana@example.org", "sam@example.org"]


def _mail(n: int) -> bytes:
    return (f"From: r{n}@example.org\r\nSubject: request {n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\nhi\r\n").encode()


def test_in_memory_inbox_contract() -> None:
    inbox = InMemoryInbox()
    for n in range(3):
        inbox.add(_mail(n))
    recorded: set[str] = set()
    items = list(inbox.fetch_new(lambda ref: ref.message_id in recorded))
    assert [i.ref.uid for i in items] == [1, 2, 3]
    recorded.update(i.ref.message_id or "" for i in items[:2])
    inbox.mark_seen(items[:1])  # crash before flagging the second
    again = list(inbox.fetch_new(lambda ref: ref.message_id in recorded))
    assert [i.ref.uid for i in again] == [3]
    assert inbox.seen == {1, 2}  # the recorded-but-unflagged one is flagged now
    inbox.renumber()
    recorded.add("<m2@example.org>")
    assert list(inbox.fetch_new(lambda ref: ref.message_id in recorded)) == []
