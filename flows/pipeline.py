"""The pipeline as Prefect flows: ``intake``, ``followups``, ``dispatch``, ``advance`` and ``pipeline``.

The database is the source of truth; every flow is an idempotent reconciler
that looks at what is due *now* and does it in batches, so running a flow
twice changes nothing the second time and several flow runs side by side do
each piece of work once (checkpoint status + optimistic version check,
outbox claims with a lease). A flow handles a batch: Prefect costs ~1 s per
flow run and ~10 ms per task here, so there is never a flow run or a task per
request or per transition.

=============  ===================================================================
``intake``     new requests from the drop folder (and replies from the inbox when
               IMAP is configured) become submitted requests
``followups``  due measurement checkpoints queue their survey and the owner's
               reminder (far-too-late ones are flagged ``needs_review``); unanswered
               surveys get reminders
``advance``    delivered requests whose checkpoints are all closed are measured
``dispatch``   the outbox relay sends what the outbox holds
``pipeline``   one pass of all four, in that order, as one flow run
=============  ===================================================================

``pipeline`` runs the four steps' tasks inside its own flow run instead of
starting four subflow runs: measured here, a subflow run costs ~1 s, a task
~10 ms, and a pass should cost Prefect about one flow run.

The step functions (``take_in``, ``fire_followups``, ``advance_requests``,
``send_outbox``) are plain Python over a :class:`Runtime`; the Prefect tasks
wrap them with retries and timeouts (connector I/O may fail transiently; a
retried step is safe because every step is idempotent).
"""

from __future__ import annotations

import os

# Before Prefect is imported: no telemetry calls from the embedded server (they
# also log "database is locked" tracebacks on a busy machine), and a patient
# start for the ephemeral server on a slow first run.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import contextlib  # noqa: E402
import logging  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from sqlalchemy import Engine, and_, exists, select  # noqa: E402

from connectors.db import schema  # noqa: E402
from connectors.db.engine import make_engine  # noqa: E402
from connectors.db.store import SqlStore  # noqa: E402
from connectors.db.tables import checkpoints, requests  # noqa: E402
from flows.clock import Clock, FileClock, SystemClock  # noqa: E402
from flows.events import EventingStore, instrument  # noqa: E402
from flows.service import Service  # noqa: E402
from flows.settings import Settings, load_settings  # noqa: E402
from states.errors import Conflict, LdflowError, TransitionRefused  # noqa: E402

ACTOR = "ldflow-pipeline"
log = logging.getLogger("ldflow.pipeline")

# --- runtime -----------------------------------------------------------------------------------------


@dataclass
class Runtime:
    """Settings, engine, store, service and clock for the flows of one process."""

    settings: Settings
    engine: Engine
    store: EventingStore
    service: Service
    clock: Clock

    def now(self) -> datetime:
        return self.clock.now().astimezone(UTC)


_runtimes: dict[tuple[str, str, str], Runtime] = {}
_runtimes_lock = threading.Lock()


def runtime(settings: Settings | None = None) -> Runtime:
    """The process-wide runtime for ``settings`` (default: from the environment), built once.

    Settings are read at call time, so a test or the demo can point the flows at
    another database through ``LDFLOW_HOME`` / ``LDFLOW_DATABASE_URL``.
    """
    settings = settings or load_settings()
    key = (settings.url, str(settings.simulated_clock or ""), settings.sqlite_synchronous)
    with _runtimes_lock:
        rt = _runtimes.get(key)
        if rt is None:
            if settings.url.startswith("sqlite:///"):
                Path(settings.url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            engine = make_engine(settings.url, synchronous=settings.sqlite_synchronous)
            schema.ensure_schema(engine)
            clock: Clock = FileClock(settings.simulated_clock) if settings.simulated_clock else SystemClock()
            store = instrument(SqlStore(engine))
            rt = Runtime(settings, engine, store, Service(store, clock), clock)
            _runtimes[key] = rt
        return rt


def reset_runtimes() -> None:
    """Forget the cached runtimes (and dispose their engines): tests and the demo switch databases."""
    with _runtimes_lock:
        for rt in _runtimes.values():
            rt.engine.dispose()
        _runtimes.clear()


# --- progress (for `ldflow run`) ---------------------------------------------------------------------

ProgressHook = Callable[[str, int, int | None], None]
_progress: ProgressHook | None = None


def set_progress(hook: ProgressHook | None) -> None:
    """Let a caller in the same process (the CLI) show progress: ``hook(step, done, total)``."""
    global _progress
    _progress = hook


def _report(step: str, done: int, total: int | None) -> None:
    if _progress is not None:
        with contextlib.suppress(Exception):  # a broken progress display must not break the pipeline
            _progress(step, done, total)


# --- the steps, plain Python ---------------------------------------------------------------------------


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


def _count_due(rt: Runtime, now: datetime) -> int:
    from sqlalchemy import func

    with rt.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(checkpoints).where(
            checkpoints.c.status == "scheduled", checkpoints.c.due_at <= now)).scalar_one())


