"""Plain connection settings for the mail and calendar connectors.

The application's settings object (``flows/settings.py``, prefix ``LDFLOW_``)
builds these from the environment or a config file:

=====================  ===========================================
``SmtpConfig``          LDFLOW_SMTP_HOST, LDFLOW_SMTP_PORT, LDFLOW_SMTP_SECURITY
                        (none | starttls | ssl), LDFLOW_SMTP_USERNAME,
                        LDFLOW_SMTP_PASSWORD, LDFLOW_MAIL_FROM
``ImapConfig``          LDFLOW_IMAP_HOST, LDFLOW_IMAP_PORT, LDFLOW_IMAP_USERNAME,
                        LDFLOW_IMAP_PASSWORD, LDFLOW_IMAP_MAILBOX
``CaldavConfig``        LDFLOW_CALDAV_URL, LDFLOW_CALDAV_USERNAME,
                        LDFLOW_CALDAV_PASSWORD
=====================  ===========================================

The dataclasses hold no logic beyond validating their own values, so the
connectors stay independent of pydantic-settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Security = Literal["none", "starttls", "ssl"]
_SECURITIES = ("none", "starttls", "ssl")


def _check_security(value: str, field: str) -> None:
    if value not in _SECURITIES:
        raise ValueError(f"{field} must be one of none, starttls, ssl (got {value!r})")


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the outgoing mail server.

    Certificates are verified against the system trust store (or ``cafile``);
    ``allow_untrusted`` turns verification off and must be set on purpose.
    ``timeout`` (seconds) bounds the connect and every single command, so a
    server that accepts the connection and never answers cannot hang a run.
    """

    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    mail_from: str = ""
    timeout: float = 30.0
    cafile: str | None = None
    allow_untrusted: bool = False
    local_hostname: str | None = None

    def __post_init__(self) -> None:
        _check_security(self.security, "LDFLOW_SMTP_SECURITY")
        if not self.host:
            raise ValueError("LDFLOW_SMTP_HOST is empty")
        if self.timeout <= 0:
            raise ValueError("SMTP timeout must be positive")


@dataclass(frozen=True)
class ImapConfig:
    """How to reach the L&D team's inbox over IMAP."""

    host: str
    port: int = 993
    security: Security = "ssl"
    username: str = ""
    password: str = ""
    mailbox: str = "INBOX"
    timeout: float = 30.0
    cafile: str | None = None
    allow_untrusted: bool = False

    def __post_init__(self) -> None:
        _check_security(self.security, "IMAP security")
        if not self.host:
            raise ValueError("LDFLOW_IMAP_HOST is empty")
        if self.timeout <= 0:
            raise ValueError("IMAP timeout must be positive")


@dataclass(frozen=True)
class CaldavConfig:
    """A CalDAV calendar collection to publish events and to-dos to.

    ``url`` is the calendar collection itself, e.g.
    ``https://cal.example.org/dav/ld-team/training/``.
    """

    url: str
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    verify: bool | str = True  # True, False, or a CA bundle path

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("LDFLOW_CALDAV_URL is empty")


@dataclass(frozen=True)
class InboundLimits:
    """Limits that make a malformed or hostile message cheap to reject.

    A message over a limit is quarantined with the reason; parsing it never
    takes more than a few seconds.
    """

    max_message_bytes: int = 30 * 1024 * 1024
    max_part_bytes: int = 10 * 1024 * 1024
    max_depth: int = 10
    max_parts: int = 200
