"""The ports: every protocol the application needs from the outside world, with its data types.

Each port has a real adapter (named by technology: ``SqlStore``, ``SmtpSender`` …) and an
in-memory fake in :mod:`connectors.testing`; ``tests/integration/test_contract_*.py`` runs the
same cases against both, and checks that every adapter and fake has each port method with the
same parameters (names, kinds, defaults).

This package holds data and protocols only, in six modules (``store``, ``mail``, ``outbox``, ``tokens``, ``links``,
``users``;
import the names from here): it imports no adapter, no database and no network library, so the
fakes and the application can depend on it without pulling any of them in.
"""

from connectors.email.inbound import InboundItem, InboundRef
from connectors.ports.links import LinkUse, LinkUseLog
from connectors.ports.mail import (
    CalendarPublisher,
    InboundSource,
    PermanentSendError,
    PublishResult,
    Refusal,
    Sender,
    SendError,
    SendResult,
    ServerUnavailableError,
    TemporarySendError,
    UnknownOutcomeError,
)
from connectors.ports.outbox import (
    RETRYABLE,
    EventLog,
    InboundLog,
    InboundRecord,
    InboundStatus,
    OutboxLog,
    OutboxRow,
    OutboxStatus,
    StagedEvent,
    Transaction,
    UnitOfWork,
)
from connectors.ports.store import (
    SORT_KEYS,
    AuditRecord,
    BoardPage,
    BoardQuery,
    BoardRow,
    ClockSummary,
    DueClock,
    FollowupApply,
    FollowupClaim,
    ListFilter,
    RequestStore,
    RequestSummary,
    VerifyReport,
)
from connectors.ports.tokens import ApiToken, TokenStore
from connectors.ports.users import ROLES, User, UserStore

__all__ = [
    "ClockSummary",
    "DueClock",
    "RETRYABLE", "ROLES", "SORT_KEYS", "ApiToken", "AuditRecord", "CalendarPublisher", "EventLog", "InboundItem",
    "InboundLog", "InboundRecord", "InboundRef", "InboundSource", "InboundStatus", "LinkUse", "LinkUseLog",
    "ListFilter", "BoardPage", "BoardQuery", "BoardRow", "FollowupApply", "FollowupClaim",
    "OutboxLog", "OutboxRow", "OutboxStatus", "PermanentSendError", "PublishResult", "Refusal", "RequestStore",
    "RequestSummary", "SendError", "SendResult", "Sender", "ServerUnavailableError", "StagedEvent",
    "TemporarySendError", "TokenStore", "Transaction", "UnitOfWork", "UnknownOutcomeError", "User", "UserStore",
    "VerifyReport",
]