def fire_followups(rt: Runtime, batch: int = 500, lateness_days: int | None = None,
                   reminder_after_days: int | None = None, max_reminders: int | None = None) -> StepSummary:
    """Queue every due checkpoint's survey and owner reminder (once); flag the far-too-late ones;
    remind unanswered surveys. Settings give the defaults (14 days, 3 days, 2 reminders)."""
    s = rt.settings
    lateness = timedelta(days=s.lateness_days if lateness_days is None else lateness_days)
    after = timedelta(days=s.reminder_after_days if reminder_after_days is None else reminder_after_days)
    most = s.max_reminders if max_reminders is None else max_reminders
    summary = StepSummary("followups")
    for name in ("sent", "flagged", "reminded", "conflicts"):
        summary.counts[name] = 0
    total = _count_due(rt, rt.now())
    _report("followups", 0, total)
    # Rounds are bounded: a run that keeps losing conflicts (another run is doing the same work)
    # or meets rows it cannot act on stops, and the next run takes what is left.
    rounds = total // batch + 10
    with rt.store.batch():
        for _ in range(rounds):
            result = rt.service.send_due_checkpoints(ACTOR, lateness, limit=batch)
            for name in ("sent", "flagged", "conflicts"):
                summary.add(name, result.get(name, 0))
            _report("followups", summary.counts["sent"] + summary.counts["flagged"], total)
            progressed = result["sent"] + result["flagged"] + result["conflicts"] > 0
            if result["checked"] < batch or not progressed:
                break
        if most > 0:
            while True:
                reminded = rt.service.send_reminders(ACTOR, after, most, limit=batch)
                summary.add("reminded", reminded)
                if reminded < batch:
                    break
    return summary


def _measurable(engine: Engine, after_id: int, limit: int) -> list[int]:
    """Delivered requests with at least one checkpoint and none still open."""
    open_checkpoint = exists().where(and_(checkpoints.c.request_id == requests.c.id,
                                          checkpoints.c.status.notin_(("closed", "missed"))))
    any_checkpoint = exists().where(checkpoints.c.request_id == requests.c.id)
    with engine.connect() as conn:
        return list(conn.execute(select(requests.c.id).where(
            requests.c.state == "delivered", requests.c.id > after_id, any_checkpoint, ~open_checkpoint)
            .order_by(requests.c.id).limit(limit)).scalars())


def advance_requests(rt: Runtime, batch: int = 500) -> StepSummary:
    """Measure every delivered request whose checkpoints are all closed (as ``ldflow-pipeline``).

    Acknowledging is left to a person: it needs their recap, action plan and thanks.
    """
    summary = StepSummary("advance")
    summary.counts["measured"] = 0
    last = 0
    while True:
        ids = _measurable(rt.engine, last, batch)
        if not ids:
            break
        for request_id in ids:
            try:
                rt.service.measure(request_id, ACTOR)
                summary.add("measured")
            except Conflict:
                summary.add("conflicts")  # changed meanwhile: the next run looks again
            except TransitionRefused as exc:  # measured by someone else, or reopened meanwhile
                summary.add("skipped")
                summary.errors.append(f"request {request_id}: {exc}")
        _report("advance", summary.counts["measured"], None)
        last = ids[-1]
    return summary


