"""What the people outside L&D do through their signed links: the application's commands for the
link pages (``flows/web/links.py``).

Each action opens one write transaction (``uow.transaction()``): it reads the link
(``flows.links``), refuses a used single-use link, records the use (``tx.links``) and runs the
command through the service in that transaction (``service.within(tx)``), as done by the person,
``via`` ``link``. The use and the action commit together; when the command refuses (or the link was
used meanwhile), neither is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from connectors.ports import LinkUse, Transaction
from flows.links import Link, Links, LinkStale, LinkUsed, Purpose, plan_digest
from flows.service import Service
from states import lifecycle, responses
from states.checkpoints import Checkpoint, CheckpointStatus
from states.errors import FieldError, InvalidInput
from states.lifecycle import Command
from states.models import PlanItem
from states.request import TrainingRequest

if TYPE_CHECKING:
    from flows.bootstrap import App

_STALE_PLAN = ("The plan this link was sent for has changed or has been decided already. The newest mail "
               "from the L&D team has the link to the plan as it stands.")


@dataclass(frozen=True)
class Opened:
    """A link that may be used now, with its request (and its checkpoint and plan item, if any)."""

    link: Link
    request: TrainingRequest
    checkpoint: Checkpoint | None = None
    item: PlanItem | None = None
    uses: int = 0


def _still_open(request: TrainingRequest, checkpoint: Checkpoint, purpose: Purpose) -> None:
    """A survey can be answered (or its answer changed) while results may be recorded and the
    checkpoint is open or answered; a result link while its checkpoint is open (410 otherwise)."""
    if not lifecycle.allows(Command.RECORD_RESULT, request.state):
        raise LinkStale("The follow-up of this request is closed; thank you all the same.")
    answered = checkpoint.status == CheckpointStatus.CLOSED and checkpoint.value is not None
    if checkpoint.closed and not (purpose == Purpose.SURVEY and answered):
        raise LinkStale(f"This checkpoint is closed already ({checkpoint.status.value}); nothing more is needed.")


class LinkResponses:
    """The link pages' commands and reads over one ``App``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.links = Links(app.settings)

    def _service(self, tx: Transaction) -> Service:
        return self.app.service.via("link").within(tx)

    def _open(self, read: Callable[[int], TrainingRequest], uses: Callable[[str], list[LinkUse]],
              token: str, purpose: Purpose, request_id: int) -> Opened:
        link = self.links.read(token, purpose, request_id, self.app.now())
        found = uses(link.id)
        if link.single_use and found:
            raise LinkUsed(f"It was used on {found[0].used_at:%d %B %Y at %H:%M} UTC, and a link like this works "
                           "once: what you did then stands. If something needs changing, reply to our mail.")
        request = read(request_id)
        if purpose == Purpose.PLAN_APPROVAL:
            pending = responses.pending_plan(request)
            if pending is None or pending[0] != link.version or plan_digest(pending[1]) != link.plan:
                raise LinkStale(_STALE_PLAN)
        checkpoint = item = None
        if link.checkpoint is not None:
            checkpoint = request.checkpoint(link.checkpoint)
            if request.plan is not None:
                item = next((i for i in request.plan.items if i.id == checkpoint.item_id), None)
            _still_open(request, checkpoint, purpose)
        return Opened(link, request, checkpoint, item, len(found))

    def open(self, token: str, purpose: Purpose, request_id: int) -> Opened:
        """The link and what its page shows; a ``LinkRefused`` when it cannot be used."""
        return self._open(self.app.store.get, self.app.uow.links.uses, token, purpose, request_id)

    def _act(self, token: str, purpose: Purpose, request_id: int, action: str,
             command: Callable[[Service, Opened], TrainingRequest]) -> TrainingRequest:
        with self.app.uow.transaction() as tx:
            opened = self._open(tx.get, tx.links.uses, token, purpose, request_id)
            link = opened.link
            use = LinkUse(link_id=link.id, purpose=link.purpose.value, request_id=link.request_id,
                          person=link.person, action=action, used_at=self.app.now())
            if not tx.links.record(use, once=link.single_use):
                raise LinkUsed("It was used a moment ago; a link like this works once.")
            return command(self._service(tx), opened)

    # --- the sponsor -------------------------------------------------------------------------------

    def approve(self, token: str, request_id: int, comment: str = "") -> TrainingRequest:
        """The sponsor approves the plan version the link was sent for."""
        def run(service: Service, o: Opened) -> TrainingRequest:
            # the approver is the person the link was sent to: a sponsor replaced since is refused
            return service.approve_plan(request_id, {"approver": o.link.person, "comment": comment.strip()},
                                        o.link.actor, source="link")
        return self._act(token, Purpose.PLAN_APPROVAL, request_id, "approved", run)

    def ask_changes(self, token: str, request_id: int, comment: str) -> TrainingRequest:
        """The sponsor asks for changes to that plan version; the plan's owners are told."""
        if not comment.strip():
            raise InvalidInput([FieldError("comment", "say what should change in the plan")])

        def run(service: Service, o: Opened) -> TrainingRequest:
            return service.request_plan_changes(request_id, o.link.version or 1, comment, o.link.person,
                                                o.link.actor)
        return self._act(token, Purpose.PLAN_APPROVAL, request_id, "asked_changes", run)

    # --- a respondent ------------------------------------------------------------------------------

    def answer(self, token: str, request_id: int, data: dict[str, Any]) -> TrainingRequest:
        """A survey answer (``value``, ``note``), or a changed one while the survey is open."""
        def run(service: Service, o: Opened) -> TrainingRequest:
            assert o.checkpoint is not None
            return service.answer(request_id, o.checkpoint.key, o.link.person, data, o.link.actor, via="link",
                                  source="link")
        return self._act(token, Purpose.SURVEY, request_id, "answered", run)

    # --- an owner ----------------------------------------------------------------------------------

    def record_result(self, token: str, request_id: int, value: float | None, source: str,
                      measured_on: date | None, note: str = "") -> TrainingRequest:
        """The owner records the checkpoint's value, where it came from and when it was measured."""
        errors = []
        if value is None:
            errors.append(FieldError("value", "give the result as a number"))
        if not source.strip():
            errors.append(FieldError("source", "say where the number comes from (a report, a system)"))
        if measured_on is None:
            errors.append(FieldError("measured_on", "give the date the number is from"))
        elif measured_on > self.app.now().date():
            errors.append(FieldError("measured_on", "the date cannot be in the future"))
        if errors:
            raise InvalidInput(errors)
        assert measured_on is not None
        text = f"source: {source.strip()}, measured on {measured_on.isoformat()}" + (
            f"; {note.strip()}" if note.strip() else "")
        return self._result(token, request_id, {"value": value, "note": text}, "recorded")

    def close_missed(self, token: str, request_id: int, reason: str) -> TrainingRequest:
        """The owner closes the checkpoint as missed, with the reason."""
        if not reason.strip():
            raise InvalidInput([FieldError("missed_reason", "say why the result cannot be measured")])
        return self._result(token, request_id, {"missed_reason": reason.strip()}, "closed_missed")

    def _result(self, token: str, request_id: int, data: dict[str, Any], action: str) -> TrainingRequest:
        def run(service: Service, o: Opened) -> TrainingRequest:
            assert o.checkpoint is not None
            return service.record(request_id, o.checkpoint.key, data, o.link.actor, source="link")
        return self._act(token, Purpose.RESULT, request_id, action, run)



