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
from omnicommerce.carts.domain import CHECKING_OUT, COMPLETED, VOIDING, Cart
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
from omnicommerce.platform.db import Database, UnitOfWork
from omnicommerce.platform.errors import DomainError
from omnicommerce.platform.idempotency import Idempotency, encoded_json
from omnicommerce.pricing.domain import Quote


@dataclass(frozen=True, slots=True)
class CheckoutCommand:
    payment_token: str
    fulfillment: dict[str, Any] | None = None
    expected_total: int | None = None
    email: str | None = None


def checkout(
    db: Database,
    provider: PaymentProvider,
    actor: Principal,
    cart_id: str,
    cmd: CheckoutCommand,
    *,
    idem: Idempotency,
    body: Any,
    ttl_seconds: int,
) -> JSONResponse:
    """Check a cart out into a paid order, exactly once per cart: 201 with the new order, 200
    with the order the cart already checked out into.

    Tx A: cart open → checking_out and priced. Then the sale at the provider, keyed by cart id +
    version. Tx B: holds → allocations, coupons redeemed, order ``paid``, cart completed, and the
    ``Idempotency-Key`` record. A failure after Tx A voids the payment (cart ``voiding`` meanwhile),
    releases the holds and reopens the cart. A repeat of an answered key replays that answer
    (nothing is charged: the cart is completed, or the payment key replays at the provider).
    """
    check_payment_token(cmd.payment_token)
    try:
        started = _start(db, provider, actor, cart_id, cmd, idem, body, ttl_seconds=ttl_seconds)
        if isinstance(started, JSONResponse):
            return started
        cart, quote = started
        key = _payment_key(cart)
        result = _authorize(db, provider, cart, quote, cmd.payment_token, key)
        payment = Payment(provider.name, "card", result.reference, result.status)
        return _place(db, provider, cart, quote, payment, key, idem, body)
    except DomainError:
        if (replay := idem.replay(db, body)) is not None:
            return replay  # a repeat of an answered request: that answer stands
        raise


def _start(
    db: Database,
    provider: PaymentProvider,
    actor: Principal,
    cart_id: str,
    cmd: CheckoutCommand,
    idem: Idempotency,
    body: Any,
    *,
    ttl_seconds: int,
) -> JSONResponse | tuple[Cart, Quote]:
    """Tx A; the final answer when the cart had already checked out. A cart left ``voiding`` by
    a failed attempt gets its void finished and reopens first."""
    for _ in range(2):
        with db.uow() as uow:
            cart = carts.begin_checkout(
                uow, actor, cart_id, fulfillment=cmd.fulfillment, email=cmd.email, ttl_seconds=ttl_seconds
            )
            if cart.status == COMPLETED:
                return _answer_with_existing(uow, idem, body, cart.id)
            if cart.status != VOIDING:
                quote = carts.quote_cart(uow, cart)
                if cmd.expected_total is not None and cmd.expected_total != quote.total:
                    raise TotalChanged(
                        f"the cart's total is {quote.total}, not {cmd.expected_total}",
                        total=quote.total,
                        currency=quote.currency,
                    )
                uow.commit()
                return cart, quote
        _void_and_reopen(db, provider, cart, _payment_key(cart))
    raise CheckoutConflict(f"another checkout attempt changed cart {cart_id!r}; retry")


def _payment_key(cart: Cart) -> str:
    """One payment per checkout attempt: a resumed attempt (same version) replays it."""
    return f"checkout:{cart.id}:{cart.version}"


def _place(
    db: Database,
    provider: PaymentProvider,
    cart: Cart,
    quote: Quote,
    payment: Payment,
    key: str,
    idem: Idempotency,
    body: Any,
) -> JSONResponse:
    """Tx B: the order, committed together with the Idempotency-Key record."""
    order: Order | None = None
    try:
        with db.uow() as uow:
            order = orders.place_checkout_order(uow, cart=cart, quote=quote, payment=payment)
            if order is not None:
                encoded = _encoded(order)
                if idem.record(uow, body, 201, encoded):
                    uow.commit()
                    return encoded_json(201, encoded)
    except Exception:
        _undo(db, provider, cart, key)
        raise
    if order is not None:
        # The key had already answered (its record won): this attempt's order rolled back.
        _undo(db, provider, cart, key)
        return idem.replayed(db, body)
    # A concurrent attempt on the same cart (same payment key) completed it first.
    with db.uow() as uow:
        return _answer_with_existing(uow, idem, body, cart.id)


def _answer_with_existing(uow: UnitOfWork, idem: Idempotency, body: Any, cart_id: str) -> JSONResponse:
    order = orders.order_for_cart(uow, cart_id)
    if order is None:
        raise CheckoutConflict(f"another checkout attempt changed cart {cart_id!r}; retry")
    return idem.commit(uow, body, 200, _encoded(order))


def _encoded(order: Order) -> bytes:
    out = OrderOut.of(order)
    return out.__pydantic_serializer__.to_json(out)


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
    """Void what the provider did under ``key`` — unless an order was placed with it by a
    concurrent attempt on the same cart — then release the holds and reopen.

    The cart goes ``voiding`` first, so that no attempt can complete it with this payment while
    it is being voided. If the void fails, the cart stays ``voiding`` and the next checkout of it
    finishes the void before anything else: a payment never stands without its order.
    """
    with db.uow() as uow:
        must_void = carts.begin_void(uow, cart_id=cart.id, version=cart.version)
        uow.commit()
    if must_void:
        _void_and_reopen(db, provider, cart, key)


