"""Small wording helpers for messages people read: plurals and the indefinite article."""

from __future__ import annotations

_AN_EXCEPTIONS = ("one", "once", "uni", "use", "usu", "eu")  # a one-off, a unit, a user, a usual, a euro


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 request``, ``2 requests``, ``0 requests``; ``many`` for an irregular plural
    (``plural(2, "reply", "replies")``)."""
    return f"{count:,} {noun if count == 1 else (many or noun + 's')}"


def article(word: str) -> str:
    """``a`` or ``an`` for ``word`` (by its spelling: "an acknowledged", "a received", "a user")."""
    lower = word.lower()
    if lower[:1] in ("a", "e", "i", "o", "u") and not lower.startswith(_AN_EXCEPTIONS):
        return "an"
    return "a"


def with_article(word: str) -> str:
    """``an acknowledged``, ``a received``."""
    return f"{article(word)} {word}"