def _sender(settings: Settings) -> Any:
    """SMTP when configured, else the embedded default: .eml files in the outbox folder."""
    from connectors.email.smtp import FileSender, SmtpSender

    if settings.smtp_host:
        from connectors.email.config import SmtpConfig

        port = settings.smtp_port or (465 if settings.smtp_security == "ssl" else 587)
        return SmtpSender(SmtpConfig(host=settings.smtp_host, port=port, security=settings.smtp_security,
                                     username=settings.smtp_username, password=settings.smtp_password,
                                     mail_from=settings.mail_from, timeout=settings.smtp_timeout,
                                     cafile=str(settings.smtp_cafile) if settings.smtp_cafile else None,
                                     allow_untrusted=settings.smtp_allow_untrusted))
    return FileSender(settings.outbox_dir)


class _LazyCalendar:
    """The CalDAV publisher for one dispatch run: makes sure the calendar collection exists before
    the first item is published (one PROPFIND per run, none when nothing has a calendar item), so
    a calendar outage only delays the rows that carry a calendar item (the relay retries them)."""

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher
        self.ready = False

    def publish(self, item: Any) -> Any:
        if not self.ready:
            self.publisher.ensure_calendar()
            self.ready = True
        return self.publisher.publish(item)


def _calendar(settings: Settings) -> Any:
    """A CalDAV publisher when ``LDFLOW_CALDAV_URL`` is set, else None (invites go by mail only)."""
    if not settings.caldav_url:
        return None
    from connectors.calendar.caldav_client import CaldavPublisher

    verify: bool | str = settings.caldav_verify
    if verify and settings.caldav_cafile:
        verify = str(settings.caldav_cafile)
    return _LazyCalendar(CaldavPublisher(settings.caldav_url, settings.caldav_username, settings.caldav_password,
                                         verify=verify))


def _history_hook(rt: Runtime) -> Any:
    """Record "email sent" / "email bounced" in the request's history, in the relay's transaction."""
    from states.events import EmailBounced, EmailSent

    kinds: dict[str, type[EmailSent] | type[EmailBounced]] = {"sent": EmailSent, "failed": EmailBounced}

    def hook(conn: Any, row: Any, outcome: str, detail: str) -> None:
        kind = kinds.get(outcome)
        if kind is None:
            return
        event = kind(key=row.key, template=row.template, to=tuple(r.email for r in row.notification.to),
                     detail=detail[:500])
        rt.store.record_events(conn, row.request_id, [event], ACTOR, rt.now())

    return hook


def relay_owner() -> str:
    """Who holds an outbox lease: host and process, so a lease names a real process."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def send_outbox(rt: Runtime, batch: int = 100, lease_seconds: int = 300, max_seconds: float = 1200) -> StepSummary:
    """Send what the outbox holds, in claimed batches, through SMTP or the outbox folder.

    A run claims no new batch after ``max_seconds``: a huge backlog is worked off by successive
    runs, and no run holds the task's time budget hostage."""
    from connectors.email.render import render
    from flows.relay import relay_outbox

    s = rt.settings
    domain = s.mail_from.rsplit("@", 1)[-1]
    render_fn = partial(render, mail_from=s.mail_from, domain=domain,
                        templates_dir=s.templates_dir)
    sender = _sender(s)
    calendar = _calendar(s)
    summary = StepSummary("dispatch")
    for name in ("sent", "retried", "failed", "unknown"):
        summary.counts[name] = 0
    owner = relay_owner()
    hook = _history_hook(rt)
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        now = rt.now()
        result = relay_outbox(rt.engine, sender, partial(render_fn, now=now), now, owner, batch=batch,
                              lease=timedelta(seconds=lease_seconds), on_outcome=hook, calendar=calendar)
        for name in ("claimed", "sent", "retried", "failed", "unknown", "lost_lease", "published"):
            summary.add(name, getattr(result, name))
        summary.errors.extend(result.errors)
        _report("dispatch", summary.counts["sent"], None)
        if result.claimed < batch:
            break
    return summary


