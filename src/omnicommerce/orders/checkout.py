"""Workflows that straddle the payment provider: checkout, store sale, cancel, refund.

No database transaction is open while the provider is called: each workflow commits its first
transaction, calls the provider with an idempotency key derived from what it is paying for,
then records the outcome in a second transaction — or undoes the first (void, release, reopen).
A retried or resumed workflow reuses the key, so the provider replays instead of charging twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from omnicommerce.carts import service as carts
from omnicommerce.carts.domain import COMPLETED, Cart
from omnicommerce.customers import service as customers
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import (
    Action,
    CheckoutConflict,
    InsufficientFunds,
    Order,
    Payment,
    PaymentDeclined,
    PaymentProviderError,
    PaymentTimeout,
    TotalChanged,
    check_payment_token,
)
from omnicommerce.orders.payments import (
    SUCCESS,
    PaymentProvider,
    PaymentResult,
    ProviderError,
    ProviderTimeout,
)
from omnicommerce.orders.schemas import CardPayment, OrderOut, StoreSaleCreate
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.db import Database
from omnicommerce.platform.idempotency import Idempotency, fingerprint
from omnicommerce.platform.ids import new_id
from omnicommerce.pricing.domain import Quote


@dataclass(frozen=True, slots=True)
class CheckoutCommand:
    payment_token: str
    fulfillment: dict[str, Any] | None = None
    expected_total: int | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class CheckoutOutcome:
    order: Order
    created: bool  # False: the cart had already checked out (or a concurrent attempt did)


def checkout(
    db: Database,
    provider: PaymentProvider,
    actor: Principal,
    cart_id: str,
    cmd: CheckoutCommand,
    *,
    ttl_seconds: int,
) -> CheckoutOutcome:
    """Check a cart out into a paid order, exactly once per cart.

    Tx A: cart open → checking_out, holds topped up, priced. Then the sale at the provider, keyed
    by cart id + version. Tx B: holds → allocations, coupons redeemed, order ``paid``, cart
    completed. A failure after Tx A voids the payment, releases the holds and reopens the cart.
    """
    check_payment_token(cmd.payment_token)
    started = _start(db, actor, cart_id, cmd, ttl_seconds=ttl_seconds)
    if isinstance(started, Order):
        return CheckoutOutcome(started, created=False)
    cart, quote = started
    key = f"checkout:{cart.id}:{cart.version}"
    result = _authorize(db, provider, cart, quote, cmd.payment_token, key)
    payment = Payment(provider.name, "card", result.reference, result.status)
    try:
        with db.uow() as uow:
            order = orders.place_checkout_order(uow, cart=cart, quote=quote, payment=payment)
            uow.commit()
    except Exception:
        _undo(db, provider, cart, key)
        raise
    if order is None:  # a concurrent attempt with the same payment completed the cart first
        return CheckoutOutcome(_order_of(db, cart.id), created=False)
    return CheckoutOutcome(order, created=True)


def _start(
    db: Database, actor: Principal, cart_id: str, cmd: CheckoutCommand, *, ttl_seconds: int
) -> Order | tuple[Cart, Quote]:
    with db.uow() as uow:
        cart = carts.begin_checkout(
            uow, actor, cart_id, fulfillment=cmd.fulfillment, email=cmd.email, ttl_seconds=ttl_seconds
        )
        if cart.status == COMPLETED:
            order = orders.order_for_cart(uow, cart.id)
            if order is None:
                raise CheckoutConflict(f"cart {cart.id!r} is completed but has no order")
            return order
        quote = carts.quote_cart(uow, cart)
        if cmd.expected_total is not None and cmd.expected_total != quote.total:
            raise TotalChanged(
                f"the cart's total is {quote.total}, not {cmd.expected_total}",
                total=quote.total,
                currency=quote.currency,
            )
        uow.commit()
        return cart, quote


def _authorize(
    db: Database, provider: PaymentProvider, cart: Cart, quote: Quote, token: str, key: str
) -> PaymentResult:
    try:
        result = provider.authorize(quote.total, quote.currency, token, key, capture=True)
    except ProviderTimeout as exc:
        _undo(db, provider, cart, key)
        raise PaymentTimeout("the payment provider did not answer in time; nothing was charged") from exc
    except ProviderError as exc:
        _undo(db, provider, cart, key)
        raise PaymentProviderError("the payment provider failed; nothing was charged") from exc
    if result.status in SUCCESS:
        return result
    _reopen(db, cart)
    if result.status == "declined":
        raise PaymentDeclined("the payment was declined; try another payment method")
    if result.status == "insufficient_funds":
        raise InsufficientFunds("the payment method has insufficient funds")
    raise PaymentProviderError(f"the payment provider answered {result.status!r}")


def _undo(db: Database, provider: PaymentProvider, cart: Cart, key: str) -> None:
    """Void whatever the provider did under ``key``, then release and reopen. If the void itself
    fails the cart stays ``checking_out``: a retry resumes and the provider replays by key."""
    provider.void(None, key)
    _reopen(db, cart)


def _reopen(db: Database, cart: Cart) -> None:
    with db.uow() as uow:
        carts.abort_checkout(uow, cart_id=cart.id, version=cart.version)
        uow.commit()


def _order_of(db: Database, cart_id: str) -> Order:
    with db.uow(readonly=True) as uow:
        order = orders.order_for_cart(uow, cart_id)
    if order is None:
        raise CheckoutConflict(f"another checkout attempt changed cart {cart_id!r}; retry")
    return order


# --- store sale --------------------------------------------------------------------------------


def store_sale(
    db: Database, provider: PaymentProvider, actor: Principal, cmd: StoreSaleCreate, idem: Idempotency
) -> JSONResponse:
    """A till sale recorded after the fact; the card (if any) is charged before the order is written.

    The charge's key includes the body's fingerprint: the same Idempotency-Key and body replay
    both the charge and the answer; another body under the same key gets (and voids) its own charge.
    """
    orders.require_store_key(actor)
    assert actor.channel is not None
    if isinstance(cmd.payment, CardPayment):
        check_payment_token(cmd.payment.token)
    with db.uow(readonly=True) as uow:
        quote = orders.quote_lines(
            uow, channel=actor.channel, lines=cmd.demand(), customer_id=cmd.customer_id
        )
    key = f"store-sale:{actor.id}:{idem.key or new_id('sale')}:{fingerprint(cmd)}"
    payment = _pay_store_sale(provider, cmd, quote, key)
    try:
        with db.uow() as uow:

            def produce() -> OrderOut:
                customer_id = cmd.customer_id
                if customer_id is None and cmd.email is not None:
                    customer_id = customers.find_or_create_by_email(
                        uow, email=cmd.email, channel=actor.channel or ""
                    )
                return OrderOut.of(
                    orders.record_store_sale(
                        uow,
                        actor,
                        lines=cmd.demand(),
                        quote=quote,
                        payment=payment,
                        customer_id=customer_id,
                        email=cmd.email,
                    )
                )

            return idem.run(uow, cmd, produce)
    except Exception:
        if payment.reference is not None:
            provider.void(payment.reference, key)
        raise


def _pay_store_sale(provider: PaymentProvider, cmd: StoreSaleCreate, quote: Quote, key: str) -> Payment:
    if not isinstance(cmd.payment, CardPayment):
        return Payment(None, "cash", None, "cash")
    try:
        result = provider.authorize(quote.total, quote.currency, cmd.payment.token, key, capture=True)
    except ProviderTimeout as exc:
        provider.void(None, key)
        raise PaymentTimeout("the payment provider did not answer in time; nothing was charged") from exc
    except ProviderError as exc:
        raise PaymentProviderError("the payment provider failed; nothing was charged") from exc
    if result.status == "declined":
        raise PaymentDeclined("the payment was declined")
    if result.status == "insufficient_funds":
        raise InsufficientFunds("the payment method has insufficient funds")
    if result.status not in SUCCESS:
        raise PaymentProviderError(f"the payment provider answered {result.status!r}")
    return Payment(provider.name, "card", result.reference, result.status)


# --- after the sale ----------------------------------------------------------------------------


def cancel(db: Database, provider: PaymentProvider, actor: Principal, order_id: str) -> Order:
    """Cancel a placed/paid order: money back through the provider, then one transaction moves
    the order to cancelled and gives its allocations back to stock (a second cancel is 409)."""
    with db.uow(readonly=True) as uow:
        order = orders.check_action(uow, actor, order_id, Action.CANCEL)
    status = _give_back(provider, order, key=f"cancel:{order.id}:{order.version}")
    with db.uow() as uow:
        order = orders.cancel_order(uow, actor, order, payment_status=status)
        uow.commit()
    return order


def refund(db: Database, provider: PaymentProvider, actor: Principal, order_id: str) -> Order:
    """Refund the full total of a paid, fulfilling or completed order."""
    with db.uow(readonly=True) as uow:
        order = orders.check_action(uow, actor, order_id, Action.REFUND)
    status = _give_back(provider, order, key=f"refund:{order.id}:{order.version}")
    with db.uow() as uow:
        order = orders.refund_order(uow, actor, order, payment_status=status)
        uow.commit()
    return order


def _give_back(provider: PaymentProvider, order: Order, *, key: str) -> str:
    """Refund a captured charge, void an authorized one; cash is handed back at the till."""
    ref, status = order.payment.reference, order.payment.status
    try:
        if ref is not None and status == "captured":
            return provider.refund(ref, order.total, key).status
        if ref is not None and status == "authorized":
            return provider.void(ref, key).status
    except (ProviderTimeout, ProviderError) as exc:
        raise PaymentProviderError("the payment provider failed; the order is unchanged, retry") from exc
    return "refunded" if order.payment.method == "cash" else status
