"""The link-use port: what the people outside L&D did through their signed links (``SqlLinkUses``).

A use is recorded in the write transaction of the action it stands for (the approval, the answer,
the result), so the two commit together or not at all. A single-use link (``once=True``) can be
recorded once: a second ``record`` of the same link id returns False and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class LinkUse:
    """One action taken through a signed link. ``link_id`` names the link, never its secret."""

    link_id: str
    purpose: str
    request_id: int
    person: str
    action: str
    used_at: datetime


class LinkUseLog(Protocol):
    """The recorded uses of signed links. Inside a transaction (``Transaction.links``) a record joins
    it; outside (``UnitOfWork.links``) the reads see what was committed."""

    def record(self, use: LinkUse, *, once: bool) -> bool: ...
    def uses(self, link_id: str) -> list[LinkUse]: ...