def _lookup_sent(conn: Any) -> Callable[[Any], dict[str, tuple[int, str]]]:
    """Message-IDs ldflow sent → (request id, outbox key), for matching replies to requests."""
    from connectors.db.tables import outbox

    def lookup(message_ids: Any) -> dict[str, tuple[int, str]]:
        ids = list(message_ids)
        if not ids:
            return {}
        rows = conn.execute(select(outbox.c.message_id, outbox.c.request_id, outbox.c.key)
                            .where(outbox.c.message_id.in_(ids))).all()
        return {r.message_id: (r.request_id, r.key) for r in rows}

    return lookup


_INTAKE_FIELDS = ("title", "requester", "sponsor", "stakeholders", "requested_solution", "business_goal",
                  "audience", "why_now", "tried_already")
_REPLY_PREFIX = r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|tr|antw)\s*(?:\[\d+\])?\s*:\s*)+"
MAX_MAILED_SOLUTION = 4000


def _intake_from_mail(message: Any) -> tuple[dict[str, Any], str | None]:
    """A new request mailed in: ``(intake data, note for the history or None)``; raises ``Quarantine``.

    A body that is a YAML mapping with intake field names (``sponsor:``, ``requested_solution:`` …) is
    read as a YAML intake, with the drop folder's loader (plain mappings, no aliases: no "billion
    laughs"); the sender is the requester and the subject the title unless the YAML says otherwise.
    Any other body is a request in plain words: title from the subject, the sender as requester and
    (until ops correct it) sponsor, the body (quoted text and signature cut off) as what was asked for.
    """
    import re

    from connectors.db.inbound import Quarantine
    from connectors.loader import parse_mapping

    body = message.body_text or ""
    pattern = r"^(?:" + "|".join(_INTAKE_FIELDS) + r")\s*:"
    data: dict[str, Any] = {}
    if re.search(pattern, body, re.MULTILINE):
        try:
            data = parse_mapping(body, f"e-mail {message.message_id}", "yaml")
        except LdflowError as exc:
            detail = "; ".join(str(e) for e in getattr(exc, "errors", [])) or str(exc)
            if "aliases" in detail:  # an intake with anchors/aliases: refused, as in the drop folder
                raise Quarantine(f"the body looks like a YAML intake but cannot be read: {detail}") from None
            data = {}  # not YAML after all: a request in plain words that happens to hold "field: …" lines
        if set(data) & set(_INTAKE_FIELDS):
            data.setdefault("title", message.subject)
            data.setdefault("requester", {"name": message.from_name or message.from_address,
                                          "email": message.from_address})
            return data, None
    return _plain_request(message, re.sub(_REPLY_PREFIX, "", message.subject or "", flags=re.IGNORECASE))


def _plain_request(message: Any, subject: str) -> tuple[dict[str, Any], str]:
    """A request in plain words (see ``_intake_from_mail``)."""
    import re

    from connectors.db.inbound import Quarantine
    from connectors.email.addresses import HeaderValueError, validate_address
    from connectors.email.replies import first_meaningful_lines

    unmatched = "not a reply to a message ldflow sent (no known In-Reply-To/References or [ldflow #N] tag)"
    try:
        address = validate_address("From", message.from_address or "")
    except HeaderValueError as exc:
        raise Quarantine(f"{unmatched}, and no usable sender to take it in as a new request: {exc}") from None
    text = "\n".join(first_meaningful_lines(message.body_text or "")).strip()
    if not text:
        raise Quarantine(f"{unmatched}, and its body is empty (after quoted text and signature): nothing to "
                         "take in as a new request")
    if len(text) > MAX_MAILED_SOLUTION:
        text = text[:MAX_MAILED_SOLUTION].rstrip() + " [...]"

    def line(value: str, limit: int) -> str:
        value = " ".join(re.sub(r"[\x00-\x1f\x7f\u0085\u2028\u2029]", " ", value).split())
        return value if len(value) <= limit else value[:limit - 3].rstrip() + "..."

    name = line(message.from_name or "", 120) or address.split("@", 1)[0]
    title = line(subject, 200)
    if len(title) < 3:
        title = line(f"Request from {name}", 200)
    person = {"name": name, "email": address}
    data = {"title": title, "requester": person, "sponsor": dict(person), "requested_solution": text}
    note = (f"Received by e-mail from {name} <{address}> (Message-ID {message.message_id}), subject "
            f"{line(message.subject or '', 200)!r}. The requester is recorded as sponsor until the partner "
            "conversation names the real sponsor.")
    return data, note


