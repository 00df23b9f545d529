"""Which reply counts: a plan approval, a survey answer, a result or a note by e-mail.

A reply acts (``Service.approve_plan``, ``record``, ``add_note`` as its sender) only when

1. our own receiving server's Authentication-Results (``LDFLOW_MAIL_AUTHSERV_IDS``) report no SPF,
   DKIM or DMARC ``fail`` for it (``connectors.email.authresults``; headers of other authserv-ids
   are ignored), and
2. it carries a reply code ldflow issued (``connectors.email.tokens``: in In-Reply-To/References,
   the plus-addressed To, or quoted in the body) **to the address it comes from**, and
3. for an approval, the code is the approval request's and that mail showed the plan waiting now;
   for a number, the code is a survey's, survey reminder's or result to-do's (its checkpoint).

A note (any other text) also counts without a code when the sender is one of the request's people
(requester, sponsor, stakeholders, plan owners) and nothing failed. Everything else is quarantined
with the reason and nothing is written; an approval that did not count sends the sponsor the
approval request again (once per waiting plan: not again while the newest request is a resend).

Mails sent before reply codes existed (Message-IDs ``sha256(key)``) carry none: a reply to one
is quarantined saying so (and an approval asks the sponsor again, with a mail that has a code).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.db.inbound import Handled, Quarantine
from connectors.email.authresults import SenderCheck
from connectors.email.inbound import InboundMessage
from connectors.email.replies import IssuedCode, RequestMatch, interpret_answers, interpret_reply, issued_codes
from connectors.email.tokens import parse_code
from connectors.ports import InboundStatus, Transaction
from flows.service import Service
from states.errors import LdflowError
from states.request import TrainingRequest
from states.revisions import awaiting_approval

__all__ = ["MailTrust", "ReplyHandler", "checkpoint_of"]

_ANSWERED_BY_NUMBER = ("survey", "survey_reminder", "checkpoint_reminder")


@dataclass(frozen=True)
class MailTrust:
    """What inbound mail is judged with: the reply-code key, our receiving server's authserv-ids, the
    sender domains whose mailed-in requests are acknowledged without an authenticated pass."""

    reply_key: bytes | None = None
    authserv_ids: tuple[str, ...] = ()
    trusted_domains: tuple[str, ...] = ()

    def may_acknowledge(self, sender: str, check: SenderCheck) -> bool:
        """Is a mailed-in request's acknowledgement (it quotes the text) sent to ``sender``?"""
        if check.failed:
            return False
        domain = sender.rpartition("@")[2].lower()
        return check.authenticated or any(domain == d or domain.endswith("." + d) for d in self.trusted_domains)


def checkpoint_of(request_id: int, outbox_key: str | None) -> str | None:
    """The checkpoint a survey, survey reminder or result to-do e-mail asked about, from its outbox key."""
    if not outbox_key:
        return None
    parts = outbox_key.split(":")
    if len(parts) > 1 and parts[1][:1] == "r" and parts[1][1:].isdigit():
        del parts[1]  # a re-opened request's mails: "<id>:r<N>:survey:…"
    # "<id>:survey:<item>:<offset>", "<id>:survey_reminder:<item>:<offset>:<n>", "<id>:checkpoint_reminder:…"
    if len(parts) >= 4 and parts[1] in _ANSWERED_BY_NUMBER:
        return f"{request_id}:{parts[2]}:{parts[3]}"
    return None


def _people(request: TrainingRequest) -> set[str]:
    intake = request.intake
    found = {intake.requester.email, intake.sponsor.email, *(p.email for p in intake.stakeholders)}
    if request.plan is not None:
        found.update(item.owner.email for item in request.plan.items)
    return {e.lower() for e in found}


