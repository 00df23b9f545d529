"""Reply codes (connectors.email.tokens) and where the renderer puts them (Message-ID, Reply-To, body)."""

from __future__ import annotations

import hashlib
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from connectors.email.render import render
from connectors.email.tokens import find_codes, invites_reply, parse_code, plus_address, reply_code, same_code
from states.notifications import Notification, Recipient

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_a_code_is_per_recipient_per_mail_and_per_key() -> None:
    code = reply_code(KEY, "7:plan_approval_request:v3", 7, "sam@example.org")
    assert parse_code(code) == 7 and code.startswith("ldr-7-") and len(code) == len("ldr-7-") + 26
    assert code == reply_code(KEY, "7:plan_approval_request:v3", 7, " Sam@Example.ORG ")  # the same address
    others = {reply_code(KEY, "7:plan_approval_request:v3", 7, "mallory@example.org"),
              reply_code(KEY, "7:plan_approval_request:v4", 7, "sam@example.org"),
              reply_code(OTHER_KEY, "7:plan_approval_request:v3", 7, "sam@example.org")}
    assert code not in others and len(others) == 3
    # not derived from what a stranger can guess: neither the key's hash nor the old Message-ID's
    guessable = hashlib.sha256(b"7:plan_approval_request:v3").hexdigest()
    assert guessable[:20] not in code


def test_codes_are_found_in_headers_addresses_and_quoted_text_case_insensitively() -> None:
    code = reply_code(KEY, "7:survey:m2:P1D", 7, "rita@example.org")
    quoted = f"4.5\n\nOn Tue the team wrote:\n> Reply code: {code.upper()} (it shows the reply is yours)"
    assert find_codes([f"<{code}@example.org>"], [f"ld+{code}@example.org"], quoted) == [code]
    assert find_codes("ldr-7-short", "xldr-7-" + code[6:], "") == []  # malformed or glued to other text
    assert same_code(code, code.upper()) and not same_code(code, code[:-1] + "a")
    assert parse_code("ldr-x-abc") is None


def test_plus_addressing_only_where_the_address_can_take_it() -> None:
    assert plus_address("ld@example.org", "ldr-1-abc") == "ld+ldr-1-abc@example.org"
    assert plus_address("ld+team@example.org", "ldr-1-abc") is None
    assert plus_address('"l d"@example.org', "ldr-1-abc") is None
    assert plus_address("x" * 60 + "@example.org", "ldr-1-abc") is None
    assert invites_reply("plan_approval_request") and invites_reply("checkpoint_reminder")
    assert not invites_reply("diagnosis_summary") and not invites_reply("intake_acknowledgement")


def _approval(to: tuple[Recipient, ...]) -> Notification:
    plan = {"items": [{"metric": "first-call resolution", "unit": "%"}]}
    return Notification(key="7:plan_approval_request:v3", request_id=7, template="plan_approval_request", to=to,
                        subject="Please approve the measurement plan: Sales", context={
                            "request": {"id": 7, "title": "Sales"}, "plan": plan})


def test_a_mail_that_invites_a_reply_carries_the_code_three_ways() -> None:
    sam = Recipient("Sam Sponsor", "sam@example.org")
    msg = message_from_bytes(render(_approval((sam,)), "ld@example.org", "example.org", reply_key=KEY).as_bytes(),
                             policy=default_policy)
    code = reply_code(KEY, "7:plan_approval_request:v3", 7, "sam@example.org")
    assert msg["Message-ID"] == f"<{code}@example.org>"
    assert msg["Reply-To"].addresses[0].addr_spec == f"ld+{code}@example.org"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f"Reply code: {code}" in text and f"Reply code: {code}" in html


@pytest.mark.parametrize("mail_from, plus, reply_to", [("ld+team@example.org", True, None),
                                                       ("ld@example.org", False, None)])
def test_no_plus_address_when_mail_from_or_the_setting_forbids_it(mail_from: str, plus: bool,
                                                                  reply_to: str | None) -> None:
    sam = Recipient("Sam Sponsor", "sam@example.org")
    msg = render(_approval((sam,)), mail_from, "example.org", reply_key=KEY, plus_addressing=plus)
    assert msg["Reply-To"] is reply_to and str(msg["Message-ID"]).startswith("<ldr-7-")


def test_without_a_key_or_with_several_recipients_no_code_is_made_up() -> None:
    sam, lee = Recipient("Sam", "sam@example.org"), Recipient("Lee", "lee@example.org")
    for msg in (render(_approval((sam,)), "ld@example.org", "example.org"),
                render(_approval((sam, lee)), "ld@example.org", "example.org", reply_key=KEY)):
        assert not str(msg["Message-ID"]).startswith("<ldr-") and msg["Reply-To"] is None
        assert "Reply code" not in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