def _checkpoint_of(request_id: int, outbox_key: str | None) -> str | None:
    """The checkpoint a survey (or survey reminder) e-mail asked about, from its outbox key."""
    if not outbox_key:
        return None
    parts = outbox_key.split(":")
    # "<id>:survey:<item>:<offset>" or "<id>:survey_reminder:<item>:<offset>:<n>"
    if len(parts) >= 4 and parts[1] in ("survey", "survey_reminder"):
        return f"{request_id}:{parts[2]}:{parts[3]}"
    return None


def _handler(rt: Runtime, now: datetime, created: list[int]) -> Callable[[Any, Any], Any]:
    """What to do with one inbound item, inside the ingest loop's write transaction."""
    from connectors.db.inbound import Handled, Quarantine
    from connectors.email.replies import interpret_reply, match_request
    from states.models import CheckpointResult, Intake, PlanApproval
    from states.request import TrainingRequest
    from states.validation import parse

    store = rt.store

    def submit(conn: Any, data: dict[str, Any], source: str, note: tuple[str, str] | None = None) -> Any:
        try:
            intake = parse(Intake, data, source)
        except LdflowError as exc:
            raise Quarantine(str(exc)) from None
        new = TrainingRequest.submit(intake, now)
        if note is not None:
            new.add_note(note[0], now, source=note[1])
        request = store.add_in(conn, new, ACTOR)
        created.append(request.id)
        return Handled("processed", request.id)

    def handle(conn: Any, item: Any) -> Any:
        if item.kind in ("json", "yaml"):
            return submit(conn, dict(item.intake or {}), Path(item.path).name if item.path else "drop folder")
        message = item.message
        match = match_request(message, _lookup_sent(conn))
        if match is None:
            data, history_note = _intake_from_mail(message)
            return submit(conn, data, f"e-mail {message.message_id}",
                          (history_note, f"e-mail from {message.from_address}") if history_note else None)
        request = store.get(match.request_id)
        intent = interpret_reply(message.body_text)
        sender = message.from_address
        try:
            if intent.kind == "approve":
                request.approve_plan(PlanApproval(approver=sender, comment=intent.note[:2000]), now)
            elif intent.kind == "survey_result":
                key = _checkpoint_of(match.request_id, match.in_reply_to_key)
                if key is None or intent.value is None:
                    raise Quarantine(f"a number ({intent.value}) in a reply that does not answer a survey")
                request.record_result(key, CheckpointResult(value=float(intent.value), note=intent.note[:2000]),
                                      now)
            else:
                request.add_note(intent.note or message.subject, now, source=f"e-mail from {sender}")
        except (LdflowError, ValueError) as exc:
            raise Quarantine(f"request {match.request_id}: {exc}") from None
        store.save_in(conn, request, sender)
        return Handled("processed", match.request_id)

    return handle


def _last_uid(engine: Engine | None) -> Callable[[str, int], int | None] | None:
    """The highest UID recorded for a mailbox generation (``max_uid``): the IMAP source then also
    takes mail above it that a person already opened in a mail client. A changed UIDVALIDITY has
    no recorded UID yet: only UNSEEN mail is read, and the Message-ID check keeps what was taken
    in before from being taken in again."""
    if engine is None:
        return None
    from connectors.db.inbound import max_uid

    def last_uid(source: str, uidvalidity: int) -> int | None:
        with engine.connect() as conn:
            return max_uid(conn, source, uidvalidity)

    return last_uid


