"""In-memory fakes of every port in :mod:`connectors.ports`, for unit tests (as procrastinate ships
``testing.py``; here a package, one module per group of ports). They keep the real adapters'
contract: ``tests/integration/test_contract_*.py`` runs the same cases against each fake and its
real adapter.

Fakes: ``InMemoryStore`` (``RequestStore``), ``InMemorySender`` (``Sender``), ``InMemoryInbox``
(``InboundSource``), ``InMemoryCalendar`` (``CalendarPublisher``), ``InMemoryOutbox``
(``OutboxLog``), ``InMemoryEventLog`` (``EventLog``), ``InMemoryInbound`` (``InboundLog``),
``InMemoryLinkUses`` (``LinkUseLog``), ``InMemoryUnitOfWork`` (``UnitOfWork``), ``InMemoryTokens`` (``TokenStore``),
``InMemoryUsers`` (``UserStore``).
"""

from connectors.testing.mail import InMemoryCalendar, InMemoryInbox, InMemorySender
from connectors.testing.outbox import (
    InMemoryEventLog,
    InMemoryInbound,
    InMemoryLinkUses,
    InMemoryOutbox,
    InMemoryTransaction,
    InMemoryUnitOfWork,
)
from connectors.testing.store import InMemoryStore, OutboxMessage
from connectors.testing.tokens import InMemoryTokens
from connectors.testing.users import InMemoryUsers

__all__ = ["InMemoryCalendar", "InMemoryEventLog", "InMemoryInbound", "InMemoryInbox", "InMemoryLinkUses",
           "InMemoryOutbox", "InMemorySender", "InMemoryStore", "InMemoryTokens", "InMemoryTransaction",
           "InMemoryUnitOfWork", "InMemoryUsers", "OutboxMessage"]
