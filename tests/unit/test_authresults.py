"""Authentication-Results (RFC 8601): the strict parser and the verdict on a sender."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.email.authresults import AuthResultsError, check_sender, parse

OURS = ("mx.example.org",)


def test_the_rfc_examples_and_what_servers_write() -> None:
    parsed = parse(" mx.example.org 1; spf=pass (sender SPF authorized) smtp.mailfrom=sam@example.org;\r\n"
                   "\tdkim=pass (2048-bit key) reason=\"good signature\" header.d=example.org header.s=sel1;\r\n"
                   "\tdmarc=pass (p=reject dis=none) header.from=example.org")
    assert parsed.authserv_id == "mx.example.org"
    assert [(r.method, r.result) for r in parsed.results] == [("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass")]
    assert parsed.results[1].properties == {"reason": "good signature", "header.d": "example.org",
                                            "header.s": "sel1"}
    assert parse("example.com; none").results == ()
    assert parse('"mx.example.org"; dkim/1=FAIL header.i=@example.org').results[0].result == "fail"
    assert parse("mx.example.org (a (nested) comment); auth=pass smtp.auth=sam").results[0].method == "auth"


@pytest.mark.parametrize("value", ["", ";", "mx.example.org", "mx.example.org; spf", "mx.example.org; spf=",
                                   "mx.example.org; spf=pass smtp", "mx.example.org; spf=pass (unclosed",
                                   'mx.example.org; spf=pass reason="open', "mx.example.org x y; spf=pass",
                                   "mx.example.org; spf=pa$s", "mx.example.org) ; spf=pass", "x" * 9000])
def test_what_does_not_follow_the_grammar_is_refused(value: str) -> None:
    with pytest.raises(AuthResultsError):
        parse(value)


def test_a_fail_from_our_server_fails_the_sender() -> None:
    check = check_sender(["mx.example.org; spf=fail smtp.mailfrom=example.org; dkim=fail header.d=example.org; "
                          "dmarc=fail header.from=example.org"], OURS, "sam@example.org")
    assert check.failed and not check.authenticated and check.trusted_headers == 1
    assert [f.split(" ")[0] for f in check.failures] == ["spf=fail", "dkim=fail", "dmarc=fail"]
    assert check_sender(["MX.Example.ORG; dkim=pass header.d=example.org; spf=fail smtp.mailfrom=example.org"],
                        OURS, "sam@example.org").failed  # one fail is enough, whatever else passed


def test_headers_from_any_other_authserv_id_are_ignored_as_rfc_8601_says() -> None:
    forged_pass = "mx.example.org.evil.test; dmarc=pass header.from=example.org; dkim=pass header.d=example.org"
    forged_fail = "attacker.test; spf=fail smtp.mailfrom=example.org"
    check = check_sender([forged_pass, forged_fail], OURS, "sam@example.org")
    assert (check.trusted_headers, check.failed, check.authenticated) == (0, False, False)
    # our server's fail wins over a forged pass written under our own name
    both = check_sender(["mx.example.org; dmarc=pass header.from=example.org",
                         "mx.example.org; dmarc=fail header.from=example.org"], OURS, "sam@example.org")
    assert both.failed and not both.authenticated
    # nothing trusted configured: no header counts
    assert check_sender(["mx.example.org; spf=fail smtp.mailfrom=x"], (), "sam@example.org").trusted_headers == 0


def test_authenticated_means_a_pass_aligned_with_the_from_domain() -> None:
    def authenticated(header: str, sender: str = "sam@mail.example.org") -> bool:
        return check_sender([header], OURS, sender).authenticated

    assert authenticated("mx.example.org; dmarc=pass header.from=mail.example.org")
    assert authenticated("mx.example.org; dkim=pass header.d=example.org")  # the parent domain signs
    assert authenticated("mx.example.org; spf=pass smtp.mailfrom=bounce@mail.example.org")
    assert not authenticated("mx.example.org; dkim=pass header.d=elsewhere.test")  # someone else's signature
    assert not authenticated("mx.example.org; spf=pass smtp.mailfrom=elsewhere.test")
    assert not authenticated("mx.example.org; dmarc=pass header.from=elsewhere.test")
    assert not authenticated("mx.example.org; spf=softfail smtp.mailfrom=mail.example.org")
    assert not authenticated("mx.example.org; none")


def test_an_unreadable_header_from_our_server_is_a_failure_not_a_pass() -> None:
    check = check_sender(["mx.example.org; dmarc=pass header.from=example.org; spf=(broken"], OURS,
                         "sam@example.org")
    assert check.failed and "unreadable Authentication-Results from mx.example.org" in check.failures[0]


_PIECES = st.sampled_from(["mx.example.org", ";", " ", "=", "(", ")", '"', "\\", "spf", "pass", "fail", "dkim",
                           "header.d", "example.org", "none", "1", "/", ".", "@", "\r\n\t", "é", "\x00"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join) | st.text(max_size=200))
def test_any_header_is_read_or_refused_never_a_crash(value: str) -> None:
    try:
        parsed = parse(value)
    except AuthResultsError:
        pass
    else:
        assert parsed.authserv_id and all(r.method and r.result for r in parsed.results)
    check = check_sender([value], OURS, "sam@example.org")
    assert not (check.failed and check.authenticated)


@pytest.mark.parametrize("value", ["mx.example.org;/=mx.example.org", "mx.example.org; dkim/=pass",
                                   "mx.example.org; dkim/x=pass"])
def test_a_method_without_its_name_or_with_a_bad_version_is_refused(value: str) -> None:
    """Found by the property above: 'mx.example.org;/=x' once read as a result with an empty method."""
    with pytest.raises(AuthResultsError):
        parse(value)