def _sources(settings: Settings, engine: Engine | None = None) -> list[Any]:
    from connectors.email.dropfolder import DropFolderSource

    sources: list[Any] = [DropFolderSource(settings.drop_dir)]
    if settings.imap_host:
        from connectors.email.config import ImapConfig
        from connectors.email.imap import ImapSource

        port = settings.imap_port or (993 if settings.imap_security == "ssl" else 143)
        sources.append(ImapSource(ImapConfig(host=settings.imap_host, port=port, security=settings.imap_security,
                                             username=settings.imap_username or "",
                                             password=settings.imap_password or "",
                                             mailbox=settings.imap_mailbox,
                                             cafile=str(settings.imap_cafile) if settings.imap_cafile else None,
                                             allow_untrusted=settings.imap_allow_untrusted),
                                  last_uid=_last_uid(engine)))
    return sources


def take_in(rt: Runtime, batch: int = 200) -> StepSummary:
    """New requests from the drop folder (JSON/YAML intakes, e-mails), and replies (plan approvals,
    survey answers, notes) from it and from the IMAP inbox when configured. Each item is recorded
    in the same transaction as the change it causes, so it is taken in once; what cannot be acted
    on is quarantined with the reason, never dropped."""
    from connectors.db.inbound import ingest

    summary = StepSummary("intake")
    for name in ("processed", "quarantined", "skipped"):
        summary.counts[name] = 0
    now = rt.now()
    created: list[int] = []  # may hold ids of rolled-back submissions: only used for the event below
    for source in _sources(rt.settings, rt.engine):
        opened = hasattr(source, "__enter__")
        try:
            if opened:
                source.__enter__()
            result = ingest(rt.engine, source, _handler(rt, now, created), now,
                            quarantine_dir=rt.settings.home / "quarantine", limit=batch)
        except Exception as exc:  # an unreachable inbox must not stop the rest of the pass
            summary.errors.append(f"{source.source}: {type(exc).__name__}: {exc}")
            continue
        finally:
            if opened:
                with contextlib.suppress(Exception):
                    source.__exit__(None, None, None)
        summary.add("processed", result.processed)
        summary.add("quarantined", result.quarantined)
        summary.add("skipped", result.skipped)
        summary.errors.extend(result.reasons)
        if result.aborted:
            summary.errors.append(f"{source.source}: stopped early: {result.aborted}")
    if created and summary.counts["processed"]:
        from flows import events

        events.emit([events.outbox_event([f"{rid}:intake_acknowledgement" for rid in created])])
    return summary


# --- Prefect tasks: connector I/O and DB batches, retried and timed out -------------------------------

