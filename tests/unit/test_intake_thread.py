"""A mailed-in request is answered in its thread: the Message-IDs its acknowledgement replies to."""

from __future__ import annotations

import pytest

from connectors.email.inbound import parse_message
from flows.intake import thread_of


@pytest.mark.parametrize(("headers", "expected"), [
    (b"Message-ID: <m1@example.org>\r\n", ("<m1@example.org>",)),
    (b"Message-ID: <m2@example.org>\r\nReferences: <r1@example.org> <r2@example.org>\r\n",
     ("<r1@example.org>", "<r2@example.org>", "<m2@example.org>")),
    (b"", ()),  # no Message-ID: ldflow made one up, nothing to thread under
])
def test_the_thread_an_answer_to_a_mailed_in_request_belongs_to(headers: bytes, expected: tuple[str, ...]) -> None:
    raw = b"From: Nora <nora@example.org>\r\nTo: ld@example.org\r\nSubject: Training\r\n" + headers + b"\r\nPlease.\r\n"
    assert thread_of(parse_message(raw)) == expected
