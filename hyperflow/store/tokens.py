"""Token records in the store (see :mod:`hyperflow.handlers.auth` for what they grant)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, exists, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from hyperflow.store.models import TokenRow


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    secret_hash: str
    namespaces: list[str]
    admin: bool
    description: str
    created_at: float
    expires_at: float | None = None  # seconds since the epoch; None: never

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def _record(row: TokenRow) -> TokenRecord:
    return TokenRecord(
        row.id,
        row.secret_hash,
        list(row.namespaces),
        row.admin,
        row.description,
        row.created_at,
        row.expires_at,
    )


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        token_id: str,
        secret_hash: str,
        namespaces: list[str],
        admin: bool,
        description: str,
        *,
        created_at: float | None = None,
        expires_at: float | None = None,
    ) -> TokenRecord:
        with Session(self.engine) as s, s.begin():
            row = TokenRow(
                id=token_id,
                secret_hash=secret_hash,
                namespaces=namespaces,
                admin=admin,
                description=description,
                created_at=time.time() if created_at is None else created_at,
                expires_at=expires_at,
            )
            s.add(row)
            s.flush()
            return _record(row)

    def get(self, token_id: str) -> TokenRecord | None:
        with Session(self.engine) as s:
            row = s.get(TokenRow, token_id)
            return _record(row) if row is not None else None

    def list(self) -> list[TokenRecord]:
        with Session(self.engine) as s:
            return [_record(r) for r in s.scalars(select(TokenRow).order_by(TokenRow.created_at))]

    def delete(self, token_id: str) -> bool:
        with Session(self.engine) as s, s.begin():
            result = s.execute(delete(TokenRow).where(TokenRow.id == token_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def any(self) -> bool:
        with Session(self.engine) as s:
            return bool(s.scalar(select(exists().where(TokenRow.id.is_not(None)))))