class ReplyHandler:
    """One reply, judged and acted on (or quarantined) inside the ingest transaction."""

    def __init__(self, service: Service, tx: Transaction, trust: MailTrust, actor: str) -> None:
        self.service, self.tx, self.trust, self.actor = service, tx, trust, actor

    def __call__(self, message: InboundMessage, match: RequestMatch | None, codes: list[str],
                 check: SenderCheck) -> Handled:
        sender = message.from_address.lower()
        intent = interpret_reply(message.body_text)
        key = self.trust.reply_key
        issued = issued_codes(codes, self.tx.outbox.for_request, key) if key is not None else []
        mine = [i for i in issued if i.recipient.lower() == sender]
        request_id = self._request_of(mine or issued, match, codes)
        problem = self._distrust(check, codes, issued, mine, match, sender)
        if problem is None:
            return self._act(intent.kind, self._best(mine, intent.kind), message, intent.value, intent.note)
        if intent.kind == "note" and not check.failed and request_id is not None:
            request = self._request(request_id)
            if request is not None and sender in _people(request):
                return self._note(request_id, intent.note or message.subject, sender, " (no reply code)")
        if intent.kind == "approve" and request_id is not None:
            return self._ask_again(request_id, problem)
        raise Quarantine(f"request {request_id}: {problem}" if request_id is not None else problem)

    # --- judging -----------------------------------------------------------------------------------

    @staticmethod
    def _request_of(issued: list[IssuedCode], match: RequestMatch | None, codes: list[str]) -> int | None:
        if issued:
            return issued[0].row.request_id
        if match is not None:
            return match.request_id
        return next((rid for rid in map(parse_code, codes) if rid is not None), None)

    def _distrust(self, check: SenderCheck, codes: list[str], issued: list[IssuedCode], mine: list[IssuedCode],
                  match: RequestMatch | None, sender: str) -> str | None:
        """Why the reply cannot count, or None."""
        if check.failed:
            return "our mail server's Authentication-Results report " + "; ".join(check.failures)
        if self.trust.reply_key is None:
            return "reply codes cannot be checked here (no key)"
        if not codes:
            if match is not None and match.by == "thread":
                return ("it answers a mail sent before reply codes were introduced, and carries none; "
                        "only a reply to a mail with a reply code counts")
            return "it carries no reply code (a [ldflow #N] subject tag alone does not show who wrote it)"
        if not issued:
            return "its reply code is not one ldflow issued"
        if not mine:
            return f"the reply code was issued to {issued[0].recipient}, and the reply comes from {sender}"
        return None

    @staticmethod
    def _best(mine: list[IssuedCode], kind: str) -> IssuedCode:
        wanted = ("plan_approval_request",) if kind == "approve" else _ANSWERED_BY_NUMBER
        return next((i for i in mine if i.row.template in wanted), mine[0])

    def _request(self, request_id: int) -> TrainingRequest | None:
        try:
            return self.service.show(request_id)
        except LdflowError:
            return None

    # --- acting ------------------------------------------------------------------------------------

    def _act(self, kind: str, issued: IssuedCode, message: InboundMessage, value: object, note: str) -> Handled:
        row, sender = issued.row, issued.recipient  # the address the code was issued to: the sender's
        request_id = row.request_id
        try:
            if kind == "approve":
                if row.template != "plan_approval_request":
                    raise Quarantine(f"request {request_id}: an approval in reply to a {row.template} mail; a plan "
                                     "is approved in reply to its approval request")
                request = self.service.show(request_id)
                waiting = request.plan_draft.plan if request.plan_draft is not None else request.plan
                if (awaiting_approval(request) and waiting is not None
                        and row.notification.context.get("plan") != waiting.model_dump(mode="json")):
                    return self._ask_again(request_id, "it answers an approval request for a plan that is no "
                                                       "longer the one waiting")
                self.service.approve_plan(request_id, {"approver": sender, "comment": note[:2000]}, sender)
            elif kind == "survey_result":
                key = checkpoint_of(request_id, row.key)
                if key is None or value is None:
                    raise Quarantine(f"request {request_id}: a number ({value}) in a reply to a {row.template} "
                                     "mail, which does not ask for one")
                if row.template == "checkpoint_reminder":  # the owner's to-do: the result itself
                    self.service.record(request_id, key, {"value": float(str(value)), "note": note[:2000]}, sender)
                else:
                    self._answer(request_id, key, row.notification.context, message, sender,
                                 float(str(value)), note)
            else:
                return self._note(request_id, note or message.subject, sender, "")
        except (LdflowError, ValueError) as exc:
            raise Quarantine(f"request {request_id}: {exc}") from None
        return Handled(InboundStatus.PROCESSED, request_id)

    def _answer(self, request_id: int, key: str, context: dict[str, object], message: InboundMessage,
                sender: str, value: float, note: str) -> None:
        """A survey answer (each of the mail's questions, one number a line), as the respondent, by reply;
        one from someone not asked is refused by the domain and quarantined with that reason."""
        questions = context.get("questions")
        keys = [str(q["checkpoint"]["key"]) for q in questions if isinstance(q, dict)] \
            if isinstance(questions, list) and len(questions) > 1 else [key]
        answers = interpret_answers(message.body_text, len(keys)) if len(keys) > 1 else [(value, note)]
        for checkpoint, (number, text) in zip(keys, answers, strict=False):
            self.service.answer(request_id, checkpoint, sender, {"value": float(str(number)), "note": text[:2000]},
                                sender, via="reply")

    def _note(self, request_id: int, text: str, sender: str, how: str) -> Handled:
        try:
            self.service.add_note(request_id, text, sender, source=f"e-mail from {sender}{how}")
        except LdflowError as exc:
            raise Quarantine(f"request {request_id}: {exc}") from None
        return Handled(InboundStatus.PROCESSED, request_id)

    def _ask_again(self, request_id: int, problem: str) -> Handled:
        """Quarantined; the sponsor is sent the approval request again, unless the newest one is a resend."""
        reason = f"request {request_id}: a reply approving the plan did not count: {problem}"
        request = self._request(request_id)
        if request is None or not awaiting_approval(request):
            raise Quarantine(reason)
        rows = self.tx.outbox.for_request(request_id, ("plan_approval_request",))
        if rows and rows[-1].notification.context.get("asked_again"):
            raise Quarantine(f"{reason} (the approval request was sent to the sponsor again already)")
        try:
            self.service.ask_for_approval_again(request_id, self.actor,
                                                f"A reply by e-mail approving the plan did not count: {problem}.")
        except LdflowError:
            raise Quarantine(reason) from None
        return Handled(InboundStatus.QUARANTINED, request_id,
                       f"{reason}; the approval request was sent to the sponsor again")
