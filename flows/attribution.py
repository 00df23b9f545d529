"""Who acted, and through which channel: the actor recorded on a history entry.

The history records one actor per entry (hashed into the audit chain with the rest of it). A
channel other than the command line is part of that text, ``"<who> (via <channel>)"``, so the
history, exports and the report say both without a change to the audit record's shape.
"""

from __future__ import annotations

import re
from typing import Final

#: The channels an actor acts through (the JSON API is ``api``).
CHANNELS: Final = ("cli", "web", "link", "reply", "pipeline", "api")

_VIA = re.compile(r"^(?P<who>.+) \(via (?P<via>" + "|".join(CHANNELS) + r")\)$", re.DOTALL)


def attributed(who: str, channel: str) -> str:
    """``who`` as recorded when acting through ``channel``: ``"Ann Lee (via api)"``."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    return f"{who.strip()} (via {channel})"


def split(actor: str) -> tuple[str, str | None]:
    """(who, channel) of a recorded actor; the channel is None when the text names none."""
    match = _VIA.match(actor)
    return (match["who"], match["via"]) if match else (actor, None)
