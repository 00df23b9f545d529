"""Parsing inbound mail: the useful fields, and malformed MIME quarantined quickly."""

from __future__ import annotations

import base64
import os
import time

import pytest

from connectors.email.config import InboundLimits
from connectors.email.inbound import html_to_text, parse_message, parse_request_tag

HEAD = ("From: Dana Smith <dana@example.org>\r\nTo: ld@example.org\r\nMIME-Version: 1.0\r\n"
        "Date: Mon, 02 Nov 2026 09:00:00 +0000\r\n")


def raw(headers: str, body: str = "", ctype: str = "text/plain; charset=utf-8") -> bytes:
    return (HEAD + headers + f"Content-Type: {ctype}\r\n\r\n" + body).encode()


def test_reads_the_fields_of_a_plain_reply() -> None:
    msg = parse_message(raw(
        "Subject: Re: [ldflow #42] Please approve the measurement plan\r\nMessage-ID: <r1@example.org>\r\n"
        "In-Reply-To: <abc@ldflow.example.org>\r\nReferences: <x@y> <abc@ldflow.example.org>\r\n",
        "approve\r\n\r\n> quoted\r\n"))
    assert msg.quarantine is False and msg.defects == ()
    assert msg.message_id == "<r1@example.org>"
    assert msg.in_reply_to == ("<abc@ldflow.example.org>",)
    assert msg.references == ("<x@y>", "<abc@ldflow.example.org>")
    assert msg.thread_ids == ("<abc@ldflow.example.org>", "<x@y>")
    assert (msg.from_address, msg.from_name) == ("dana@example.org", "Dana Smith")
    assert msg.request_tag == 42
    assert msg.body_text.startswith("approve")
    assert msg.date == "2026-11-02T09:00:00+00:00"


def test_html_only_mail_falls_back_to_stripped_text() -> None:
    html = ("<html><head><style>p{color:red}</style><script>x()</script></head><body><p>4</p>"
            "<p>Much better &amp; faster</p><blockquote>old text</blockquote></body></html>")
    msg = parse_message(raw("Subject: s\r\nMessage-ID: <h@x>\r\n", html, "text/html; charset=utf-8"))
    assert msg.body_text.splitlines()[0] == "4"
    assert "Much better & faster" in msg.body_text and "color" not in msg.body_text and "x()" not in msg.body_text
    assert "> old text" in msg.body_text
    assert html_to_text("<b>a</b><br>b") == "a\nb"


def test_prefers_text_plain_in_alternatives() -> None:
    body = ('--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b\r\nContent-Type: text/plain; '
            'charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 3\r\n--b--\r\n')
    msg = parse_message(raw("Subject: s\r\nMessage-ID: <a@x>\r\n", body, 'multipart/alternative; boundary="b"'))
    assert msg.body_text == "Café 3" and not msg.quarantine


def test_missing_message_id_gets_a_stable_substitute() -> None:
    data = raw("Subject: no id\r\n", "hello")
    first, second = parse_message(data), parse_message(data)
    assert first.message_id == second.message_id
    assert first.message_id.endswith("@content.ldflow>")


def test_request_tag() -> None:
    assert parse_request_tag("Re: [ldflow #7] Plan") == 7
    assert parse_request_tag("Fwd: [LDFLOW #12]") == 12
    assert parse_request_tag("[ldflow #x]") is None and parse_request_tag("") is None


def _nested(depth: int) -> str:
    body = "Content-Type: text/plain\r\n\r\ndeep\r\n"
    for i in range(depth):
        body = f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n{body}\r\n--b{i}--\r\n'
    return body


MALFORMED = {
    "no boundary parameter": (raw("Subject: s\r\nMessage-ID: <m1@x>\r\n",
                                  "--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n", "multipart/mixed"),
                              "NoBoundaryInMultipartDefect"),
    "start boundary missing": (raw("Subject: s\r\nMessage-ID: <m2@x>\r\n", "just text\r\n",
                                   'multipart/mixed; boundary="b"'), "StartBoundaryNotFoundDefect"),
    "close boundary missing": (raw("Subject: s\r\nMessage-ID: <m3@x>\r\n",
                                   "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n", 'multipart/mixed; boundary="b"'),
                               "CloseBoundaryNotFoundDefect"),
    "unknown charset": (raw("Subject: s\r\nMessage-ID: <m4@x>\r\n", "hi", "text/plain; charset=x-klingon"),
                        "unknown charset 'x-klingon'"),
    "bytes invalid for charset": (HEAD.encode() + b"Subject: s\r\nMessage-ID: <m5@x>\r\n"
                                  b"Content-Type: text/plain; charset=utf-8\r\n\r\nhi \xff\xfe there\r\n",
                                  "not valid utf-8"),
    "deep nesting": ((HEAD + "Subject: s\r\nMessage-ID: <m6@x>\r\n" + _nested(40)).encode(), "nesting"),
    "thousands of parts": ((HEAD + "Subject: s\r\nMessage-ID: <m7@x>\r\n" + _nested(3000)).encode(),
                           "too many nested multipart"),
    "bad base64": (raw("Subject: s\r\nMessage-ID: <m8@x>\r\nContent-Transfer-Encoding: base64\r\n", "aGVsbG8=x=\r\n"),
                   "Base64"),
    "CVE-2023-27043 sender": ((b"From: alice@example.org(<bob@example.com>\r\nTo: ld@example.org\r\n"
                               b"Subject: s\r\nMessage-ID: <m9@x>\r\n\r\nhi\r\n"), "From"),
    "no From": (b"To: ld@example.org\r\nSubject: s\r\nMessage-ID: <m10@x>\r\n\r\nhi\r\n", "missing From"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_messages_are_quarantined_with_their_defects(name: str) -> None:
    data, expected = MALFORMED[name]
    started = time.monotonic()
    msg = parse_message(data)
    assert time.monotonic() - started < 5.0
    assert msg.quarantine, msg
    assert expected in msg.reason, msg.reason
    assert msg.body_text == ""


def test_a_20_mb_part_is_judged_in_well_under_5_seconds() -> None:
    big = base64.encodebytes(os.urandom(15 * 1024 * 1024)).decode().replace("\n", "\r\n")
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream"
            "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + big + "\r\n--b--\r\n")
    data = raw("Subject: big\r\nMessage-ID: <big@x>\r\n", body, 'multipart/mixed; boundary="b"')
    assert len(data) > 20 * 1024 * 1024
    started = time.monotonic()
    msg = parse_message(data)
    assert time.monotonic() - started < 5.0
    assert msg.quarantine and "over the limit" in msg.reason
    started = time.monotonic()
    small_limit = parse_message(data, InboundLimits(max_message_bytes=1024 * 1024))
    assert time.monotonic() - started < 1.0
    assert small_limit.quarantine and "message is" in small_limit.reason
    assert small_limit.message_id == "<big@x>"


def test_harmless_oddities_are_recorded_but_not_quarantined() -> None:
    msg = parse_message(b"From: dana@example.org\r\nSubject: s\r\nMessage-ID: <ok@x>\r\nDate: not a date\r\n\r\nfine")
    assert not msg.quarantine
    assert any("Date" in d for d in msg.defects)


def test_never_raises_on_garbage() -> None:
    for data in (b"", b"\x00\x01\x02", b"\r\n\r\n", os.urandom(2000), b"From: \r\n" * 1000):
        msg = parse_message(data)
        assert msg.quarantine
