"""The pipeline's steps, plain Python over the :class:`flows.bootstrap.App`: what the Prefect tasks run.

=====================  ===========================================================================
``take_in``            new requests from the drop folder (and the inbox when IMAP is configured),
                       replies acted on (plan approvals, survey answers, notes)
``fire_followups``     due measurement checkpoints queue their survey and the owner's reminder (far
                       too late ones are flagged ``needs_review``); unanswered surveys get reminders
``advance_requests``   delivered requests whose checkpoints are all closed are measured
``queue_digest``       the daily attention digest (stalled checkpoints, SLA breaches) to the L&D
                       owners and the ops address, once per recipient and day (``flows.attention``)
``send_outbox``        the outbox relay sends what the outbox holds
``publish_events``     the event outbox's Prefect events go to the Prefect API, in batches
``checkpoint_audit``   a signed checkpoint of every audit chain head (one aggregate query when
                       nothing changed since the latest)
=====================  ===========================================================================

:func:`run_in_process` runs a flow's steps in this process without Prefect (``ldflow run``
without ``PREFECT_API_URL``); ``flows/pipeline.py`` runs the same steps as Prefect tasks.

Every step is an idempotent reconciler that looks at what is due *now* and does it in bounded
batches: run twice, it changes nothing the second time; run side by side, each piece of work is
done once (checkpoint status + optimistic version check, outbox claims with a lease).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from functools import partial
from typing import TYPE_CHECKING, Any

from connectors.calendar.ics import with_organizer
from connectors.db.inbound import InboundSource, ingest
from connectors.email.pdf import attachments_for
from connectors.email.render import render
from connectors.email.tokens import KEY_NAME
from connectors.keys import secret_key
from connectors.ports import OutboxRow, Transaction
from flows import alerts, events
from flows.intake import InboundHandler, MailTrust
from flows.links import Links
from flows.relay import Outcome, OutcomeHook, relay_outbox
from flows.users import with_sign_in_url
from states.errors import Conflict, LdflowError, TransitionRefused
from states.events import EmailBounced, EmailSent
from states.notifications import CalendarItem, Notification, Recipient

if TYPE_CHECKING:
    from flows.bootstrap import App

#: Who the pipeline acts as in the history.
ACTOR = "ldflow-pipeline"


@dataclass
class StepSummary:
    """What one step did; ``errors`` are per-item problems that did not stop the step."""

    step: str
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "counts": dict(self.counts), "errors": self.errors[:50],
                "errors_total": len(self.errors)}


def _summary(step: str, *names: str) -> StepSummary:
    return StepSummary(step, dict.fromkeys(names, 0))


# --- intake --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _opened(source: InboundSource) -> Iterator[InboundSource]:
    """The source, connected for the run when it keeps a connection (IMAP); closing it never fails the step."""
    if not isinstance(source, contextlib.AbstractContextManager):
        yield source
        return
    try:
        source.__enter__()
        yield source
    finally:
        with contextlib.suppress(Exception):
            source.__exit__(None, None, None)


def take_in(app: App, batch: int = 200) -> StepSummary:
    """New requests from the drop folder (JSON/YAML intakes, e-mails), and replies (plan approvals,
    survey answers, notes) from it and from the IMAP inbox when configured. Each item is recorded
    in the same transaction as the change it causes, so it is taken in once; what cannot be acted
    on is quarantined with the reason, never dropped."""
    summary = _summary("intake", "processed", "quarantined", "skipped")
    s = app.settings
    trust = MailTrust(reply_key=secret_key(s.keys_dir, KEY_NAME), authserv_ids=s.authserv_ids,
                      trusted_domains=s.trusted_sender_domains)
    handler = InboundHandler(app.service, ACTOR, trust)
    now = app.now()
    for source in app.sources():
        try:
            with _opened(source):
                result = ingest(app.uow, source, handler, now, quarantine_dir=app.settings.home / "quarantine",
                                limit=batch)
        except Exception as exc:  # an unreachable inbox must not stop the rest of the pass
            summary.errors.append(f"{source.source}: {type(exc).__name__}: {exc}")
            continue
        summary.add("processed", result.processed)
        summary.add("quarantined", result.quarantined)
        summary.add("skipped", result.skipped)
        summary.errors.extend(result.reasons)
        if result.aborted:
            summary.errors.append(f"{source.source}: stopped early: {result.aborted}")
    return summary


# --- follow-ups and measuring --------------------------------------------------------------------------

def fire_followups(app: App, batch: int = 500, lateness_days: int | None = None,
                   reminder_after_days: int | None = None, max_reminders: int | None = None,
                   close_after_days: int | None = None) -> StepSummary:
    """Queue every due checkpoint's survey and owner reminder (once); flag the far-too-late ones;
    remind unanswered surveys; at the end of a survey's response window close it with its answers, as
    missed below its minimum, or flag it ``needs_review`` without any (states.stalls); remind the owners of
    companion pieces and action steps before their dates (once). Settings give the defaults (14 days,
    3 days, 2 reminders, the window's end at least 7 days after the last one)."""
    s = app.settings
    lateness = timedelta(days=s.lateness_days if lateness_days is None else lateness_days)
    after = timedelta(days=s.reminder_after_days if reminder_after_days is None else reminder_after_days)
    most = s.max_reminders if max_reminders is None else max_reminders
    close_after = timedelta(days=s.close_after_days if close_after_days is None else close_after_days)
    summary = _summary("followups", "sent", "flagged", "reminded", "stalled", "owners_reminded", "conflicts")
    total = app.store.count_due_checkpoints(app.now())
    app.report_progress("followups", 0, total)
    # Rounds are bounded: a run that keeps losing conflicts (another run is doing the same work)
    # or meets rows it cannot act on stops, and the next run takes what is left.
    rounds = total // batch + 10
    for _ in range(rounds):
        result = app.service.send_due_checkpoints(ACTOR, lateness, limit=batch)
        for name in ("sent", "flagged", "conflicts"):
            summary.add(name, result.get(name, 0))
        app.report_progress("followups", summary.counts["sent"] + summary.counts["flagged"], total)
        progressed = result["sent"] + result["flagged"] + result["conflicts"] > 0
        if result["checked"] < batch or not progressed:
            break
    if most > 0:
        while True:
            reminded = app.service.send_reminders(ACTOR, after, most, limit=batch)
            summary.add("reminded", reminded)
            if reminded < batch:
                break
    while True:
        stalled = app.service.flag_unanswered(ACTOR, close_after, most, limit=batch)
        summary.add("stalled", stalled)
        if stalled < batch:
            break
    # the owners of companion pieces and action steps, LDFLOW_OWNER_REMINDER_DAYS before the date (once)
    owners = app.service.remind_owners(ACTOR, timedelta(days=s.owner_reminder_days), limit=batch)
    summary.add("owners_reminded", owners["reminded"])
    summary.add("conflicts", owners["conflicts"])
    return summary


def advance_requests(app: App, batch: int = 500) -> StepSummary:
    """Measure every delivered request whose checkpoints are all closed (as ``ldflow-pipeline``).

    Acknowledging is left to a person: it needs their recap, action plan and thanks.
    """
    summary = _summary("advance", "measured")
    last = 0
    while True:
        ids: list[int] = app.store.measurable_requests(last, batch)
        if not ids:
            break
        for request_id in ids:
            try:
                app.service.measure(request_id, ACTOR)
                summary.add("measured")
            except Conflict:
                summary.add("conflicts")  # changed meanwhile: the next run looks again
            except TransitionRefused as exc:  # measured by someone else, or reopened meanwhile
                summary.add("skipped")
                summary.errors.append(f"request {request_id}: {exc}")
        app.report_progress("advance", summary.counts["measured"], None)
        last = ids[-1]
    return summary


def queue_digest(app: App) -> StepSummary:
    """Queue today's attention digests (``flows.attention``): once per recipient and day, so a second
    pass the same day queues nothing; sent by ``send_outbox`` in the same pass."""
    from flows import attention as attention_list  # the list reads the SLA policy: only this step needs it

    summary = _summary("digest", "queued", "already", "items")
    try:
        counts = attention_list.queue_digests(app)
    except LdflowError as exc:  # a bad LDFLOW_SLA_POLICY: the rest of the pass still runs
        summary.errors.append(f"{type(exc).__name__}: {exc}")
        return summary
    for name, value in counts.items():
        summary.add(name, value)
    return summary


# --- dispatch ------------------------------------------------------------------------------------------

class _CalendarForRun:
    """The CalDAV publisher for one dispatch run: makes sure the calendar collection exists before
    the first item is published (one PROPFIND per run, none when nothing has a calendar item), so
    a calendar outage only delays the rows that carry a calendar item (the relay retries them)."""

    def __init__(self, publisher: Any, organizer: Recipient) -> None:
        self.publisher = publisher
        self.organizer = organizer
        self.ready = False

    def publish(self, item: CalendarItem) -> Any:
        if not self.ready:
            self.publisher.ensure_calendar()
            self.ready = True
        return self.publisher.publish(with_organizer(item, self.organizer))


def _history_hook(app: App) -> OutcomeHook:
    """Record "email sent" / "email bounced" in the request's history, in the relay's transaction."""
    kinds: dict[str, type[EmailSent] | type[EmailBounced]] = {"sent": EmailSent, "failed": EmailBounced}

    def hook(tx: Transaction, row: OutboxRow, outcome: Outcome, detail: str) -> None:
        kind = kinds.get(outcome)
        if kind is None or not row.request_id:  # 0: a mail about no request (a sign-in link)
            return
        event = kind(key=row.key, template=row.template, to=tuple(r.email for r in row.notification.to),
                     detail=detail[:500])
        tx.record_events(row.request_id, [event], ACTOR, app.now())

    return hook


def relay_owner() -> str:
    """Who holds an outbox lease: host and process, so a lease names a real process."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def send_outbox(app: App, batch: int = 100, lease_seconds: int = 300, max_seconds: float = 1200,
                linger_seconds: float = 0) -> StepSummary:
    """Send what the outbox holds, in claimed batches, through SMTP or the outbox folder.

    A run claims no new batch after ``max_seconds``: a huge backlog is worked off by successive
    runs, and no run holds the task's time budget hostage. With ``linger_seconds`` the run stays
    once the outbox is empty, looking again every second, and ends after that long without work:
    mail queued meanwhile goes out within a second, from this process, instead of waiting for a
    new flow run (a process start on a process worker)."""
    s = app.settings
    render_fn = partial(render, mail_from=s.mail_from, domain=s.mail_from.rsplit("@", 1)[-1],
                        templates_dir=s.templates_dir, organizer=s.organizer_recipient,
                        reply_key=secret_key(s.keys_dir, KEY_NAME), plus_addressing=s.reply_plus_addressing)
    calendar = _CalendarForRun(app.calendar, s.organizer_recipient) if app.calendar is not None else None
    summary = _summary("dispatch", "sent", "retried", "failed", "unknown")
    links = Links(s)  # the recipients' signed links, issued at each row's queue time
    try:
        _drain(app, summary, render_fn, calendar, links, batch, lease_seconds, max_seconds, linger_seconds)
        # what is stuck (mail unknown/failed, flow runs failed or crashed) is told to the ops
        # address once; the alerts go in this run
        raised, problems = alerts.raise_alerts(app)
        summary.errors.extend(problems)
        if raised:
            summary.add("alerts", raised)
            _drain(app, summary, render_fn, calendar, links, batch, lease_seconds, max_seconds)
    finally:  # the SMTP connection the batches shared
        close = getattr(app.sender, "close", None)
        if close is not None:
            close()
    return summary


def _drain(app: App, summary: StepSummary, render_fn: Callable[..., EmailMessage],
           calendar: _CalendarForRun | None, links: Links, batch: int, lease_seconds: int,
           max_seconds: float, linger_seconds: float = 0) -> None:
    """Claimed batches, one after the other, while rows are due (and for at most ``max_seconds``);
    then, given ``linger_seconds``, a look every second until that long has passed without work. While
    it lingers it publishes the event outbox every :data:`_PUBLISH_EVERY` seconds of idleness (its mails'
    events, and those of the writes meanwhile, reach Prefect then rather than when the run ends); after a
    failed publish it leaves them to the run's end, so a hung API costs one wait, not one per round."""
    s = app.settings
    owner = relay_owner()
    hook = _history_hook(app)
    started = time.monotonic()
    idle_since: float | None = None
    published_at: float | None = started
    while time.monotonic() - started < max_seconds:
        now = app.now()
        def render_now(n: Notification, now: datetime = now) -> EmailMessage:
            n = with_sign_in_url(s, n)  # a sign-in mail gets its signed link here
            return render_fn(n, now=now, attachments=attachments_for(n, templates_dir=s.templates_dir))

        result = relay_outbox(app.uow, app.sender, render_now, now, owner, batch=batch,
                              lease=timedelta(seconds=lease_seconds), on_outcome=hook, calendar=calendar,
                              prepare=links.for_row)
        for name in ("claimed", "sent", "retried", "failed", "unknown", "lost_lease", "published"):
            summary.add(name, getattr(result, name))
        summary.errors.extend(result.errors)
        app.report_progress("dispatch", summary.counts["sent"], None)
        if result.deferred:  # the server is unreachable: the step ends, the rows wait for the next pass
            summary.add("deferred", result.deferred)
            break
        if result.claimed >= batch:
            idle_since = None
            continue
        if result.claimed:
            idle_since = None
        idle_since = idle_since if idle_since is not None else time.monotonic()
        if time.monotonic() - idle_since >= linger_seconds:
            break
        if published_at is not None and time.monotonic() - published_at >= _PUBLISH_EVERY:
            events_summary = publish_events(app)
            summary.add("events", events_summary.counts["published"])
            published_at = None if events_summary.errors else time.monotonic()
            summary.errors.extend(events_summary.errors)
        time.sleep(_LINGER_POLL)


#: How often a lingering dispatch looks at the outbox again (seconds).
_LINGER_POLL = 1.0
#: How often a lingering dispatch publishes the event outbox while idle (seconds).
_PUBLISH_EVERY = 5.0


# --- Prefect events --------------------------------------------------------------------------------------

def publish_events(app: App, batch: int = 200) -> StepSummary:
    """Publish the event outbox to the Prefect API (see :mod:`flows.events`): what was accepted is
    marked published; a refused or hung API leaves the rest pending for the next run (recorded as
    a problem of the step, never a failure of the run). Without an API configured the events wait."""
    summary = _summary("events", "published")
    result = events.publish(app.uow.events, batch=batch)
    summary.add("published", result.published)
    if result.pruned:
        summary.add("pruned", result.pruned)
    if result.error:
        summary.add("waiting", result.pending)
        summary.errors.append(f"Prefect API: {result.error} ({result.pending} event(s) wait for the next run)")
    return summary


def checkpoint_audit(app: App) -> StepSummary:
    """Sign the heads of every audit chain (``ldflow audit checkpoint``); cheap when nothing changed. A
    missing or unusable key is a problem of the step, recorded, never a failure of the run."""
    summary = _summary("audit", "signed")
    try:
        if app.store.public_key() is None:  # a store without a key (the in-memory fakes): nothing to sign with
            return summary
        cp = app.service.checkpoint()
    except Exception as exc:  # noqa: BLE001 - the pass goes on; the operator sees it in the summary
        summary.errors.append(f"audit checkpoint: {type(exc).__name__}: {exc}")
        return summary
    summary.add("signed", 1 if cp is not None else 0)
    return summary


def attention(app: App, done: list[dict[str, Any]], limit: int = 20) -> list[str]:
    """What needs a person after a pass, one line each: the steps' problems, mail whose outcome is
    unknown or that failed for good, quarantined inbound items, checkpoints flagged too late."""
    from connectors.ports import OutboxStatus

    lines = [f"{s['step']}: {error}" for s in done for error in s["errors"][:10]]
    flagged = sum(s["counts"].get("flagged", 0) + s["counts"].get("stalled", 0)
                  for s in done if s["step"] == "followups")
    if flagged:
        lines.append(f"{flagged} checkpoint(s) flagged needs_review (too late to send, or unanswered after the "
                     "last reminder): record a result (`ldflow record`) or close it as missed; `ldflow attention`")
    for status in (OutboxStatus.UNKNOWN, OutboxStatus.FAILED):
        rows = app.uow.outbox.rows(status, limit=limit)
        for row in rows:
            lines.append(f"mail `{row.key}` is {status.value}: {row.last_error or 'no detail'} "
                         f"(`ldflow outbox retry --key {row.key}`)")
    for item in app.uow.inbound.quarantined(limit=limit):
        lines.append(f"inbound {item.source} {item.message_id or item.raw_path or item.id} quarantined: "
                     f"{item.reason or 'no reason recorded'}")
    return lines + attention_items(app, limit)


def attention_items(app: App, limit: int = 20) -> list[str]:
    """The attention list (``flows.attention``: needs-review checkpoints, SLA clocks breached or near), one
    Markdown line each, linked to the request's page in the web app; the first ``limit`` and a link to the
    board's attention filter for the rest. Titles are the requesters' words: escaped, never Markdown."""
    from flows.attention import attention_list

    try:
        items = attention_list(app)
    except Exception as exc:  # a bad SLA policy file: said, the pass's other lines still published
        return [f"attention list unavailable: {type(exc).__name__}: {exc}"]
    web = app.settings.web_url
    lines = [f"[request #{i.request_id}: {_md(i.title)}]({web}/requests/{i.request_id}) — {_md(i.text)}"
             for i in items[:limit]]
    if len(items) > limit:
        lines.append(f"[{len(items) - limit} more on the board]({web}/?attention=1)")
    return lines


def _md(text: str) -> str:
    """``text`` shown as itself in Markdown: its punctuation escaped, no HTML, on one line."""
    text = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + c if c in "\\`*_[]()#|~" else c for c in text)


# --- a flow without Prefect ------------------------------------------------------------------------------

def run_in_process(app: App, flow: str, batch: int | None = None) -> dict[str, Any]:
    """A flow's steps in this process, in the order of its Prefect flow, without Prefect
    (``ldflow run`` when no Prefect API is configured): the same summaries the flows return (no
    task retries: a failed pass is simply run again, every step being idempotent)."""
    steps: dict[str, Any] = {
        "intake": lambda: take_in(app, batch or 200),
        "followups": lambda: fire_followups(app, batch or 500),
        "advance": lambda: advance_requests(app, batch or 500),
        "digest": lambda: queue_digest(app),
        "dispatch": lambda: send_outbox(app, batch or 100),  # no lingering: a pass ends when its work is done
    }
    if flow != "pipeline":  # as the Prefect flow: its step's summary; the events are published after it
        summary: dict[str, Any] = steps[flow]().as_dict()
        publish_events(app)
        return summary
    done = [step().as_dict() for step in steps.values()]
    done.append(checkpoint_audit(app).as_dict())
    done.append(publish_events(app).as_dict())
    return {"steps": done, "errors_total": sum(s["errors_total"] for s in done)}
