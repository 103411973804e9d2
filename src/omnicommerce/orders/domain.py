"""Order rules: the state machine (a table), payment-token rules, order values and errors.

Pure Python: no SQLAlchemy, FastAPI or I/O.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from omnicommerce.platform.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound


class Status(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    FULFILLING = "fulfilling"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class Action(StrEnum):
    PAY = "pay"
    FULFILL = "fulfill"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REFUND = "refund"


# The whole order lifecycle. Anything not in this table is illegal. ``paid --complete-->`` is the
# carry-out sale at a till: nothing to fulfil.
TRANSITIONS: Mapping[tuple[Status, Action], Status] = {
    (Status.PLACED, Action.PAY): Status.PAID,
    (Status.PAID, Action.FULFILL): Status.FULFILLING,
    (Status.PAID, Action.COMPLETE): Status.COMPLETED,
    (Status.FULFILLING, Action.COMPLETE): Status.COMPLETED,
    (Status.PLACED, Action.CANCEL): Status.CANCELLED,
    (Status.PAID, Action.CANCEL): Status.CANCELLED,
    (Status.PAID, Action.REFUND): Status.REFUNDED,
    (Status.FULFILLING, Action.REFUND): Status.REFUNDED,
    (Status.COMPLETED, Action.REFUND): Status.REFUNDED,
}
TERMINAL = frozenset(s for s in Status if not any(src == s for src, _ in TRANSITIONS))


class IllegalTransition(Conflict):
    code = "illegal-transition"
    title = "Not allowed in the order's current status"


def next_status(current: str, action: str) -> Status:
    try:
        return TRANSITIONS[(Status(current), Action(action))]
    except (KeyError, ValueError):
        raise IllegalTransition(
            f"cannot {action} an order that is {current}", status_now=current, action=action
        ) from None


# --- payment tokens ----------------------------------------------------------------------------

_CARD_LIKE = re.compile(r"[\d \-]{12,40}")


def check_payment_token(token: str) -> None:
    """Only provider tokens are accepted; anything that looks like a card number is refused
    before it is stored, hashed, logged or sent anywhere."""
    if _CARD_LIKE.fullmatch(token.strip()) and 12 <= sum(ch.isdigit() for ch in token) <= 19:
        raise CardNumberRejected("card numbers are not accepted; send a payment token")
    if not token.startswith("tok_"):
        raise InvalidPaymentToken("payment_token must be a provider token (tok_…)")


# --- values ------------------------------------------------------------------------------------

_NUMBER_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def new_order_number() -> str:
    """Short, human, unambiguous when read aloud (31^8 ≈ 8.5e11 values; uniqueness enforced)."""
    return "OC-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    name: str
    quantity: int
    unit_price: int
    subtotal: int
    discount: int  # <= 0
    total: int
    adjustments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Payment:
    provider: str | None  # None for cash
    method: str  # card | cash
    reference: str | None
    status: str  # captured | authorized | voided | refunded | cash


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One step of an order's history; ``seq`` is the order's version after it."""

    seq: int
    from_status: str | None
    to_status: str
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    number: str
    channel: str
    location_id: str | None
    customer_id: str | None
    email: str | None
    cart_id: str | None
    status: str
    version: int
    currency: str
    subtotal: int
    discount_total: int
    total: int
    fulfillment: dict[str, Any] | None
    payment: Payment
    placed_at: datetime
    created_at: datetime
    lines: list[OrderLine] = field(default_factory=list)
    history: tuple[StatusChange, ...] = ()
    refunded_total: int = 0  # given back to the payment so far (the refund ledger's sum)


class RefundReason(StrEnum):
    REFUND = "refund"  # the order's own refund (POST /orders/{id}/refund)
    CANCEL = "cancel"  # the order's own cancel
    RETURN = "return"  # fulfillment: units brought back
    EXCHANGE = "exchange"  # fulfillment: the surplus of a cheaper exchange
    UNFILLED = "unfilled"  # fulfillment: units nobody could serve, cancelled


@dataclass(frozen=True, slots=True)
class OrderRefund:
    """One amount given back against an order (the refund ledger's row); ``key`` makes recording
    it idempotent: the same key records once and answers the first entry again."""

    id: str
    order_id: str
    amount: int
    reason: str
    key: str
    actor: str
    created_at: datetime


def refund_grant(wanted: int | None, *, total: int, refunded: int) -> int:
    """What may go back now: ``wanted`` (None: everything) limited to what the payment still holds
    (``total`` captured, ``refunded`` given back already). Never negative."""
    left = max(0, total - refunded)
    return left if wanted is None else max(0, min(wanted, left))


@dataclass(frozen=True, slots=True)
class HistoricalLine:
    sku: str
    name: str
    quantity: int
    unit_price: int
    discount: int = 0  # <= 0


@dataclass(frozen=True, slots=True)
class HistoricalOrder:
    """An order from before the platform (demo loader, migrations): recorded, never re-played."""

    channel: str
    currency: str
    placed_at: datetime
    lines: tuple[HistoricalLine, ...]
    customer_id: str | None = None
    email: str | None = None
    location_id: str | None = None


# --- errors ------------------------------------------------------------------------------------


class OrderNotFound(NotFound):
    code = "order-not-found"
    title = "Order not found"


class OrderChanged(Conflict):
    code = "order-changed"
    title = "Order changed concurrently; reload and retry"


class TotalChanged(Conflict):
    code = "total-changed"
    title = "The cart's total is not the one expected"


class CheckoutConflict(Conflict):
    code = "checkout-conflict"
    title = "Another checkout attempt changed this cart; retry"


class CardNumberRejected(InvalidInput):
    code = "card-number-rejected"
    title = "Card numbers are not accepted"


class InvalidPaymentToken(InvalidInput):
    code = "invalid-payment-token"
    title = "Invalid payment token"


class PaymentDeclined(DomainError):
    code = "payment-declined"
    status = 402
    title = "Payment declined"


class InsufficientFunds(DomainError):
    code = "insufficient-funds"
    status = 402
    title = "Insufficient funds"


class PaymentProviderError(DomainError):
    code = "payment-provider-error"
    status = 502
    title = "Payment provider error"


class PaymentTimeout(DomainError):
    code = "payment-timeout"
    status = 504
    title = "Payment provider timed out"


class StoreKeyRequired(Forbidden):
    code = "store-key-required"
    title = "Store sales are recorded with a POS key bound to a store"


class BadUnitCancellation(InvalidInput):
    code = "bad-unit-cancellation"
    title = "These units are not open on the order"
