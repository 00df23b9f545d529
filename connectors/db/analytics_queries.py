"""The store's analytics reads (a mixin of ``SqlStore``): the tracks, the figures' summary and the audit
head the analytics cache is keyed on (``connectors/db/analytics.py``, ``analytics_summary.py``)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from connectors.db import analytics, analytics_summary
from connectors.db.engine import read_transaction
from connectors.db.tables import requests
from states.analytics import Track
from states.analytics_figures import Filter
from states.analytics_summary import Summary


class AnalyticsQueries:
    engine: Engine

    def analytics_tracks(self, since: int = 0) -> list[Track]:
        """The tracks computed by SQL aggregates (``connectors/db/analytics.py``): every request's through the
        ``analytics_tracks`` cache, or those with events after ``since`` directly."""
        return analytics.tracks(self.engine, since) if since else analytics.cached(self.engine)

    def analytics_summary(self, flt: Filter) -> Summary:
        """By GROUP BY queries over the refreshed track cache (``connectors/db/analytics_summary.py``)."""
        return analytics_summary.summary(self.engine, flt)

    def analytics_refresh(self) -> None:
        """The track cache brought up to every request's head (``connectors/db/analytics.py``'s ``refresh``)."""
        analytics.refresh(self.engine)

    def audit_head(self) -> int:
        """The number of audit events: every write adds to its request's ``head_seq`` in its transaction."""
        with read_transaction(self.engine) as conn:
            return int(conn.execute(select(func.coalesce(func.sum(requests.c.head_seq), 0))).scalar_one())
