"""In-memory fakes of every port in :mod:`connectors.ports`, for unit tests (as procrastinate ships
``testing.py``). They keep the real adapters' contract: ``tests/integration/test_contract_*.py``
runs the same cases against each fake and its real adapter.
"""

from __future__ import annotations

# --- request store --------------------------------------------------------------------------------


# --- mail out, mail in, calendar ------------------------------------------------------------------


# --- outbox and inbound log -----------------------------------------------------------------------
