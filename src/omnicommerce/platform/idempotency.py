"""``Idempotency-Key`` for creating POSTs.

The same key with the same body replays the first response; the same key with another body is
a 422. The record is written in the creating transaction, so the response is remembered if and
only if its effects committed. Two racing requests with one key: the loser's insert of the
record violates the primary key, its transaction rolls back, and it replays the winner's answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError

from omnicommerce.platform import clock
from omnicommerce.platform.db import UnitOfWork, UTCDateTime, metadata
from omnicommerce.platform.errors import DomainError, InvalidInput

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("scope", String(200), primary_key=True),  # principal + method + path
    Column("key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)


class IdempotencyConflict(DomainError):
    code = "idempotency-key-reused"
    status = 422
    title = "Idempotency key reused with a different request"


class BadIdempotencyKey(InvalidInput):
    code = "bad-idempotency-key"
    title = "Bad Idempotency-Key"


def fingerprint(body: Any) -> str:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Idempotency:
    """Built per request by the API layer; ``key`` is None when the client sent none."""

    key: str | None
    scope: str

    def __post_init__(self) -> None:
        if self.key is not None and not (1 <= len(self.key) <= 200):
            raise BadIdempotencyKey("Idempotency-Key must be 1 to 200 characters")

    def run(
        self,
        uow: UnitOfWork,
        body: Any,
        produce: Callable[[], BaseModel],
        *,
        status: int = 201,
    ) -> JSONResponse:
        """Run ``produce`` once per key and commit; replay the stored answer on a repeat."""
        if self.key is None:
            result = produce()
            uow.commit()
            return _json(status, result.model_dump(mode="json"))
        fp = fingerprint(body)
        replay = self._stored(uow, fp)
        if replay is not None:
            return replay
        result = produce()
        payload = result.model_dump(mode="json")
        try:
            uow.conn.execute(
                insert(idempotency_records).values(
                    scope=self.scope,
                    key=self.key,
                    fingerprint=fp,
                    status=status,
                    body=orjson.dumps(payload).decode(),
                    created_at=clock.now(),
                )
            )
            uow.commit()
        except IntegrityError:
            uow.rollback()
            uow.close()
            with uow.db.uow(readonly=True) as fresh:
                replay = self._stored(fresh, fp)
            if replay is None:
                raise
            return replay
        return _json(status, payload)

    def _stored(self, uow: UnitOfWork, fp: str) -> JSONResponse | None:
        row = uow.conn.execute(
            select(idempotency_records).where(
                idempotency_records.c.scope == self.scope, idempotency_records.c.key == self.key
            )
        ).first()
        if row is None:
            return None
        if row.fingerprint != fp:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request body; use a new key"
            )
        response = _json(row.status, orjson.loads(row.body))
        response.headers["Idempotent-Replayed"] = "true"
        return response


def _json(status: int, payload: Any) -> JSONResponse:
    return JSONResponse(payload, status_code=status)
