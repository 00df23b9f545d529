"""The composition root: :func:`build` turns settings into the application every entry point uses.

The CLI builds one :class:`App` per command; the Prefect tasks take the process's app from
:func:`current` (built once per process and settings, or the one an entry point :func:`install`-ed);
the demo, the benchmarks and the tests build theirs with their own settings and clock. Nothing
else constructs engines, stores, senders or inbound sources.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from connectors.db.inbound import InboundSource
from connectors.email.smtp import Sender
from connectors.ports import InboundLog, TokenStore, UnitOfWork, UserStore
from flows.clock import Clock, FileClock, SystemClock
from flows.mail import MailService
from flows.relay import CalendarPublisher
from flows.service import Service
from flows.settings import ConfigurationError, Settings, load_settings
from flows.tokens import TokenService
from flows.users import Accounts

T = TypeVar("T")

#: ``hook(step, done, total)``: how far a step has got (``ldflow run`` shows it).
ProgressHook = Callable[[str, int, int | None], None]


@dataclass
class App:
    """The application for one process or command: its settings and clock, the unit of work and
    the request store over one database, the request and mail services, the API tokens, the staff
    accounts, and the mail and calendar connectors. ``engine`` is None for an app on the in-memory fakes."""

    settings: Settings
    clock: Clock
    store: Any  # a RequestStore (SqlStore, or the in-memory fake)
    uow: UnitOfWork
    service: Service
    mail: MailService
    sender: Sender
    calendar: CalendarPublisher | None
    sources: Callable[[], list[InboundSource]]
    tokens: TokenService
    accounts: Accounts
    engine: Engine | None = None
    progress: ProgressHook | None = field(default=None, repr=False)

    def now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def report_progress(self, step: str, done: int, total: int | None) -> None:
        """Tell the progress hook, if any; a broken display never breaks the pipeline."""
        if self.progress is not None:
            with contextlib.suppress(Exception):
                self.progress(step, done, total)

    def close(self) -> None:
        """Release the database connections."""
        if self.engine is not None:
            self.engine.dispose()


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def audit_signing_key(settings: Settings) -> Any:
    """The Ed25519 key of the audit checkpoints: LDFLOW_AUDIT_SIGNING_KEY, else the key file under the home."""
    from connectors.keys import KeyError_, signing_key

    try:
        return signing_key(settings.keys_dir, settings.audit_signing_key)
    except KeyError_ as exc:
        raise ConfigurationError(f"LDFLOW_AUDIT_SIGNING_KEY: {exc}") from None


def database_call(settings: Settings, fn: Callable[[], T]) -> T:
    """``fn()``, with an unreachable or refusing database reported as a ConfigurationError (exit 1)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from connectors.db.schema import MigrationRefused

    try:
        return fn()
    except MigrationRefused as exc:
        raise ConfigurationError(f"database {safe_url(settings.url)}: {exc}") from None
    except (OperationalError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigurationError(f"cannot reach the database {safe_url(settings.url)}: {reason}") from None


def make_engine(settings: Settings) -> Engine:
    """The engine for ``settings.url``; ConfigurationError for a URL ldflow cannot use."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from connectors.db.engine import make_engine as engine_for

    url = settings.url
    if url.startswith("sqlite:///"):
        from connectors.files import private_dir, private_file

        path = Path(url[len("sqlite:///"):].split("?", 1)[0])
        if path.name and path.name != ":memory:":
            private_dir(path.parent)
            private_file(path)
    try:
        return engine_for(url, synchronous=settings.sqlite_synchronous)
    except (ArgumentError, NoSuchModuleError, ValueError, ModuleNotFoundError) as exc:
        raise ConfigurationError(f"cannot use the database URL {safe_url(url)}: {exc} "
                                 "(set LDFLOW_DATABASE_URL, e.g. postgresql://user@host/db)") from None


def sender_for(settings: Settings) -> Sender:
    """SMTP when configured, else the embedded default: .eml files in the outbox folder."""
    from connectors.email.smtp import FileSender, SmtpSender

    if not settings.smtp_host:
        return FileSender(settings.outbox_dir)
    from connectors.email.config import SmtpConfig

    port = settings.smtp_port or (465 if settings.smtp_security == "ssl" else 587)
    return SmtpSender(SmtpConfig(host=settings.smtp_host, port=port, security=settings.smtp_security,
                                 username=settings.smtp_username, password=settings.smtp_password,
                                 mail_from=settings.mail_from, timeout=settings.smtp_timeout,
                                 cafile=str(settings.smtp_cafile) if settings.smtp_cafile else None,
                                 allow_untrusted=settings.smtp_allow_untrusted))


def calendar_for(settings: Settings) -> CalendarPublisher | None:
    """A CalDAV publisher when ``LDFLOW_CALDAV_URL`` is set, else None (invites go by mail only)."""
    if not settings.caldav_url:
        return None
    from connectors.calendar.caldav_client import CaldavPublisher

    verify: bool | str = settings.caldav_verify
    if verify and settings.caldav_cafile:
        verify = str(settings.caldav_cafile)
    return CaldavPublisher(settings.caldav_url, settings.caldav_username, settings.caldav_password, verify=verify)


def sources_for(settings: Settings, inbound: InboundLog) -> Callable[[], list[InboundSource]]:
    """The inbound sources of one intake run: the drop folder, and the IMAP inbox when configured.

    The IMAP source also takes mail above the highest UID recorded for the mailbox generation, so
    mail a person already opened in a mail client is not missed; a changed UIDVALIDITY has no
    recorded UID yet: only UNSEEN mail is read, and the Message-ID check keeps what was taken in
    before from being taken in again."""
    def sources() -> list[InboundSource]:
        from connectors.email.dropfolder import DropFolderSource

        found: list[InboundSource] = [DropFolderSource(settings.drop_dir)]
        if settings.imap_host:
            from connectors.email.config import ImapConfig
            from connectors.email.imap import ImapSource

            port = settings.imap_port or (993 if settings.imap_security == "ssl" else 143)
            config = ImapConfig(host=settings.imap_host, port=port, security=settings.imap_security,
                                username=settings.imap_username or "", password=settings.imap_password or "",
                                mailbox=settings.imap_mailbox,
                                cafile=str(settings.imap_cafile) if settings.imap_cafile else None,
                                allow_untrusted=settings.imap_allow_untrusted)
            found.append(ImapSource(config, last_uid=inbound.max_uid))
        return found

    return sources


def compose(settings: Settings, *, store: Any, uow: UnitOfWork, clock: Clock | None = None,
            sender: Sender | None = None, calendar: CalendarPublisher | None = None,
            sources: Callable[[], list[InboundSource]] | None = None, engine: Engine | None = None,
            tokens: TokenStore | None = None, users: UserStore | None = None) -> App:
    """The application over a given store and unit of work (SQL, or the in-memory fakes in tests);
    the connectors not given come from ``settings``; the API tokens are in memory unless ``tokens``
    is given (``build`` gives the database's); the staff accounts are in the database (``engine``),
    else in memory beside the fake store."""
    clock = clock or (FileClock(settings.simulated_clock) if settings.simulated_clock else SystemClock())
    if tokens is None:
        from connectors.testing.tokens import InMemoryTokens

        tokens = InMemoryTokens()
    if users is None:
        if engine is not None:
            from connectors.db.users import SqlUsers

            users = SqlUsers(engine)
        else:
            from connectors.testing import InMemoryStore, InMemoryUsers

            users = InMemoryUsers(store if isinstance(store, InMemoryStore) else None)
    accounts = Accounts(users, settings, lambda: clock.now().astimezone(UTC))
    service = Service(store, clock, delivery_window_years=settings.delivery_window_years)
    return App(settings=settings, clock=clock, store=store, uow=uow, service=service,
               mail=MailService(uow, clock, settings.mail_from), sender=sender or sender_for(settings),
               calendar=calendar if calendar is not None else calendar_for(settings),
               sources=sources or sources_for(settings, uow.inbound), tokens=TokenService(tokens, clock),
               accounts=accounts, engine=engine)


def build(settings: Settings | None = None, *, clock: Clock | None = None, migrate: bool = True,
          sender: Sender | None = None, calendar: CalendarPublisher | None = None,
          sources: Callable[[], list[InboundSource]] | None = None) -> App:
    """The application on the database of ``settings`` (default: from the environment).

    ``migrate`` brings the schema up to date first (``ldflow db upgrade`` does it explicitly).
    ``clock`` defaults to the simulated clock when ``LDFLOW_SIMULATED_CLOCK`` is set, else the
    system clock; the mail and calendar connectors to the ones the settings name. Prefect events
    are written to the event outbox with each change and published by the pipeline (``flows.events``)."""
    from connectors.db import schema
    from connectors.db.store import SqlStore
    from connectors.db.tokens import SqlTokens
    from connectors.db.unit_of_work import SqlUnitOfWork

    settings = settings or load_settings()
    engine = make_engine(settings)
    before = database_call(settings, lambda: schema.ensure_schema(engine)) if migrate else None
    store = SqlStore(engine, signing_key=lambda: audit_signing_key(settings))
    app = compose(settings, store=store, uow=SqlUnitOfWork(engine, store), clock=clock,
                  sender=sender, calendar=calendar, sources=sources, engine=engine, tokens=SqlTokens(engine))
    if schema.unsealed_by_migration(before):
        database_call(settings, app.service.checkpoint)  # vouch for the re-chained history at once
    return app


# --- the process's app, for the Prefect tasks --------------------------------------------------------

_lock = threading.Lock()
_installed: list[App] = []
_built: dict[str, App] = {}


def install(app: App | None) -> None:
    """Make ``app`` the one the Prefect tasks of this process use (the demo, ``ldflow run``);
    None goes back to building one from the environment's settings."""
    with _lock:
        _installed[:] = [app] if app is not None else []


def current(settings: Settings | None = None) -> App:
    """The app the Prefect tasks use: the installed one, else one built from ``settings`` (default:
    from the environment) once per process and settings. The settings are read at each call, so a
    test can point the flows at another database through ``LDFLOW_HOME``/``LDFLOW_DATABASE_URL``."""
    with _lock:
        if _installed and settings is None:
            return _installed[0]
    settings = settings or load_settings()
    key = settings.model_dump_json()
    with _lock:
        app = _built.get(key)
        if app is None:
            app = _built[key] = build(settings)
        return app


def reset() -> None:
    """Forget the installed and built apps and release their databases (tests and the demo switch
    databases)."""
    with _lock:
        for app in [*_built.values(), *_installed]:
            app.close()
        _built.clear()
        _installed.clear()


def upgrade_schema(app: App, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations up to ``revision``: (the revision before, the revision after)."""
    from connectors.db import schema

    engine = app.engine
    if engine is None:
        raise ConfigurationError("this application has no database to upgrade")
    before = database_call(app.settings, lambda: schema.current_revision(engine))
    after = database_call(app.settings, lambda: schema.upgrade(engine, revision))
    if after == schema.HEAD and schema.unsealed_by_migration(before):
        database_call(app.settings, app.service.checkpoint)  # vouch for the re-chained history at once
    return before, after