# Timeouts bound connector I/O (the drop folder/IMAP, SMTP; the SMTP sender also times out each
# command). The database steps run in bounded rounds and are not cut off half-way.
@task(name="take-in", retries=2, retry_delay_seconds=10, timeout_seconds=900,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def take_in_task(batch: int = 200) -> dict[str, Any]:
    return take_in(runtime(), batch).as_dict()


@task(name="fire-followups", retries=2, retry_delay_seconds=5,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def followups_task(batch: int = 500, lateness_days: int | None = None, reminder_after_days: int | None = None,
                   max_reminders: int | None = None) -> dict[str, Any]:
    return fire_followups(runtime(), batch, lateness_days, reminder_after_days, max_reminders).as_dict()


@task(name="advance-requests", retries=2, retry_delay_seconds=5,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def advance_task(batch: int = 500) -> dict[str, Any]:
    return advance_requests(runtime(), batch).as_dict()


@task(name="send-outbox", retries=2, retry_delay_seconds=30, timeout_seconds=7200,
      persist_result=False, cache_policy=NO_CACHE, log_prints=False)
def dispatch_task(batch: int = 100, lease_seconds: int = 300) -> dict[str, Any]:
    return send_outbox(runtime(), batch, lease_seconds).as_dict()


# --- flows -----------------------------------------------------------------------------------------------

def _log(summary: dict[str, Any]) -> dict[str, Any]:
    try:
        from prefect import get_run_logger

        get_run_logger().info("%s: %s", summary["step"], summary["counts"])
        for error in summary["errors"][:10]:
            get_run_logger().warning("%s: %s", summary["step"], error)
    except Exception:  # called outside a run (e.g. .fn in a unit test)
        pass
    return summary


@flow(name="intake", persist_result=False, log_prints=False)
def intake(batch: int = 200) -> dict[str, Any]:
    """Take in new requests from the drop folder (and replies from the inbox when configured).

    batch: files/messages read per round.
    """
    return _log(take_in_task(batch))


@flow(name="followups", persist_result=False, log_prints=False)
def followups(batch: int = 500, lateness_days: int | None = None, reminder_after_days: int | None = None,
              max_reminders: int | None = None) -> dict[str, Any]:
    """Fire the measurement checkpoints that are due (each once) and remind unanswered surveys.

    batch: checkpoints per database round; lateness_days: older than this → flagged needs_review,
    not sent (default LDFLOW_LATENESS_DAYS, 14); reminder_after_days (default 3) and max_reminders
    (default 2) for unanswered surveys.
    """
    return _log(followups_task(batch, lateness_days, reminder_after_days, max_reminders))


@flow(name="advance", persist_result=False, log_prints=False)
def advance(batch: int = 500) -> dict[str, Any]:
    """Measure delivered requests whose checkpoints are all closed. batch: requests per round."""
    return _log(advance_task(batch))


@flow(name="dispatch", persist_result=False, log_prints=False)
def dispatch(batch: int = 100, lease_seconds: int = 300) -> dict[str, Any]:
    """Send what the outbox holds. batch: rows claimed per round; lease_seconds: how long a claim
    holds before another relay may take the rows over (a relay that died)."""
    return _log(dispatch_task(batch, lease_seconds))


@flow(name="pipeline", persist_result=False, log_prints=False)
def pipeline(intake_batch: int = 200, followups_batch: int = 500, dispatch_batch: int = 100,
             lateness_days: int | None = None, reminder_after_days: int | None = None,
             max_reminders: int | None = None, lease_seconds: int = 300) -> dict[str, Any]:
    """One pass of the whole pipeline: intake, followups, advance, dispatch (sending last, so what
    this pass queued goes out in this pass). Returns each step's summary."""
    steps = [
        _log(take_in_task(intake_batch)),
        _log(followups_task(followups_batch, lateness_days, reminder_after_days, max_reminders)),
        _log(advance_task()),
        _log(dispatch_task(dispatch_batch, lease_seconds)),
    ]
    return {"steps": steps, "errors_total": sum(s["errors_total"] for s in steps)}


FLOWS = {"intake": intake, "followups": followups, "advance": advance, "dispatch": dispatch, "pipeline": pipeline}


def run_pass(**parameters: Any) -> dict[str, Any]:
    """One ``pipeline`` flow run (ephemeral Prefect when no API is configured)."""
    result: dict[str, Any] = pipeline(**parameters)
    return result


def pass_direct(rt: Runtime | None = None) -> dict[str, Any]:
    """The same pass without Prefect (the step functions in order): for tests and benchmarks."""
    rt = rt or runtime()
    steps = [take_in(rt), fire_followups(rt), advance_requests(rt), send_outbox(rt)]
    return {"steps": [s.as_dict() for s in steps], "errors_total": sum(len(s.errors) for s in steps)}


__all__ = ["ACTOR", "FLOWS", "LdflowError", "Runtime", "StepSummary", "advance", "advance_requests",
           "dispatch", "fire_followups", "followups", "intake", "pass_direct", "pipeline", "run_pass",
           "runtime", "send_outbox", "take_in"]
