"""Authentication-Results (RFC 8601): what our own receiving server said about a message's sender.

Only headers whose authserv-id is one we trust (``LDFLOW_MAIL_AUTHSERV_IDS``: the names our
receiving server writes) are read; RFC 8601 section 5: a header from any other authserv-id may have
been written by anyone, the sender included, and is ignored. A trusted header that cannot be read
counts as a failure (we would not know what our server said).

``check_sender`` gives the verdict ldflow acts on: ``failures`` (SPF, DKIM or DMARC ``fail``
reported by a trusted header: the reply is not acted on) and ``authenticated`` (no failure and a
trusted header reports a pass aligned with the From domain: DMARC pass, or DKIM pass whose
``header.d`` is the From domain or its parent/child, or SPF pass whose ``smtp.mailfrom`` domain is).

The parser is a strict reading of the RFC's grammar (comments, quoted strings, ``method/version``,
``reason=``, ``ptype.property=value``); nothing here raises for hostile input except
``AuthResultsError`` from ``parse``. No library is used: ``authres`` was last released in 2019 and
``authheaders`` brings in dkimpy, dnspython and a public-suffix list for verification we do not do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

__all__ = ["AuthResult", "AuthResults", "AuthResultsError", "SenderCheck", "check_sender", "parse"]

FAIL_METHODS = ("spf", "dkim", "dmarc")
MAX_HEADER = 8000


class AuthResultsError(ValueError):
    """An Authentication-Results value that does not follow RFC 8601."""


@dataclass(frozen=True)
class AuthResult:
    """One ``method=result`` with its properties (``{"header.d": "example.org"}``), lower-cased names."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthResults:
    authserv_id: str
    results: tuple[AuthResult, ...]


_SPECIALS = ';=()"'


def _tokens(value: str) -> list[tuple[str, str]]:
    """``(kind, text)`` tokens: ``w`` word, ``q`` quoted string, ``;`` and ``=``; comments dropped."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            depth, i = 1, i + 1
            while i < n and depth:
                if value[i] == "\\":
                    i += 1
                elif value[i] == "(":
                    depth += 1
                elif value[i] == ")":
                    depth -= 1
                i += 1
            if depth:
                raise AuthResultsError("unclosed comment")
        elif c == ")":
            raise AuthResultsError("')' without '('")
        elif c == '"':
            text, i = [], i + 1
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                text.append(value[i])
                i += 1
            if i >= n:
                raise AuthResultsError("unclosed quoted string")
            out.append(("q", "".join(text)))
            i += 1
        elif c in ";=":
            out.append((c, c))
            i += 1
        else:
            start = i
            while i < n and value[i] not in _SPECIALS and value[i] not in " \t\r\n":
                i += 1
            out.append(("w", value[start:i]))
    return out


def _split(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    parts: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token[0] == ";":
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _keyword(token: tuple[str, str], what: str) -> str:
    kind, text = token
    if kind != "w" or not text or not all(ch.isalnum() or ch in "-_./" for ch in text):
        raise AuthResultsError(f"{what} {text!r} is not a keyword")
    return text.lower()


def _resinfo(part: list[tuple[str, str]]) -> AuthResult:
    if len(part) < 3 or part[1][0] != "=":
        raise AuthResultsError("a result is not 'method=result'")
    method, slash, version = _keyword(part[0], "method").partition("/")
    if not method or (slash and not version.isdigit()):
        raise AuthResultsError(f"method {part[0][1]!r} is not 'method' or 'method/version'")
    result = _keyword(part[2], "result")
    properties: dict[str, str] = {}
    rest = part[3:]
    if len(rest) % 3:
        raise AuthResultsError(f"{method}: a property is not 'name=value'")
    for index in range(0, len(rest), 3):
        name, eq, value = rest[index:index + 3]
        if eq[0] != "=" or value[0] not in ("w", "q"):
            raise AuthResultsError(f"{method}: a property is not 'name=value'")
        key = _keyword(name, "property")
        if key != "reason" and "." not in key:
            raise AuthResultsError(f"{method}: property {key!r} is not 'ptype.property'")
        properties.setdefault(key, value[1])
    return AuthResult(method, result, properties)


def parse(value: str) -> AuthResults:
    """One Authentication-Results value (the part after the colon)."""
    if len(value) > MAX_HEADER:
        raise AuthResultsError(f"longer than {MAX_HEADER} characters")
    parts = _split(_tokens(value))
    head = parts[0]
    if not head or head[0][0] not in ("w", "q") or not head[0][1]:
        raise AuthResultsError("no authserv-id")
    if len(head) > 2 or (len(head) == 2 and not (head[1][0] == "w" and head[1][1].isdigit())):
        raise AuthResultsError("the authserv-id is followed by something that is not a version")
    authserv_id = head[0][1].lower()
    rest = parts[1:]
    if len(rest) == 1 and len(rest[0]) == 1 and rest[0][0][0] == "w" and rest[0][0][1].lower() == "none":
        return AuthResults(authserv_id, ())
    if not rest:
        raise AuthResultsError("no results (not even 'none')")
    return AuthResults(authserv_id, tuple(_resinfo(p) for p in rest))


@dataclass(frozen=True)
class SenderCheck:
    """The verdict of the trusted headers on a message (see the module docstring)."""

    trusted_headers: int = 0
    failures: tuple[str, ...] = ()
    authenticated: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.failures)


def _domain(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()


def _aligned(domain: str, from_domain: str) -> bool:
    return bool(domain) and (domain == from_domain or from_domain.endswith("." + domain)
                             or domain.endswith("." + from_domain))


def _claimed_id(value: str) -> str:
    """The authserv-id a header names (even when the rest of it cannot be read)."""
    try:
        tokens = _tokens(value[:MAX_HEADER])
    except AuthResultsError:
        first = value.lstrip().split(";", 1)[0].split(None, 1)
        return first[0].strip('"').lower() if first else ""
    return tokens[0][1].lower() if tokens and tokens[0][0] in ("w", "q") else ""


def check_sender(headers: Iterable[str], trusted: Collection[str], from_address: str) -> SenderCheck:
    """The verdict of those ``headers`` (Authentication-Results values) whose authserv-id is in
    ``trusted`` on a message From ``from_address``."""
    wanted = {t.strip().lower() for t in trusted if t.strip()}
    from_domain = _domain(from_address)
    count, failures, passed = 0, [], False
    for value in headers:
        claimed = _claimed_id(value)
        if not wanted or claimed not in wanted:
            continue  # a header from anyone but our own server: not evidence of anything
        count += 1
        try:
            parsed = parse(value)
        except AuthResultsError as exc:
            failures.append(f"unreadable Authentication-Results from {claimed}: {exc}")
            continue
        for r in parsed.results:
            if r.method in FAIL_METHODS and r.result == "fail":
                failures.append(f"{r.method}=fail (Authentication-Results from {parsed.authserv_id})")
            elif r.result == "pass" and r.method == "dmarc":
                passed = passed or _aligned(_domain(r.properties.get("header.from", from_domain)), from_domain)
            elif r.result == "pass" and r.method == "dkim":
                passed = passed or _aligned(_domain(r.properties.get("header.d", r.properties.get("header.i", ""))),
                                            from_domain)
            elif r.result == "pass" and r.method == "spf":
                passed = passed or _aligned(_domain(r.properties.get("smtp.mailfrom", "")), from_domain)
    return SenderCheck(count, tuple(dict.fromkeys(failures)), passed and not failures)
