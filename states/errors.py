"""Domain errors. Each maps to one documented CLI exit code (see flows/cli/__init__.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from states.wording import with_article


class LdflowError(Exception):
    """Base class: an error a user can act on. Never shown as a traceback."""

    exit_code = 1


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(LdflowError):
    """Input that fails validation. Names every offending field."""

    exit_code = 2

    def __init__(self, errors: Sequence[FieldError], source: str = "") -> None:
        self.errors = list(errors)
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid input{where}: " + "; ".join(str(e) for e in self.errors))


class TransitionRefused(LdflowError):
    """A guard refused a trigger. ``missing`` lists every missing item at once."""

    exit_code = 3

    def __init__(self, trigger: str, state: str, missing: Sequence[str]) -> None:
        self.trigger = trigger
        self.state = state
        self.missing = list(missing)
        super().__init__(
            f"cannot {trigger} {with_article(state)} request; missing: " + "; ".join(self.missing)
        )


class InvalidTransition(TransitionRefused):
    """The lifecycle has no such move from the current state."""

    def __init__(self, trigger: str, state: str, allowed: Sequence[str]) -> None:
        self.allowed = list(allowed)
        hint = ", ".join(self.allowed) if self.allowed else "none (the request is closed)"
        if self.allowed == ["reopen"]:
            hint = "only reopen (the request is closed: re-open it, with a reason, to work on it again)"
        TransitionRefused.__init__(self, trigger, state, [f"'{trigger}' is not allowed from '{state}'"])
        self.args = (f"cannot {trigger} {with_article(state)} request: allowed from {state}: {hint}",)


class NotFound(LdflowError):
    exit_code = 4

    def __init__(self, what: str) -> None:
        super().__init__(f"not found: {what}")


class Conflict(LdflowError):
    """The request is not at the version the caller expected (optimistic version check).

    Versions only grow: an expected version above the request's own was never the request's (a
    wrong ``--if-version``), so the message says what it saw rather than blaming a concurrent
    change; an older one means someone changed the request since the caller looked."""

    exit_code = 5

    def __init__(self, request_id: int, expected: int, actual: int | None = None) -> None:
        self.request_id = request_id
        self.expected = expected
        self.actual = actual
        if actual is not None and expected > actual:
            message = (f"conflict: request {request_id} is at version {actual}, not {expected} (--if-version). "
                       "Reload it and try again.")
        else:
            now = f" (now version {actual})" if actual is not None else ""
            message = (f"conflict: request {request_id} changed concurrently; expected version {expected}{now}. "
                       "Reload it and try again.")
        super().__init__(message)