def settle_cut_off(db: Database, provider: PaymentProvider, cart: Cart) -> None:
    """A checkout nobody finished (``checking_out`` or ``voiding`` long past any live attempt):
    void its payment unless its order was placed, and reopen the cart."""
    key = _payment_key(cart)
    if cart.status == VOIDING:
        _void_and_reopen(db, provider, cart, key)
    else:
        _undo(db, provider, cart, key)


def _void_and_reopen(db: Database, provider: PaymentProvider, cart: Cart, key: str) -> None:
    try:
        provider.void(None, key)
    except (ProviderError, ProviderTimeout) as exc:
        raise PaymentProviderError(
            "the payment provider failed while voiding this checkout's payment; the cart is held"
            " until the void goes through: retry the checkout"
        ) from exc
    _reopen(db, cart, status=VOIDING)


def _reopen(db: Database, cart: Cart, *, status: str = CHECKING_OUT) -> None:
    with db.uow() as uow:
        carts.abort_checkout(uow, cart_id=cart.id, version=cart.version, status=status)
        uow.commit()


# --- store sale --------------------------------------------------------------------------------


def store_sale(
    db: Database, provider: PaymentProvider, actor: Principal, cmd: StoreSaleCreate, idem: Idempotency
) -> JSONResponse:
    """A till sale recorded after the fact; the card (if any) is charged before the order is written.

    The ``Idempotency-Key`` is claimed before the charge: a concurrent repeat gets 409 without
    charging, so a failing request voids its charge knowing no other request recorded an order
    with it. The charge is keyed by the claim's attempt: a repeat after the answer replays it, a
    retry after a failure charges afresh, and a takeover of a crashed request's claim replays its
    charge at the gateway instead of charging twice.
    """
    orders.require_store_key(actor)
    assert actor.channel is not None
    if isinstance(cmd.payment, CardPayment):
        check_payment_token(cmd.payment.token)
    with db.uow(readonly=True) as uow:
        quote = orders.quote_lines(
            uow, channel=actor.channel, lines=cmd.demand(), customer_id=cmd.customer_id
        )
    attempt = idem.claim(db, cmd)
    if isinstance(attempt, JSONResponse):
        return attempt  # a repeat of an answered sale
    key = f"store-sale:{actor.id}:{attempt}"
    payment: Payment | None = None
    try:
        payment = _pay_store_sale(provider, cmd, quote, key)
        with db.uow() as uow:
            order = _record_store_sale(uow, actor, cmd, quote, payment)
            return idem.commit_claimed(uow, 201, order.__pydantic_serializer__.to_json(order))
    except BaseException:
        try:
            if payment is not None and payment.reference is not None:
                provider.void(payment.reference, key)
        finally:
            idem.release(db)  # a retry is a new attempt with a charge of its own
        raise


def _record_store_sale(
    uow: UnitOfWork, actor: Principal, cmd: StoreSaleCreate, quote: Quote, payment: Payment
) -> OrderOut:
    customer_id = cmd.customer_id
    if customer_id is None and cmd.email is not None:
        customer_id = customers.find_or_create_by_email(uow, email=cmd.email, channel=actor.channel or "")
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
    """Cancel a placed/paid order: what its payment still holds (its total less what was given
    back already, e.g. for cancelled units) is claimed in the refund ledger and given back
    through the provider, then one transaction moves the order to cancelled and gives its
    allocations back to stock (a second cancel is 409)."""
    with db.uow() as uow:
        order, claim = orders.claim_rest(uow, actor, order_id, Action.CANCEL)
        uow.commit()
    status = _give_back(provider, order, claim.amount, key=claim.key)
    with db.uow() as uow:
        order = orders.cancel_order(uow, actor, order, payment_status=status)
        uow.commit()
    return order


def refund(db: Database, provider: PaymentProvider, actor: Principal, order_id: str) -> Order:
    """Refund a paid, fulfilling or completed order: only what its payment still holds goes back
    — its total less what returns, exchanges and cancelled units gave back — claimed in the
    refund ledger before the provider is called, so refunds never add up to more than the
    capture. Nothing left: the order is marked refunded without calling the provider."""
    with db.uow() as uow:
        order, claim = orders.claim_rest(uow, actor, order_id, Action.REFUND)
        uow.commit()
    status = _give_back(provider, order, claim.amount, key=claim.key)
    with db.uow() as uow:
        order = orders.refund_order(uow, actor, order, payment_status=status, amount=claim.amount)
        uow.commit()
    return order


def _give_back(provider: PaymentProvider, order: Order, amount: int, *, key: str) -> str:
    """Refund ``amount`` of a captured charge (no call when nothing is left), void an authorized
    one; cash is handed back at the till. A failure leaves the ledger's claim in place — the
    provider may have acted — and the retry calls the provider with the same key (it replays)."""
    ref, status = order.payment.reference, order.payment.status
    try:
        if ref is not None and status == "captured":
            if amount == 0:
                return "refunded"  # returns, exchanges or cancelled units gave everything back
            result = provider.refund(ref, amount, key)
            if result.status != "refunded":  # e.g. refund_exceeds_charge: the books disagree
                raise ProviderError(f"the refund was answered {result.status!r}")
            return result.status
        if ref is not None and status == "authorized":
            return provider.void(ref, key).status
    except (ProviderTimeout, ProviderError) as exc:
        raise PaymentProviderError("the payment provider failed; the order is unchanged, retry") from exc
    return "refunded" if order.payment.method == "cash" else status
