"""Strict address and header validation; injection attempts never reach the wire."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.email.addresses import (
    HeaderValueError,
    InvalidAddressError,
    make_address,
    validate_address,
    validate_header_text,
)
from connectors.email.render import render
from states.notifications import Notification, Recipient

GOOD = ["alice@example.org", "a.b+tag@sub.example.co.uk", "o'brien@example.ie", "x@localhost", "UPPER@Example.ORG"]
BAD = [
    "alice@example.org(<bob@example.com>",  # CVE-2023-27043
    "bob@example.com <alice@example.org>",
    "alice@example.org, bob@example.com",
    "alice@example.org;bob@example.com",
    "Alice <alice@example.org>",
    '"alice@example.org"@evil.example',
    '"a b"@example.org',
    "alice(comment)@example.org",
    "alice@example.org\r\nBcc: eve@evil.example",
    "alice@example.org\nBcc: eve@evil.example",
    "alice@exa\x00mple.org",
    "alice@[127.0.0.1]",
    "alice@@example.org",
    "alice",
    "@example.org",
    "alice@",
    "a..b@example.org",
    ".a@example.org",
    "ñandú@example.org",
    "alice@-example.org",
    "",
    "   ",
    "a" * 65 + "@example.org",
    "undisclosed-recipients:;",
    "group: alice@example.org;",
]


@pytest.mark.parametrize("value", GOOD)
def test_plain_addresses_pass(value: str) -> None:
    assert validate_address("To", value) == value


@pytest.mark.parametrize("value", BAD)
def test_everything_else_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidAddressError) as caught:
        validate_address("Reply-To", value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == "Reply-To"
    assert str(caught.value).startswith("Reply-To:")


@pytest.mark.parametrize("value", ["Hello\r\nBcc: eve@evil.example", "a\rb", "a\nb", "nul\x00", "bell\x07",
                                   "sep\u2028arator", "del\x7f"])
def test_header_text_with_control_characters_is_refused(value: str) -> None:
    with pytest.raises(HeaderValueError, match="Subject: contains a control character"):
        validate_header_text("Subject", value)


def test_header_text_allows_unicode_and_limits_length() -> None:
    assert validate_header_text("Subject", "Zoë’s “plan” — ✓") == "Zoë’s “plan” — ✓"
    with pytest.raises(HeaderValueError, match="at most 10"):
        validate_header_text("Subject", "x" * 11, max_length=10)


def test_display_names_are_quoted_not_trusted() -> None:
    address = make_address("To", 'Eve, "Admin" <root@evil.example>', "eve@example.org")
    assert address.addr_spec == "eve@example.org"
    assert address.display_name == 'Eve, "Admin" <root@evil.example>'


def _notification(name: str, email: str, subject: str = "Hello") -> Notification:
    return Notification(key="k1", request_id=9, template="request_cancelled", to=(Recipient(name, email),),
                        subject=subject, context={"request": {"title": "T"}})


@pytest.mark.parametrize("field,notification", [
    ("To[0] name", _notification("Dana\r\nBcc: eve@evil.example", "dana@example.org")),
    ("To[0] name", _notification("Dana\x00", "dana@example.org")),
    ("To[0]", _notification("Dana", "alice@example.org(<bob@example.com>")),
    ("Subject", _notification("Dana", "dana@example.org", "Hi\r\nBcc: eve@evil.example")),
    ("Subject", _notification("Dana", "dana@example.org", "Hi\nthere")),
])
def test_render_refuses_injection(field: str, notification: Notification) -> None:
    with pytest.raises(HeaderValueError) as caught:
        render(notification, "ld@example.org", "example.org")
    assert caught.value.field == field


def test_render_refuses_a_bad_sender_and_message_id_domain() -> None:
    with pytest.raises(InvalidAddressError, match="From"):
        render(_notification("Dana", "dana@example.org"), "ld@example.org>\r\nX: y", "example.org")
    with pytest.raises(InvalidAddressError, match="message-id domain"):
        render(_notification("Dana", "dana@example.org"), "ld@example.org", "example.org>\r\nX-Evil: 1")


names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60)


@given(name=names, subject=names)
def test_parsed_back_message_has_exactly_the_intended_headers_and_recipients(name: str, subject: str) -> None:
    message = render(_notification(name, "dana@example.org", subject or "x"), "ld@example.org", "example.org")
    raw = message.as_bytes()
    assert raw.isascii()
    parsed = message_from_bytes(raw, policy=default_policy)
    assert sorted(k.lower() for k in parsed) == sorted([
        "from", "to", "subject", "date", "message-id", "x-ldflow-request", "x-ldflow-key",
        "x-ldflow-template", "auto-submitted", "mime-version", "content-type"])
    [to] = parsed["To"].addresses
    assert to.addr_spec == "dana@example.org"
    # Folding may collapse runs of whitespace, and CPython's parser keeps the folding
    # space between two adjacent encoded-words (RFC 2047 6.2 says drop it); the
    # characters themselves always survive.
    assert "".join(to.display_name.split()) == "".join(name.split())
    assert "".join(str(parsed["Subject"]).split()[2:]) == "".join((subject or "x").split())
    assert parsed.get_all("Bcc") is None and parsed.get_all("Cc") is None
