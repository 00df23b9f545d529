"""``SqlTokens``: the personal access tokens of the JSON API in the ``api_tokens`` table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from connectors.db.engine import read_transaction, write_transaction
from connectors.db.tables import api_tokens
from connectors.ports.tokens import ApiToken


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite hands back naive UTC


def _token(row: Any) -> ApiToken:
    return ApiToken(id=row.id, name=row.name, owner=row.owner, role=row.role, prefix=row.prefix,
                    created_at=_utc(row.created_at) or row.created_at, created_by=row.created_by,
                    last_used_at=_utc(row.last_used_at), revoked_at=_utc(row.revoked_at))


_COLUMNS = [c for c in api_tokens.c if c.name != "secret_hash"]


class SqlTokens:
    """API tokens in one SQL database (SQLite or PostgreSQL), next to the requests."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, owner: str, role: str, secret_hash: str, prefix: str, created_at: datetime,
            created_by: str) -> ApiToken:
        try:
            with write_transaction(self.engine) as conn:
                token_id = conn.execute(insert(api_tokens).values(
                    name=name, owner=owner, role=role, secret_hash=secret_hash, prefix=prefix,
                    created_at=created_at, created_by=created_by).returning(api_tokens.c.id)).scalar_one()
        except IntegrityError:
            raise ValueError(f"a token named {name!r} exists already") from None
        return ApiToken(id=token_id, name=name, owner=owner, role=role, prefix=prefix, created_at=created_at,
                        created_by=created_by)

    def _one(self, where: Any) -> ApiToken | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(*_COLUMNS).where(where)).first()
        return _token(row) if row is not None else None

    def by_hash(self, secret_hash: str) -> ApiToken | None:
        return self._one(api_tokens.c.secret_hash == secret_hash)

    def by_name(self, name: str) -> ApiToken | None:
        return self._one(api_tokens.c.name == name)

    def all(self) -> list[ApiToken]:
        with read_transaction(self.engine) as conn:
            return [_token(r) for r in conn.execute(select(*_COLUMNS).order_by(api_tokens.c.id))]

    def revoke(self, name: str, at: datetime) -> ApiToken | None:
        with write_transaction(self.engine) as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                         .values(revoked_at=at))
            row = conn.execute(select(*_COLUMNS).where(api_tokens.c.name == name)).first()
        return _token(row) if row is not None else None

    def touch(self, token_id: int, at: datetime) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=at))
