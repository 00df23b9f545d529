"""The ports: every protocol the application needs from the outside world, with its data types.

Each port has a real adapter (named by technology: ``SqlStore``, ``SmtpSender`` …) and an
in-memory fake in :mod:`connectors.testing`; ``tests/integration/test_contract_*.py`` runs the
same cases against both.
"""

from __future__ import annotations

# --- request store --------------------------------------------------------------------------------


# --- mail out, mail in, calendar ------------------------------------------------------------------


# --- outbox and inbound log -----------------------------------------------------------------------
