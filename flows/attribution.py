"""Who acted, and through which channel: the two fields of a history entry, shown together.

An entry records the person as its ``actor`` and the channel as its event's ``via`` field (``cli``,
``web``, ``api``, ``link``, ``mail`` …; :meth:`flows.service.Service.via` stamps it). Entries written
before the channel had its own field carry it in the actor text, ``"<who> (via api|link)"``; the
audit chain is never rewritten, so :func:`split` still reads them and :func:`shown` says both the
same way for old and new entries: ``"Ann (via link)"``.
"""

from __future__ import annotations

import re
from typing import Final

#: The channels an actor acts through (the JSON API is ``api``, a signed link in a mail ``link``).
CHANNELS: Final = ("cli", "web", "link", "reply", "pipeline", "api", "mail")

_VIA = re.compile(r"^(?P<who>.+) \(via (?P<via>" + "|".join(CHANNELS) + r")\)$", re.DOTALL)


def split(actor: str) -> tuple[str, str | None]:
    """(who, channel) of a recorded actor text; the channel is None when the text names none (every
    entry written since the channel has its own ``via`` field)."""
    match = _VIA.match(actor)
    return (match["who"], match["via"]) if match else (actor, None)


def person(actor: str) -> str:
    """The person of a recorded actor, an old ``"Ann (via api)"`` included."""
    return split(actor)[0]


def shown(actor: str, via: object = "") -> str:
    """``"Ann (via link)"`` from the entry's actor and ``via`` (or from an old entry's actor text)."""
    who, old = split(actor)
    channel = str(via or "") or old
    return f"{who} (via {channel})" if channel else who
