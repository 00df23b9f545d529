"""SQLAlchemy table definitions (Core): the one place the schema is declared.

Alembic migrations under ``connectors/db/migrations`` create exactly these
tables; ``tests/integration/test_migrations.py`` checks they agree.
Timestamps that take part in the audit hash are stored as ISO 8601 text so the
hash recomputes byte-for-byte on every backend; the others are timezone-aware.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# One row per training request. ``document`` is the aggregate as JSON (the
# pydantic model dump); the other columns are copies for filtering and sorting.
requests = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(300), nullable=False),
    Column("state", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("requester_email", String(320), nullable=False),
    Column("sponsor_email", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # This request's chain head: how many audit events it has (the rseq of the newest) and the
    # newest one's hash; lets `audit verify` notice events cut off or added behind its back.
    Column("head_seq", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False, server_default="0" * 64),
    # HMAC of (id, head_seq, head_hash) under the audit key ("" when written without it, e.g. migrated).
    Column("head_mac", String(64), nullable=False, server_default=""),
    Column("document", Text, nullable=False),
    # The board's card, derived from the document by the store on every save (states/card.py), so the
    # board reads no document: when the state last changed, the work's owners and the next action
    # with what it still misses (JSON lists). NULL only on a row whose document could not be read
    # when migration 0007 backfilled it.
    Column("in_state_since", DateTime(timezone=True), nullable=True),
    Column("owners", Text, nullable=True),
    Column("next_action", String(40), nullable=True),
    Column("missing", Text, nullable=True),
    # The SLA clock summary (states/sla.py): one line per audit event of the request (its type, time
    # and checkpoint key), appended by the store in the transaction that appends the event, so the
    # SLA clocks are read without the history; and the owners' names ({address: name}) from the
    # document, for the attention digest's greeting (migration 0011 backfilled both).
    Column("sla_entries", Text, nullable=False, server_default=""),
    Column("owner_names", Text, nullable=True),
    Index("ix_requests_state_updated", "state", "updated_at"),
    Index("ix_requests_created", "created_at"),
    Index("ix_requests_requester", "requester_email"),
    Index("ix_requests_sponsor", "sponsor_email"),
    Index("ix_requests_head", "id", "head_seq"),  # the audit head and the analytics stale check read no document
)

# How many requests are in each state, kept by the store in the transaction of every add and state change
# (the board's column counts without counting 100,000 rows; migration 0007 fills it).
request_counts = Table(
    "request_counts",
    metadata,
    Column("state", String(20), primary_key=True),
    Column("n", Integer, nullable=False),
)

# Append-only history, one hash chain per request (connectors/audit_chain.py). UPDATE and DELETE
# are refused by triggers (see migrations). ``seq`` (assigned by the database) orders events
# across requests for display only; ``rseq`` numbers a request's own events, and the unique
# (request_id, rseq) forbids a fork: a writer holds the request's row lock while it appends.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", Integer, nullable=False),
    Column("rseq", Integer, nullable=False),
    Column("type", String(40), nullable=False),
    Column("trigger", String(20), nullable=True),
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=True),
    Column("version", Integer, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("at", String(40), nullable=False),
    Column("doc", String(64), nullable=False),  # doc_hash of the request row this event left
    Column("payload", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("request_id", "rseq", name="uq_audit_request_rseq"),
    # covers the analytics aggregates' reads of the transitions and checkpoint events (migration 0010)
    Index("ix_audit_analytics", "type", "request_id", "seq", "to_state", "at"),
)

# Signed checkpoints of every chain head (connectors/audit_checkpoints.py), append-only too.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("body", Text, nullable=False),
    Column("heads", Text, nullable=False),
    Column("signature", String(128), nullable=False),
)

# Measurement checkpoints: durable timers, one per (request, plan item, offset).
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("key", String(200), primary_key=True),  # idempotency key "<request>:<item>:<offset>"
    Column("request_id", Integer, nullable=False),
    Column("item_id", String(80), nullable=False),
    Column("offset", String(40), nullable=False),  # ISO 8601 duration as written in the plan
    Column("due_at", DateTime(timezone=True), nullable=False),
    # scheduled -> sent -> closed | missed ; scheduled -> needs_review (too late to send)
    Column("status", String(20), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("reminders_sent", Integer, nullable=False, default=0),
    Column("last_reminder_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("result", Text, nullable=True),  # JSON: {"value":..,"note":..} or {"missed": reason}
    Index("ix_checkpoints_status_due", "status", "due_at"),
    Index("ix_checkpoints_request", "request_id"),
)

# Outbox: messages to send, written in the same transaction as the change that
# caused them. A relay claims rows with a lease, sends, and marks them.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),  # idempotency key; Message-ID derives from it
    Column("request_id", Integer, nullable=False),
    Column("template", String(60), nullable=False),
    Column("notification", Text, nullable=False),  # JSON of states.notifications.Notification
    Column("created_at", DateTime(timezone=True), nullable=False),
    # pending -> sending (claimed, leased) -> sent | failed ; sending -> unknown (outcome not known)
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", DateTime(timezone=True), nullable=True),  # backoff after a temporary failure
    Column("lease_owner", String(100), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("message_id", String(300), nullable=True),
    Column("recipients_done", Text, nullable=True),  # JSON list of addresses accepted or refused for good
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_status", "status", "not_before"),
)

# Inbound mail and drop-folder files, recorded before they are acted upon.
inbound = Table(
    "inbound",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),  # "imap:<mailbox>" or "drop:<folder>"
    Column("uidvalidity", BigInteger, nullable=True),
    Column("uid", BigInteger, nullable=True),
    Column("message_id", String(300), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),  # processed | quarantined
    Column("request_id", Integer, nullable=True),
    Column("reason", Text, nullable=True),  # why quarantined, defects
    Column("raw_path", Text, nullable=True),  # where the quarantined original was kept
    Column("content_sha256", String(64), nullable=True),  # InboundMessage.content_digest (mail only)
    UniqueConstraint("source", "uidvalidity", "uid", name="uq_inbound_uid"),
    UniqueConstraint("source", "message_id", name="uq_inbound_message_id"),
)

# Personal access tokens of the JSON API (flows/tokens.py): the SHA-256 of the secret, never the
# secret; a revoked token stays, so the list shows who had access.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("owner", String(320), nullable=False),  # recorded as the actor of the token's writes
    Column("role", String(20), nullable=False),  # admin | partner | viewer
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# What people outside L&D did through their signed links, written in the transaction of the action.
# ``once_key`` is the link id for a single-use link (plan approval, result) and NULL otherwise, so the
# unique constraint lets a single-use link be used once even if two posts race.
link_uses = Table(
    "link_uses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("link_id", String(64), nullable=False),
    Column("purpose", String(30), nullable=False),
    Column("request_id", Integer, nullable=False),
    Column("person", String(320), nullable=False),
    Column("action", String(40), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=False),
    Column("once_key", String(64), nullable=True),
    UniqueConstraint("once_key", name="uq_link_uses_once"),
    Index("ix_link_uses_link", "link_id"),
)

# Event outbox: the Prefect events of a change, written in the same transaction as the change, and
# published to Prefect by the pipeline (``flows/events.py``) in batches; ``published_at`` is set only
# once Prefect accepted them. A write never talks to Prefect.
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),  # the Prefect event id (deterministic)
    Column("event", String(120), nullable=False),  # ldflow.request.<trigger|type>, ldflow.outbox.enqueued
    Column("resource", Text, nullable=False),  # JSON
    Column("payload", Text, nullable=False),  # JSON
    Column("occurred", DateTime(timezone=True), nullable=False),  # wall-clock time of the commit
    Column("published_at", DateTime(timezone=True), nullable=True),
    Index("ix_event_outbox_published", "published_at", "id"),
)

# The analytics track of each request (connectors/db/analytics.py), as of the request's head_seq: derived
# from the audit history only, rebuilt for a request whose head_seq moved on (migration 0008). Written with
# it, in its transaction (migration 0010): the values the figures group and sum, in a narrow table of their
# own so a scan reads no JSON (states.analytics_summary.columns), and the latest measurement's verdicts as
# rows of analytics_outcomes, so the figures are GROUP BY queries.
_STAY_COLUMNS = ("received", "diagnosed", "redirected", "designed", "delivered", "measured", "acknowledged",
                 "declined", "cancelled")  # states.lifecycle.State (tests/unit/test_analytics_speed.py checks)
analytics_tracks = Table(
    "analytics_tracks",
    metadata,
    Column("request_id", Integer, primary_key=True, autoincrement=False),
    Column("head_seq", BigInteger, nullable=False),
    Column("track", Text, nullable=False),  # states.analytics.track_json
)

# The SLA clocks' outcomes under one policy (flows/sla.py), a cache like analytics_tracks: per request, the
# digest of the policy it was computed under, the request's head_seq then, and the outcome (the stopped
# clocks' breaches and until when the running ones stay quiet, as flows.sla encodes it). Another policy or
# a newer head_seq: recomputed from the clock summary and replaced. Nothing here is a rule: the policy is
# read from its file on every run (migration 0011).
sla_outcomes = Table(
    "sla_outcomes",
    metadata,
    Column("request_id", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(64), nullable=False),
    Column("head_seq", BigInteger, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("quiet", BigInteger, nullable=True),  # epoch seconds (floor) its running runs are quiet until; NULL: none
    Column("stopped", Text, nullable=False, server_default=""),  # its stopped runs' breached SLAs, comma-separated
    Index("ix_sla_outcomes_due", "digest", "quiet"),  # sla_due: the few past their quiet time
    Index("ix_sla_outcomes_head", "request_id", "digest", "head_seq", "stopped"),  # sla_stale, sla_section: no outcome
)

analytics_facts = Table(
    "analytics_facts",
    metadata,
    Column("request_id", Integer, primary_key=True, autoincrement=False),
    Column("head_seq", BigInteger, nullable=False),  # its track's (the stale check reads no JSON)
    Column("day", String(10), nullable=False),
    Column("month", String(7), nullable=False),
    Column("sponsor", String(320), nullable=False),
    Column("path", String(20), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("reached", Integer, nullable=False),  # states.analytics_summary.STAGE_BITS
    Column("causes", Integer, nullable=False),  # CAUSE_BITS
    Column("delivered_ckpt", Integer, nullable=False),
    Column("all_closed", Integer, nullable=False),
    *(Column(name, Integer, nullable=False) for name in ("scheduled", "sent", "answered", "missed", "flagged",
                                                         "superseded")),
    Column("roi_currency", String(10), nullable=False),
    Column("isolated", Float, nullable=False),
    Column("not_isolated", Float, nullable=False),
    Column("costs", Float, nullable=False),
    *(Column(f"t_{state}", Float, nullable=True) for state in _STAY_COLUMNS),
    Column("plan_approval", Float, nullable=True),
    Column("delivery_to_last_result", Float, nullable=True),
    Index("ix_analytics_facts_sponsor", "sponsor"),
    Index("ix_analytics_facts_head", "head_seq"),
    Index("ix_analytics_facts_money", "roi_currency", "isolated", "not_isolated", "costs"),
    # the groups read in order from the index alone (no sort); each duration's ranks by OFFSET on its own
    Index("ix_analytics_facts_groups", "month", "path", "kind", "reached", "causes", "delivered_ckpt", "all_closed",
          "scheduled", "sent", "answered", "missed", "flagged", "superseded"),
    *(Index(f"ix_analytics_facts_{name}", name) for name in (*(f"t_{s}" for s in _STAY_COLUMNS), "plan_approval",
                                                             "delivery_to_last_result")),
)

analytics_outcomes = Table(  # with its request's filter columns, so the filter needs no join
    "analytics_outcomes",
    metadata,
    Column("request_id", Integer, nullable=False),
    Column("day", String(10), nullable=False),
    Column("sponsor", String(320), nullable=False),
    Column("path", String(20), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("framework", String(40), nullable=False),
    Column("level", Integer, nullable=False),
    Column("outcome", String(20), nullable=False),
    Index("ix_analytics_outcomes_request", "request_id"),
    Index("ix_analytics_outcomes_counts", "framework", "level", "sponsor", "outcome"),
)

# Staff accounts of the web app (`ldflow users`): an argon2 hash, never the password. ``session_epoch``
# is in every session cookie; disabling the account, a new role or a new password bumps it, which
# signs every session of the account out.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # lower-cased
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),  # admin | partner | viewer
    Column("password_hash", String(200), nullable=True),  # argon2id; None: sign-in by link only
    Column("active", Integer, nullable=False, default=1),
    Column("session_epoch", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Sign-in links sent by mail: single use, short-lived. The link carries a signed id; only the id and
# its expiry are stored, so the database alone cannot make a working link.
sign_in_links = Table(
    "sign_in_links",
    metadata,
    Column("id", String(64), primary_key=True),  # random, hex
    Column("user_id", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Index("ix_sign_in_links_user", "user_id"),
)
