"""``Idempotency-Key`` for creating POSTs.

The same key with the same body replays the first response; the same key with another body is
a 422. The record is written in the creating transaction, so the response is remembered if and
only if its effects committed.

Optimistic: nothing is looked up before the work. A request runs, then inserts its record just
before committing. If the key was taken (a repeat, or a racing request that committed first —
the insert waits for it), the primary key refuses the record: the request's transaction rolls
back, taking everything it did with it, and the stored response is replayed (or 422 for another
body). An error from a repeat (the first request's effects may make the work fail now) also
gives way to the stored response. Work outside the transaction must be idempotent by its own
key: the checkout's payment is keyed by cart and version, so a repeat never charges twice.

Pessimistic, for work outside the transaction that a racing repeat could wrongly undo (a till's
card charge, voided when its request fails): :meth:`Idempotency.claim` takes the key first, in a
transaction of its own, as an *in-flight* record; a concurrent repeat gets 409 at once, before
any work. :meth:`Idempotency.commit_claimed` then fills the record in; :meth:`Idempotency.release` drops
it when the work failed (after undoing it), so a retry may run. A claim left by a crashed process
can be taken over after ``CLAIM_TIMEOUT``. ``commit`` and ``record`` stay one INSERT: the hot
paths (checkout) never pay for a claim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from omnicommerce.platform import clock, direct
from omnicommerce.platform.db import Database, UnitOfWork, UTCDateTime, metadata
from omnicommerce.platform.errors import Conflict, DomainError, InvalidInput
from omnicommerce.platform.ids import new_id

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


class IdempotencyKeyInUse(Conflict):
    code = "idempotency-key-in-use"
    title = "Idempotency key in use by a concurrent request"


class BadIdempotencyKey(InvalidInput):
    code = "bad-idempotency-key"
    title = "Bad Idempotency-Key"


def fingerprint(body: Any) -> str:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


IN_FLIGHT = 0  # the status of a claimed key whose request has not answered yet (body: attempt id)
CLAIM_TIMEOUT = timedelta(minutes=10)  # a claim this old was left by a crashed request

# What ``produce`` returns: the response model (sent with ``run``'s status) or (model, status).
Produced = BaseModel | tuple[BaseModel, int]


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
        produce: Callable[[], Produced],
        *,
        status: int = 201,
    ) -> JSONResponse:
        """Run ``produce`` in ``uow`` and commit it with its response; replay on a repeat."""
        try:
            produced = produce()
        except (DomainError, IntegrityError):
            if self.key is None:
                raise
            uow.release()  # the replay reads on a connection of its own
            if (replay := self.replay(uow.db, body)) is not None:
                return replay
            raise
        model, code = produced if isinstance(produced, tuple) else (produced, status)
        return self.commit(uow, body, code, model.__pydantic_serializer__.to_json(model))

    def commit(self, uow: UnitOfWork, body: Any, status: int, encoded: bytes) -> JSONResponse:
        """Record ``encoded`` (the response body, JSON) as the answer to this key and commit
        ``uow``; if the key already answered, roll ``uow`` back and replay that answer instead."""
        if not self.record(uow, body, status, encoded):
            return self.replayed(uow.db, body)
        uow.commit()
        return encoded_json(status, encoded)

    def record(self, uow: UnitOfWork, body: Any, status: int, encoded: bytes) -> bool:
        """Insert the record of the response ``encoded`` (JSON) in ``uow``
        (the caller commits). False: the key already answered; ``uow`` is rolled back and its
        connection released then. True without a key (nothing to remember)."""
        if self.key is None:
            return True
        try:
            direct.execute(
                uow.conn,
                _INSERT_RECORD,
                {
                    "scope": self.scope,
                    "key": self.key,
                    "fingerprint": fingerprint(body),
                    "status": status,
                    "body": encoded.decode(),
                    "created_at": clock.now(),
                },
            )
        except IntegrityError:
            uow.release()
            return False
        return True

    def replay(self, db: Database, body: Any) -> JSONResponse | None:
        """The stored response to this key, if any (read in its own transaction);
        :class:`IdempotencyConflict` when it answered another body."""
        if self.key is None:
            return None
        with db.uow(readonly=True) as uow:
            row = uow.conn.execute(
                select(idempotency_records).where(
                    idempotency_records.c.scope == self.scope, idempotency_records.c.key == self.key
                )
            ).first()
        if row is None:
            return None
        if row.fingerprint != fingerprint(body):
            raise IdempotencyConflict(
                "this Idempotency-Key was already used with a different request body; use a new key"
            )
        if row.status == IN_FLIGHT:
            raise IdempotencyKeyInUse("this Idempotency-Key is in use by another request; retry")
        response = encoded_json(row.status, row.body.encode())
        response.headers["Idempotent-Replayed"] = "true"
        return response

    def replayed(self, db: Database, body: Any) -> JSONResponse:
        """The stored response to a key :meth:`record` found taken."""
        replay = self.replay(db, body)
        if replay is None:  # the record vanished between the two statements
            raise IdempotencyKeyInUse("this Idempotency-Key is in use by another request; retry")
        return replay

    def claim(self, db: Database, body: Any) -> str | JSONResponse:
        """Take the key before the work (see the module's doc). Returns the *attempt* id to derive
        outside keys from (the payment's), or the stored answer on a repeat; raises
        :class:`IdempotencyKeyInUse` while another request holds the key. A takeover of a claim
        left by a crashed request continues its attempt (the gateway replays what it did)."""
        if self.key is None:
            return new_id("att")
        attempt = new_id("att")
        values = {"fingerprint": fingerprint(body), "status": IN_FLIGHT, "created_at": clock.now()}
        with db.uow() as uow:
            try:
                uow.conn.execute(
                    _INSERT_RECORD, {"scope": self.scope, "key": self.key, "body": attempt, **values}
                )
            except IntegrityError:
                uow.release()
            else:
                uow.commit()
                return attempt
        with db.uow() as uow:
            stale = idempotency_records.c.created_at < clock.now() - CLAIM_TIMEOUT
            taken = uow.conn.execute(
                self._mine(IN_FLIGHT).where(stale).values(values).returning(idempotency_records.c.body)
            ).first()
            if taken is not None:
                uow.commit()
                return str(taken.body)
        return self.replayed(db, body)

    def release(self, db: Database) -> None:
        """Give a claimed key up after the work failed (and was undone): a retry may run."""
        if self.key is None:
            return
        with db.uow() as uow:
            uow.conn.execute(
                delete(idempotency_records).where(
                    idempotency_records.c.scope == self.scope,
                    idempotency_records.c.key == self.key,
                    idempotency_records.c.status == IN_FLIGHT,
                )
            )
            uow.commit()

    def commit_claimed(self, uow: UnitOfWork, status: int, encoded: bytes) -> JSONResponse:
        """Record the answer in the key this request claimed and commit ``uow`` with it."""
        if (
            self.key is not None
            and not uow.conn.execute(
                self._mine(IN_FLIGHT).values(status=status, body=encoded.decode())
            ).rowcount
        ):
            raise IdempotencyKeyInUse("this Idempotency-Key was taken over by another request; retry")
        uow.commit()
        return encoded_json(status, encoded)

    def _mine(self, status: int) -> Any:
        return update(idempotency_records).where(
            idempotency_records.c.scope == self.scope,
            idempotency_records.c.key == self.key,
            idempotency_records.c.status == status,
        )


_INSERT_RECORD = insert(idempotency_records)  # built once; values come as execute parameters


class _EncodedJSONResponse(JSONResponse):
    """A JSON response whose body is already encoded (not serialised a second time)."""

    def render(self, content: Any) -> bytes:
        assert isinstance(content, bytes)
        return content


def encoded_json(status: int, encoded: bytes) -> JSONResponse:
    """The response for a body already encoded as JSON (e.g. the bytes stored for a key)."""
    return _EncodedJSONResponse(encoded, status_code=status)
