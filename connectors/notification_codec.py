"""A notification as the JSON an outbox row keeps, and back: one codec for the SQL outbox and its fake."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import orjson

from states.notifications import CalendarItem, Notification, Recipient

__all__ = ["decode_notification", "notification_json"]


def _json_default(value: Any) -> Any:
    """For ``json.dumps``: a dataclass as a dict of its fields (as ``dataclasses.asdict`` gives, without its
    deep copy of every value), anything else as ``str``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return str(value)


def notification_json(notification: Any) -> str:
    """The outbox row's JSON of a notification (the dataclass as an object, nested ones too)."""
    try:
        return orjson.dumps(notification, default=str).decode("utf-8")  # ~10x the json module
    except TypeError:
        return json.dumps(notification, default=_json_default)


def decode_notification(text: str) -> Notification:
    """A ``Notification`` from the JSON in ``outbox.notification``."""
    data = json.loads(text)
    cal = data.get("calendar")
    return Notification(
        key=str(data["key"]), request_id=int(data["request_id"]), template=str(data["template"]),
        to=tuple(_recipient(r) for r in data.get("to") or ()), subject=str(data.get("subject") or ""),
        context=dict(data.get("context") or {}), calendar=_calendar(cal) if cal else None)


def _recipient(data: Any) -> Recipient:
    if isinstance(data, dict):
        return Recipient(name=str(data.get("name") or ""), email=str(data["email"]), role=str(data.get("role") or ""))
    if isinstance(data, list | tuple):  # a tuple dumped positionally
        return Recipient(*[str(x) for x in data])
    raise ValueError(f"cannot read a recipient from {data!r}")


def _calendar(cal: dict[str, Any]) -> CalendarItem:
    return CalendarItem(
        uid=str(cal["uid"]), kind=str(cal["kind"]), summary=str(cal["summary"]), start=str(cal["start"]),
        end=None if cal.get("end") is None else str(cal["end"]), description=str(cal.get("description") or ""),
        organizer=_recipient(cal["organizer"]) if cal.get("organizer") else None,
        attendees=tuple(_recipient(a) for a in cal.get("attendees") or ()),
        sequence=int(cal.get("sequence") or 0), method=str(cal.get("method") or "REQUEST"),
        location=str(cal.get("location") or ""))