#: What the requester's status page says for each state: where the request is, what happens next.
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "received": ("We have received your request.",
                 "An L&D partner reads it and comes back to you with a few questions about the result you need."),
    "diagnosed": ("We have looked into what is behind the request.",
                  "We are agreeing with your sponsor how we will measure success, before anything is built."),
    "designed": ("The solution is being prepared.",
                 "You will hear from us when sessions are scheduled or the material is ready."),
    "redirected": ("We found a better way than training for this.",
                   "The person responsible for that change will be in touch; we still follow up on the result."),
    "delivered": ("It has been delivered.",
                  "Over the coming weeks we check how things are going with short questions to the people involved."),
    "measured": ("The follow-up measurements are in.",
                 "We are preparing a short report of the results for you and the stakeholders."),
    "acknowledged": ("The loop is closed: the results report has been sent.",
                     "Nothing more is needed from you. Thank you for working with us."),
    "declined": ("We will not take this request further.", "The mail we sent you says why."),
    "cancelled": ("The request was cancelled.", "The mail we sent you says why."),
}


def status_words(request: TrainingRequest) -> tuple[str, str]:
    """(where the request is, what happens next), in the requester's words; no internal details."""
    return STATUS_WORDS.get(request.state.value, ("We are working on it.", "We will keep you posted."))
