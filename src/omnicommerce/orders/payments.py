"""Payment providers: the interface checkout talks to, and the built-in ``test`` gateway.

Only provider tokens cross this boundary — never a card number or CVV. Every call carries an
idempotency key: retrying a call with its key replays the first outcome, which is what lets a
crashed or timed-out checkout resume without charging twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Row

from omnicommerce.orders.domain import check_payment_token
from omnicommerce.orders.models import payment_test_charges as charges
from omnicommerce.platform import clock, direct
from omnicommerce.platform.db import DIALECTS, Database, conflict_insert
from omnicommerce.platform.ids import new_id

PaymentStatus = Literal[
    "authorized",
    "captured",
    "declined",
    "insufficient_funds",
    "error",
    "voided",
    "refunded",
    "partially_refunded",
    "refund_exceeds_charge",
    "not_refundable",
    "not_found",
]
SUCCESS = frozenset({"authorized", "captured"})
# A charge that can still be refunded; "refunded" once its refunds reach what it captured.
REFUNDABLE = frozenset({"captured", "partially_refunded"})


@dataclass(frozen=True, slots=True)
class PaymentResult:
    status: PaymentStatus
    reference: str | None
    amount: int


class ProviderTimeout(Exception):
    """No answer in time. The gateway may have acted: void by the same idempotency key."""


class ProviderError(Exception):
    """The gateway answered with an error (not a decline)."""


class PaymentProvider(Protocol):
    name: str

    def authorize(
        self, amount: int, currency: str, token: str, idempotency_key: str, capture: bool
    ) -> PaymentResult:
        """Authorize (``capture=True``: a sale) ``amount`` minor units against ``token``."""
        ...

    def capture(self, reference: str, idempotency_key: str) -> PaymentResult: ...

    def void(self, reference: str | None, idempotency_key: str) -> PaymentResult:
        """Cancel a charge by its reference or, when the authorize call gave no answer, by the
        idempotency key that authorize was called with."""
        ...

    def refund(self, reference: str, amount: int, idempotency_key: str) -> PaymentResult: ...


# Token → outcome of the test gateway; other tok_ tokens are declined like unknown cards.
_TEST_OUTCOMES: dict[str, str] = {
    "tok_visa": "ok",
    "tok_success": "ok",
    "tok_mastercard": "ok",
    "tok_decline": "declined",
    "tok_insufficient_funds": "insufficient_funds",
    "tok_timeout": "timeout",
}


class TestPaymentProvider:
    """A tokenizing gateway simulator with its own table, so it is idempotent across processes.

    Each call runs in its own short transaction, as a remote gateway would commit on its side
    regardless of what the caller's transaction does.
    """

    __test__ = False  # not a pytest class
    name = "test"

    def __init__(self, db: Database) -> None:
        self.db = db

    def authorize(
        self, amount: int, currency: str, token: str, idempotency_key: str, capture: bool
    ) -> PaymentResult:
        check_payment_token(token)
        outcome = _TEST_OUTCOMES.get(token, "declined")
        status = ("captured" if capture else "authorized") if outcome in ("ok", "timeout") else outcome
        result, fresh = self._record(
            idempotency_key, kind="charge", parent=None, status=status, amount=amount, currency=currency
        )
        if outcome == "timeout" and fresh:  # the first call times out; a retry by key sees what happened
            raise ProviderTimeout("test gateway: no answer (the charge was recorded)")
        return result

    def capture(self, reference: str, idempotency_key: str) -> PaymentResult:
        return self._change(reference, None, frm=("authorized",), to="captured")

    def void(self, reference: str | None, idempotency_key: str) -> PaymentResult:
        return self._change(reference, idempotency_key, frm=("authorized", "captured"), to="voided")

    def refund(self, reference: str, amount: int, idempotency_key: str) -> PaymentResult:
        """Refund ``amount`` of a captured charge, as a real gateway does: refunds of one charge
        never add up to more than it captured — one that would is refused
        (``refund_exceeds_charge``, nothing recorded, so the key stays free) — and the charge is
        ``partially_refunded`` until they reach it, then ``refunded``. Idempotent by key.

        The charge row is locked first (PostgreSQL; SQLite serialises writers), so concurrent
        refunds of one charge are checked one after the other."""
        with self.db.engine.begin() as conn:
            charge = conn.execute(
                select(charges)
                .where(charges.c.reference == reference, charges.c.kind == "charge")
                .with_for_update()
            ).first()
            if (done := _by_key(conn, idempotency_key)) is not None:
                return _result(done)  # a retry: replay the first outcome
            if charge is None:
                return PaymentResult("not_found", None, 0)
            if charge.status not in REFUNDABLE or amount <= 0:
                return PaymentResult("not_refundable", None, amount)
            refunded = _refunded(conn, reference) + amount
            if refunded > charge.amount:
                return PaymentResult("refund_exceeds_charge", None, amount)
            row = self._insert(
                conn,
                idempotency_key,
                kind="refund",
                parent=reference,
                status="refunded",
                amount=amount,
                currency=charge.currency,
            )
            if row is None:  # the key was taken meanwhile by another charge's refund
                return _result(_by_key(conn, idempotency_key))
            conn.execute(
                update(charges)
                .where(charges.c.reference == reference)
                .values(
                    status="refunded" if refunded == charge.amount else "partially_refunded",
                    updated_at=clock.now(),
                )
            )
        return _result(row)

    def _record(
        self, key: str, *, kind: str, parent: str | None, status: str, amount: int, currency: str
    ) -> tuple[PaymentResult, bool]:
        """The operation recorded under ``key``, and whether this call recorded it.

        One ``INSERT … ON CONFLICT DO NOTHING RETURNING``; only a repeat (nothing returned; on
        PostgreSQL after waiting for a racing call with the key to commit) reads the first outcome.
        Each statement commits by itself: the INSERT is the whole operation.
        """
        with self.db.each_statement_commits() as conn:
            row = self._insert(
                conn, key, kind=kind, parent=parent, status=status, amount=amount, currency=currency
            )
            if row is not None:
                return _result(row), True
            return _result(_by_key(conn, key)), False  # a retry: replay the first outcome

    def _insert(
        self,
        conn: Connection,
        key: str,
        *,
        kind: str,
        parent: str | None,
        status: str,
        amount: int,
        currency: str,
    ) -> Row | None:
        """The operation's row, or None when ``key`` was recorded already."""
        now = clock.now()
        params = {
            "idempotency_key": key,
            "reference": new_id("tch"),
            "kind": kind,
            "parent_reference": parent,
            "status": status,
            "amount": amount,
            "currency": currency,
            "created_at": now,
            "updated_at": now,
        }
        return direct.execute(conn, _INSERT_CHARGE[self.db.dialect], params).first()

    def _change(
        self, reference: str | None, key: str | None, *, frm: tuple[str, ...], to: str
    ) -> PaymentResult:
        with self.db.engine.begin() as conn:
            where = charges.c.reference == reference if reference else charges.c.idempotency_key == key
            conn.execute(
                update(charges)
                .where(where, charges.c.kind == "charge", charges.c.status.in_(frm))
                .values(status=to, updated_at=clock.now())
            )
            row = conn.execute(select(charges).where(where)).first()
        return PaymentResult("not_found", None, 0) if row is None else _result(row)


# Built once per dialect; the values come as execute parameters.
_INSERT_CHARGE = {
    d: conflict_insert(charges, d)
    .on_conflict_do_nothing(index_elements=[charges.c.idempotency_key])
    .returning(*charges.c)
    for d in DIALECTS
}


def _by_key(conn: Connection, key: str) -> Row | None:
    return conn.execute(select(charges).where(charges.c.idempotency_key == key)).first()


def _refunded(conn: Connection, reference: str) -> int:
    """What the charge's refunds gave back so far."""
    total = conn.execute(
        select(func.coalesce(func.sum(charges.c.amount), 0)).where(
            charges.c.parent_reference == reference, charges.c.kind == "refund"
        )
    ).scalar_one()
    return int(total)


def _result(row: Row | None) -> PaymentResult:
    assert row is not None
    return PaymentResult(row.status, row.reference, row.amount)


def provider_for(db: Database, name: str = "test") -> PaymentProvider:
    """The configured provider; ``test`` is the only one shipped."""
    if name != "test":
        raise ValueError(f"unknown payment provider {name!r}")
    return TestPaymentProvider(db)
