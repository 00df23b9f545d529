"""The machinery of the domain events (:mod:`states.events`): ``Fact`` and ``TransitionEvent``, their
``payload`` (the JSON the audit chain hashes) and ``from_payload``; optional fields left out of the
payload while they hold their default, so older rows read back the same."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeAlias

from states.lifecycle import DESTINATION, EVENT_OF, State, Trigger

Json: TypeAlias = dict[str, Any]
_OMIT: Final = "omit_if"  # field metadata: leave the key out of the payload when the value is this
_NEVER: Final = object()  # no _OMIT: the key is always there


def optional(default: Any) -> Any:
    """A field whose key the payload leaves out while it holds ``default``."""
    return field(default=default, metadata={_OMIT: default})


class _Payload:
    """``payload`` and ``from_payload`` for the event dataclasses below."""

    type: ClassVar[str]
    _ENVELOPE: ClassVar[frozenset[str]] = frozenset()

    @property
    def payload(self) -> Json:
        """The fields as the audit row's JSON data (tuples as lists; optional keys only when set)."""
        out: Json = {}
        for name, omit, _is_tuple in _spec(type(self)):
            value = getattr(self, name)
            if omit is not _NEVER and value == omit:
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def _fields_from(cls, payload: Json) -> Json:
        known = {name: is_tuple for name, _omit, is_tuple in _spec(cls)}
        unknown = set(payload) - set(known)
        if unknown:
            raise TypeError(f"{cls.type}: unexpected payload keys {sorted(unknown)}")
        return {k: tuple(v) if known[k] and isinstance(v, list) else v for k, v in payload.items()}


_SPECS: dict[type, tuple[tuple[str, Any, bool], ...]] = {}


def _spec(cls: type[_Payload]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, omit-if value or _NEVER, is a tuple) of each payload field of an event class (cached)."""
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = tuple(
            (f.name, f.metadata.get(_OMIT, _NEVER), str(f.type).startswith("tuple"))
            for f in dataclasses.fields(cls) if f.name not in cls._ENVELOPE)  # type: ignore[arg-type]
    return spec


@dataclass(frozen=True, kw_only=True)
class Fact(_Payload):
    """An event that changes no state. ``via``: the channel it came through (``web``, ``cli``, ``link``,
    ``reply``…; left out of the payload when not said, as in every event recorded before it existed)."""

    trigger: ClassVar[None] = None
    from_state: ClassVar[None] = None
    to_state: ClassVar[None] = None

    via: str = optional("")

    @classmethod
    def from_payload(cls, payload: Json) -> Fact:
        return cls(**cls._fields_from(payload))


@dataclass(frozen=True, kw_only=True)
class TransitionEvent(_Payload):
    """An event that moved the request along the lifecycle (its ``trigger`` fired from ``from_state``)."""

    trigger: ClassVar[Trigger]
    to_state: ClassVar[State]
    _ENVELOPE: ClassVar[frozenset[str]] = frozenset({"from_state"})

    from_state: State
    via: str = optional("")  # the channel, as on Fact

    def __init_subclass__(cls, trigger: Trigger | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if trigger is not None:
            cls.trigger, cls.type, cls.to_state = trigger, EVENT_OF[trigger], DESTINATION[trigger]

    @classmethod
    def from_payload(cls, payload: Json, from_state: str) -> TransitionEvent:
        return cls(from_state=State(from_state), **cls._fields_from(payload))


DomainEvent: TypeAlias = Fact | TransitionEvent
