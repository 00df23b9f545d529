"""The words of the mails: greetings, subjects (in words, folded at word boundaries), invites (LOCATION,
the team as ORGANIZER), threading, and the mails that tell a declined requester and a redirect's owner.
Contexts come from the domain (``domain_notifications`` of test_email_render)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from icalendar import Calendar

from states.models import Intake, Redirect
from states.notifications import Notification, Recipient
from states.request import TrainingRequest
from states.validation import parse
from tests.builders import T0, intake_data, redirect_data
from tests.unit.test_email_render import (
    APPROVED,
    BASE,
    bodies,
    do_render,
    domain,
    domain_notifications,
    notification,
)


def test_a_declined_requester_is_told_kindly_with_the_reason_and_what_to_try_instead() -> None:
    [n] = domain("request_declined")
    assert n.key == "5:request_declined"
    msg = message_from_bytes(do_render(n).as_bytes(), policy=default_policy)
    requester = intake_data()["requester"]
    assert [a.addr_spec for a in msg["To"].addresses] == [requester["email"]]
    assert msg["Cc"] is None and msg["Bcc"] is None
    assert msg["Subject"] == f"[ldflow #5] About your request: {intake_data()['title']}"
    text = str(msg.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    html = str(msg.get_body(("html",)).get_content())  # type: ignore[union-attr]
    first = requester["name"].split()[0]
    assert text.startswith(f"Hello {first},\n") and f"<p>Hello {first},</p>" in html
    for body in (text, html):
        assert "the team is being merged into Support next quarter" in body
        assert "What we suggest instead" in body and "Design a learning solution" in body
        assert "they never could do it, so they need formal training" in body
    # declined before any diagnosis: no suggestions, a kind general word instead
    text, _ = bodies(do_render(notification("request_declined", {**BASE, "reason": "out of scope"})))
    assert "not a \"no\" to the need behind it" in text and "Why: out of scope" in text


def test_a_redirect_owner_is_told_what_they_own_and_by_when() -> None:
    [n] = domain("redirect_assigned")
    assert n.key == "6:redirect_assigned"
    owner = redirect_data()["owner"]
    msg = message_from_bytes(do_render(n).as_bytes(), policy=default_policy)
    assert [a.addr_spec for a in msg["To"].addresses] == [owner["email"]] and msg["Cc"] is None
    assert msg["Subject"] == f"[ldflow #6] Over to you: fix the tools or information for {intake_data()['title']}"
    text, html = bodies(do_render(n))
    assert text.startswith("Hello Ivan,\n")
    goal = n.context["business_goal"]
    due = datetime.fromisoformat(goal["target_date"]).strftime("%a %d %b %Y")
    for body in (text, html):
        assert "Fix the tools or information" in body and redirect_data()["rationale"] in body
        assert due in body and "from 62% to 75%" in body


def test_a_redirect_without_an_owner_tells_nobody() -> None:
    request = TrainingRequest.submit(parse(Intake, intake_data()), T0)
    request.id = 9
    for command, model, data in APPROVED:
        getattr(request, command)(parse(model, data), T0)
    request.clear_pending()
    request.redirect(parse(Redirect, redirect_data(owner=None)), T0)
    assert request.pending_notifications() == []


def test_checkpoint_subjects_say_the_offset_in_words() -> None:
    subjects = {n.subject for n in domain_notifications()}
    assert "Quick check-in (30 days after delivery): first-call resolution" in subjects
    assert "Quick check-in (1 day after delivery): relevance rating" in subjects
    assert "Collect the 90-day result: first-call resolution" in subjects
    assert not [s for s in subjects if re.search(r"\bP\d+[DWMY]\b", s)]
    [todo] = [n.calendar for n in domain("checkpoint_reminder") if n.key.endswith(":m1:P30D")]
    assert todo is not None and todo.summary == "Collect first-call resolution (30 days after delivery)"


@pytest.mark.parametrize(("to", "greeting"), [
    ((Recipient("Dana Smith", "dana@example.org"),), "Hello Dana,"),
    ((Recipient("Southern Region Sales", "southern-sales@example.org"),), "Hello team,"),
    ((Recipient("", "ld-team@example.org"),), "Hello team,"),
    ((Recipient("Dana Smith", "dana@example.org"), Recipient("Sam Lee", "sam@example.org")), "Hello team,"),
    ((Recipient("", "dana@example.org"),), "Hello there,"),
])
def test_greeting_by_name_or_team(to: tuple[Recipient, ...], greeting: str) -> None:
    n = Notification(key="3:k", request_id=3, template="request_cancelled", to=to, subject="s", context=BASE)
    text, html = bodies(do_render(n))
    assert text.startswith(greeting + "\n") and f"<p>{greeting}</p>" in html


LONG_TITLE = ("Negotiation skills for the account managers of the southern region who handle the largest accounts "
              "and their renewals in the next fiscal year, please")  # 150 characters


@pytest.mark.parametrize("subject", [
    f"Please approve the measurement plan: {LONG_TITLE}",
    "Collect the 30-day result: discovery questions per recorded call",  # 76 with the tag: the stdlib broke it
    "Quick check-in (90 days after delivery): win rate on qualified deals",
    "x" * 70, "a " * 60 + "end", "short", "Zoë’s café: a quick check-in (30 days after delivery) on coaching",
    "supercalifragilisticexpialidocious" * 3 + " and more",
])
@pytest.mark.parametrize("linesep", ["\n", "\r\n"])
def test_subjects_fold_at_word_boundaries(subject: str, linesep: str) -> None:
    message = do_render(notification("request_cancelled", BASE, subject=subject))
    raw = message.as_bytes(policy=message.policy.clone(linesep=linesep))
    head = raw.split(linesep.encode() * 2, 1)[0].decode("ascii")
    lines = head.split(linesep)
    start = next(i for i, line in enumerate(lines) if line.startswith("Subject:"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith((" ", "\t")))
    folded = lines[start:end]
    assert folded[0].startswith("Subject: [ldflow #3]"), folded  # never "Subject:" alone on its line
    assert all(line.startswith(" ") and line.strip() for line in folded[1:]), folded
    long_words = [w for w in subject.split() if len(w) > 60]
    assert long_words or all(len(line) <= 78 for line in folded), folded
    parsed = message_from_bytes(raw, policy=default_policy)
    assert parsed["Subject"] == f"[ldflow #3] {subject}"
    if subject.isascii():  # folds are line breaks before a space: unfolding gives the subject back
        assert "".join(folded) == f"Subject: [ldflow #3] {subject}"


def test_the_acknowledgement_of_a_mailed_in_request_answers_its_thread() -> None:
    request = TrainingRequest.submit(parse(Intake, intake_data()), T0,
                                     ("<a@mail.example.org>", "<original@mail.example.org>"))
    request.id = 7
    [n] = request.pending_notifications()
    msg = message_from_bytes(do_render(n).as_bytes(), policy=default_policy)
    assert msg["In-Reply-To"] == "<original@mail.example.org>"
    assert msg["References"] == "<a@mail.example.org> <original@mail.example.org>"
    assert [a.addr_spec for a in msg["To"].addresses] == [intake_data()["requester"]["email"]]
    unthreaded = do_render(replace(n, context={k: v for k, v in n.context.items()
                                               if k not in ("in_reply_to", "references")}))
    assert unthreaded["In-Reply-To"] is None and unthreaded["References"] is None


@pytest.mark.parametrize("bad", ["no-brackets@example.org", "<two@a> <ids@b>", "<x@y>\r\nBcc: eve@example.org",
                                 "", "<nodomain>"])
def test_an_unusable_message_id_is_not_threaded(bad: str) -> None:
    msg = do_render(notification("intake_acknowledgement", {**BASE, "in_reply_to": bad, "references": [bad]}))
    assert msg["In-Reply-To"] is None and msg["References"] is None and "eve@" not in msg.as_string()


def _calendar_component(message: EmailMessage) -> Any:
    parsed = message_from_bytes(message.as_bytes(), policy=default_policy)
    [part] = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    [component] = [c for c in Calendar.from_ical(part.get_content()).walk() if c.name in ("VEVENT", "VTODO")]
    return component


@pytest.mark.parametrize("key", ["3:delivery_invite:lab-1:0", "4:session_cancelled:lab-1:1"])
def test_invites_have_the_location_and_the_team_as_organizer(key: str) -> None:
    [n] = [n for n in domain_notifications() if n.key == key]
    event = _calendar_component(do_render(n))
    assert str(event["LOCATION"]) == "Room 4"
    assert str(event["ORGANIZER"]) == "mailto:ld-team@example.org"  # the From address, not the sponsor
    assert str(event["ORGANIZER"].params["CN"]) == "Learning & Development"
    chosen = Recipient("Priya Shah", "priya@example.org")
    event = _calendar_component(do_render(n, organizer=chosen))  # LDFLOW_ORGANIZER
    assert str(event["ORGANIZER"]) == "mailto:priya@example.org"
    assert str(event["ORGANIZER"].params["CN"]) == "Priya Shah"
    own = replace(n, calendar=replace(n.calendar, organizer=Recipient("Olu", "olu@example.org")))  # type: ignore[arg-type]
    assert str(_calendar_component(do_render(own, organizer=chosen))["ORGANIZER"]) == "mailto:olu@example.org"


def test_the_collection_to_do_is_organised_by_the_team() -> None:
    n = domain("checkpoint_reminder")[0]
    todo = _calendar_component(do_render(n))
    assert todo.name == "VTODO" and str(todo["ORGANIZER"]) == "mailto:ld-team@example.org"
    assert [str(a) for a in (todo["ATTENDEE"] if isinstance(todo["ATTENDEE"], list) else [todo["ATTENDEE"]])] == [
        f"mailto:{n.to[0].email}"]
    assert "LOCATION" not in todo


FIELD = re.compile(r"^  [A-Z][a-z]+(?: [a-z]+)?:\s")


def test_every_plain_text_mail_keeps_one_field_a_line_and_no_double_blank_lines() -> None:
    """Jinja's block trimming ate the newline after an inline ``{% endif %}``: "… 8%  By: Tue 30 Jun"."""
    checked = 0
    for n in domain_notifications():
        text, _ = bodies(do_render(n))
        assert "\n\n\n" not in text, f"{n.template}: two blank lines in a row:\n{text}"
        for line in text.splitlines():
            glued = re.search(r"\S\s{2,}(What you own|Why|The result|By|Metric|Instrument|Target|Today|How|When|"
                              r"Owner):\s", line)
            assert glued is None, f"{n.template}: two fields on one line: {line!r}"
        checked += sum(1 for line in text.splitlines() if FIELD.match(line))
    assert checked >= 5  # the check saw field lines at all
