"""Settings: environment variables with the prefix ``LDFLOW_`` (or a ``.env`` file)."""

from __future__ import annotations

import getpass
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from states.errors import LdflowError
from states.notifications import Recipient


class ConfigurationError(LdflowError):
    """Settings or database problems (exit 1)."""

    exit_code = 1


DEFAULT_FROM_NAME = "Learning & Development"


def parse_organizer(value: str) -> Recipient:
    """``"L&D team <ld@example.org>"`` (or a bare address) as a recipient; ValueError when it is no address."""
    from email.utils import getaddresses

    from connectors.email.addresses import validate_address, validate_header_text

    found = getaddresses([validate_header_text("organizer", value, max_length=300)])
    if len(found) != 1 or "@" not in found[0][1]:
        raise ValueError(f"not one 'Name <address>' or address: {value!r}")
    [(name, address)] = found
    name = validate_header_text("organizer name", name, max_length=200).strip()
    return Recipient(name or DEFAULT_FROM_NAME, validate_address("organizer", address))


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "unknown"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDFLOW_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".ldflow"), description="data directory (SQLite file, mail folders)")
    database_url: str | None = Field(default=None, description="PostgreSQL URL; default: SQLite under home")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    actor: str = Field(default_factory=_default_actor, description="who is acting, recorded on every event")
    simulated_clock: Path | None = Field(default=None, description="file holding a simulated now (demo/tests)")

    # measurement follow-ups
    lateness_days: int = Field(default=14, ge=0, description="checkpoints later than this are flagged")
    reminder_after_days: int = Field(default=3, ge=1)
    max_reminders: int = Field(default=2, ge=0)
    delivery_window_years: int = Field(default=5, ge=1, le=100,
                                       description="delivery dates must be within this many years of today")
    close_after_days: int = Field(default=7, ge=1, description="days after the last reminder (or the survey, "
                                  "without reminders) a survey's response window ends at the earliest (then closed "
                                  "with its answers, missed below its minimum, or flagged needs_review without any)")
    # attention, digest and SLAs (README "Attention, digest and SLAs")
    sla_policy: Path | None = Field(default=None, description="YAML file of the SLA policy (clocks, business "
                                    "calendar, holidays file); default: the built-in policy")
    owner_reminder_days: int = Field(default=3, ge=0, description="days before its due date the owner of a "
                                     "companion piece or an action step is reminded")

    # the audit checkpoints' Ed25519 key (README "Audit trail"): 64 hex digits (the 32-byte seed); unset = the
    # key file <home>/keys/audit-signing.key, made on first use (0600)
    audit_signing_key: str | None = Field(default=None, repr=False,
                                          description="Ed25519 seed (64 hex digits) signing audit checkpoints; "
                                                      "default: <home>/keys/audit-signing.key")

    # mail and calendar (issue: connectors); unset = embedded file outbox / drop folder
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout: float = 30.0
    smtp_cafile: Path | None = Field(default=None, description="CA bundle for the SMTP server's certificate")
    smtp_allow_untrusted: bool = Field(default=False, description="skip SMTP certificate checks (on purpose only)")
    mail_from: str = "ldflow@localhost"
    organizer: str | None = Field(
        default=None, description="ORGANIZER of invites and to-dos, 'Name <address>' (accept/decline replies go "
                                  "there); default: Learning & Development <LDFLOW_MAIL_FROM>")
    ops_address: str | None = Field(
        default=None, description="the L&D ops team's 'Name <address>' (or address): daily attention digest and "
                                  "alerts (failed runs, mail stuck unknown/failed); default: LDFLOW_MAIL_FROM")
    imap_host: str | None = None
    imap_port: int | None = None
    imap_username: str | None = None
    imap_password: str | None = None
    imap_mailbox: str = "INBOX"
    imap_security: Literal["none", "starttls", "ssl"] = "ssl"
    imap_cafile: Path | None = Field(default=None, description="CA bundle for the IMAP server's certificate")
    imap_allow_untrusted: bool = Field(default=False, description="skip IMAP certificate checks (on purpose only)")
    caldav_url: str | None = None
    caldav_username: str | None = None
    caldav_password: str | None = None
    caldav_verify: bool = Field(default=True, description="verify the CalDAV server's certificate")
    caldav_cafile: Path | None = Field(default=None, description="CA bundle for the CalDAV server's certificate")
    templates_dir: Path | None = None

    # who a mail is from (issue 13): see README "Mail"
    mail_authserv_ids: str = Field(
        default="", description="the authserv-id(s) our own receiving server writes in Authentication-Results "
                                "(comma-separated); headers with any other id are ignored")
    mail_trusted_sender_domains: str | None = Field(
        default=None, description="sender domains whose mailed-in requests are acknowledged without an "
                                  "authenticated pass (comma-separated; default: the domain of LDFLOW_MAIL_FROM; "
                                  "empty: none)")
    reply_plus_addressing: bool = Field(
        default=True, description="Reply-To of mails that invite a reply is LDFLOW_MAIL_FROM plus-addressed with "
                                  "the reply code (turn off for a mail server without subaddressing)")

    # the web app (`ldflow web`)
    web_host: str = Field(default="127.0.0.1", description="address `ldflow web` listens on")
    web_port: int = Field(default=8000, ge=1, le=65535, description="port `ldflow web` listens on")
    base_url: str | None = Field(
        default=None, description="the web app's address as people reach it, for links in mails "
                                  "(default: http://LDFLOW_WEB_HOST:LDFLOW_WEB_PORT)")

    # signed links for the people outside L&D (flows/links.py): how long each kind works after its mail
    link_plan_approval_days: int = Field(default=14, ge=1, le=365, description="a sponsor's plan-approval link")
    link_survey_days: int = Field(default=21, ge=1, le=365,
                                  description="a respondent's survey link: answer or change the answer until then")
    link_result_days: int = Field(default=30, ge=1, le=365, description="an owner's result link")
    link_status_days: int = Field(default=365, ge=1, le=3650, description="a requester's status link")
    link_sponsor_days: int = Field(default=90, ge=1, le=3650,
                                   description="a sponsor's read-only link to their requests and results")
    # the public intake form (/ask)
    intake_per_hour: int = Field(default=10, ge=1, description="requests one client address may submit an hour")

    @cached_property
    def url(self) -> str:
        from connectors.db.engine import sqlite_url

        return self.database_url or sqlite_url(self.home)

    @field_validator("organizer", "ops_address")
    @classmethod
    def _check_organizer(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_organizer(value)
            return value.strip()
        return None

    @property
    def organizer_recipient(self) -> Recipient:
        """The ORGANIZER of what the team sends: LDFLOW_ORGANIZER, else the mail's From."""
        if self.organizer:
            return parse_organizer(self.organizer)
        return Recipient(DEFAULT_FROM_NAME, self.mail_from)

    @property
    def ops_recipient(self) -> Recipient:
        """Where digests and alerts for the L&D ops team go: LDFLOW_OPS_ADDRESS, else the mail's From."""
        if self.ops_address:
            return parse_organizer(self.ops_address)
        return Recipient(DEFAULT_FROM_NAME, self.mail_from)

    @property
    def web_url(self) -> str:
        """Where people reach the web app: LDFLOW_BASE_URL, else the address `ldflow web` listens on."""
        return (self.base_url or f"http://{self.web_host}:{self.web_port}").rstrip("/")

    @property
    def authserv_ids(self) -> tuple[str, ...]:
        return tuple(p.strip().lower() for p in self.mail_authserv_ids.split(",") if p.strip())

    @property
    def trusted_sender_domains(self) -> tuple[str, ...]:
        if self.mail_trusted_sender_domains is None:
            return (self.mail_from.rpartition("@")[2].strip().lower(),)
        return tuple(p.strip().lower().lstrip("@") for p in self.mail_trusted_sender_domains.split(",") if p.strip())

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def drop_dir(self) -> Path:
        return self.home / "dropbox"


def load_settings() -> Settings:
    """The settings from the environment (``LDFLOW_*``) and ``.env``; ConfigurationError naming each bad one."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = [f"LDFLOW_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError("invalid settings:\n  " + "\n  ".join(lines)) from None


def env_actor() -> str:
    return os.environ.get("LDFLOW_ACTOR") or _default_actor()
