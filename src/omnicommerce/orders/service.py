"""Order use cases. Each takes a unit of work and never commits.

Workflows that call the payment provider between transactions live in ``checkout.py``; they
call the functions here for the transactional parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

from omnicommerce.carts import service as carts
from omnicommerce.carts.domain import Cart, display_name
from omnicommerce.catalog import service as catalog
from omnicommerce.customers import service as customers
from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.inventory import service as inventory
from omnicommerce.orders import repository as repo
from omnicommerce.orders.domain import (
    Action,
    BadUnitCancellation,
    HistoricalOrder,
    IllegalTransition,
    Order,
    OrderChanged,
    OrderLine,
    OrderNotFound,
    OrderRefund,
    Payment,
    RefundReason,
    Status,
    StatusChange,
    StoreKeyRequired,
    new_order_number,
    next_status,
    refund_grant,
)
from omnicommerce.orders.events import (
    CancelledUnits,
    OrderCancelled,
    OrderCompleted,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderUnitsCancelled,
)
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.channels import get_channel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.web import decode_cursor
from omnicommerce.pricing import service as pricing
from omnicommerce.pricing.domain import Quote, QuoteLine

IMPORT_BATCH = 500

# --- reading -----------------------------------------------------------------------------------


def get_order(uow: UnitOfWork, actor: Principal, order_id: str) -> Order:
    order = repo.get(uow.conn, order_id, actor=actor)
    if order is None:
        raise OrderNotFound(f"no order {order_id!r}")
    return order


def order_for_cart(uow: UnitOfWork, cart_id: str) -> Order | None:
    """The order a cart checked out into, if any (a cart checks out once)."""
    return repo.by_cart(uow.conn, cart_id)


def list_orders(
    uow: UnitOfWork,
    actor: Principal,
    *,
    channel: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> list[Order]:
    """Newest first, scoped to the caller; returns up to ``limit + 1`` (the extra one = more follow)."""
    return _search(
        uow,
        actor,
        channel=channel,
        customer_ids=None if customer_id is None else [customer_id],
        status=status,
        since=since,
        cursor=cursor,
        limit=limit,
    )


def _search(
    uow: UnitOfWork,
    actor: Principal,
    *,
    channel: str | None = None,
    customer_ids: list[str] | None = None,
    status: str | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> list[Order]:
    return repo.search(
        uow.conn,
        actor,
        channel=channel,
        customer_ids=customer_ids,
        status=status,
        since=since,
        before_id=decode_cursor(cursor),
        limit=limit + 1,
    )


def customer_orders(
    uow: UnitOfWork, actor: Principal, customer_id: str, *, cursor: str | None = None, limit: int = 50
) -> list[Order]:
    """Every channel's orders of one person, from every account of their profile
    (``customers.person_accounts``)."""
    accounts, reader = customers.person_accounts(uow, actor, customer_id)
    return _search(uow, reader, customer_ids=accounts, cursor=cursor, limit=limit)


# --- creating ----------------------------------------------------------------------------------


def quote_lines(
    uow: UnitOfWork,
    *,
    channel: str,
    lines: Mapping[str, int],
    customer_id: str | None = None,
    coupon_codes: Sequence[str] = (),
) -> Quote:
    currency = get_channel(uow.conn, channel).currency
    return pricing.quote(
        uow,
        channel=channel,
        currency=currency,
        lines=[QuoteLine(sku=s, quantity=q) for s, q in lines.items()],
        customer_id=customer_id,
        coupon_codes=coupon_codes,
    )


def place_checkout_order(uow: UnitOfWork, *, cart: Cart, quote: Quote, payment: Payment) -> Order | None:
    """Tx B of checkout: cart → completed, holds → allocations, coupons redeemed, order ``paid``.

    The order lines carry the names the cart captured (no catalog read). ``None`` when another
    attempt on the same cart (same payment) already completed it. Raises InsufficientStock
    (holds lapsed and the units are gone) / CouponExhausted: the caller voids the payment and
    reopens the cart.
    """
    if not carts.finish_checkout(uow, cart_id=cart.id, version=cart.version):
        return None
    fulfillment = cart.effective_fulfillment
    order = _new_order(
        uow,
        channel=cart.channel,
        location_id=cart.location_id,
        customer_id=cart.customer_id,
        email=cart.email,
        cart_id=cart.id,
        quote=quote,
        names=cart.names,
        fulfillment=fulfillment,
        payment=payment,
        status=Status.PAID,
    )
    inventory.commit(
        uow,
        owner_id=cart.id,
        order_id=order.id,
        demand=cart.demand,
        channel=cart.channel,
        location_id=cart.stock_location,
        capability=cart.capability,
    )
    if quote.coupon_codes:
        pricing.redeem_coupons(uow, codes=quote.coupon_codes, order_id=order.id)
    order = _insert(uow, order, source="checkout", statuses=[Status.PLACED, Status.PAID], actor="checkout")
    uow.emit(OrderPlaced(**_facts(order), cart_id=cart.id, skus=[ln.sku for ln in order.lines]))
    uow.emit(OrderPaid(**_facts(order), payment_method=payment.method, payment_reference=payment.reference))
    return order


def require_store_key(actor: Principal) -> str:
    """A store sale is recorded by that store's POS key; returns the store's location id."""
    if actor.is_customer or actor.location is None or actor.channel is None:
        raise StoreKeyRequired("record store sales with a POS key bound to a channel and a store")
    return actor.location


def record_store_sale(
    uow: UnitOfWork,
    actor: Principal,
    *,
    lines: Mapping[str, int],
    quote: Quote,
    payment: Payment,
    customer_id: str | None,
    email: str | None,
) -> Order:
    """A carry-out sale at a till, recorded after the fact: placed → paid → completed at once."""
    location = require_store_key(actor)
    assert actor.channel is not None
    order = _new_order(
        uow,
        channel=actor.channel,
        location_id=location,
        customer_id=customer_id,
        email=email,
        cart_id=None,
        quote=quote,
        names=_catalog_names(uow, quote),
        fulfillment={"type": "carry_out", "location_id": location},
        payment=payment,
        status=Status.COMPLETED,
    )
    inventory.record_sale(uow, location_id=location, lines=dict(lines), order_id=order.id)
    order = _insert(
        uow,
        order,
        source="store_sale",
        statuses=[Status.PLACED, Status.PAID, Status.COMPLETED],
        actor=actor.id,
    )
    uow.emit(OrderPlaced(**_facts(order), skus=[ln.sku for ln in order.lines]))
    uow.emit(OrderPaid(**_facts(order), payment_method=payment.method, payment_reference=payment.reference))
    uow.emit(OrderCompleted(**_facts(order)))
    return order


def _new_order(
    uow: UnitOfWork,
    *,
    channel: str,
    location_id: str | None,
    customer_id: str | None,
    email: str | None,
    cart_id: str | None,
    quote: Quote,
    names: Mapping[str, str],
    fulfillment: dict[str, Any] | None,
    payment: Payment,
    status: Status,
) -> Order:
    lines = [
        OrderLine(
            sku=pl.sku,
            name=names.get(pl.sku, pl.sku),
            quantity=pl.quantity,
            unit_price=pl.unit_price,
            subtotal=pl.subtotal,
            discount=pl.total - pl.subtotal,
            total=pl.total,
            adjustments=[asdict(a) for a in pl.adjustments],
        )
        for pl in quote.lines
    ]
    now = clock.now()
    return Order(
        id=new_id("ord"),
        number=new_order_number(),
        channel=channel,
        location_id=location_id,
        customer_id=customer_id,
        email=email,
        cart_id=cart_id,
        status=status,
        version=1,
        currency=quote.currency,
        subtotal=quote.subtotal,
        discount_total=quote.discount_total,
        total=quote.total,
        fulfillment=fulfillment,
        payment=payment,
        placed_at=now,
        created_at=now,
        lines=lines,
    )


def _catalog_names(uow: UnitOfWork, quote: Quote) -> dict[str, str]:
    variants = catalog.get_variants(uow, [pl.sku for pl in quote.lines])
    return {sku: display_name(v.product_name, v.name) for sku, v in variants.items()}


def _insert(uow: UnitOfWork, order: Order, *, source: str, statuses: list[Status], actor: str) -> Order:
    """The order with its lines and its history up to ``statuses[-1]``, at version len - 1."""
    history = tuple(
        StatusChange(i, statuses[i - 1] if i else None, s, actor, order.created_at)
        for i, s in enumerate(statuses)
    )
    order = replace(order, version=len(statuses) - 1, history=history)
    repo.insert_orders(uow.conn, [order], source=source)
    return order


# --- changing ----------------------------------------------------------------------------------


def check_action(uow: UnitOfWork, actor: Principal, order_id: str, action: Action) -> Order:
    """The order, if ``action`` is legal for it now (IllegalTransition otherwise)."""
    order = get_order(uow, actor, order_id)
    next_status(order.status, action)
    return order


def cancel_order(uow: UnitOfWork, actor: Principal, order: Order, *, payment_status: str) -> Order:
    """Cancel (payment already voided/refunded by the caller) and give the order's allocations
    back to stock, in the same transaction. The version check in ``_transition`` lets one cancel
    through; ``release_allocations`` is idempotent besides. A checked-out cart holds nothing
    uncommitted, and a store sale has no holds (its units left the store): nothing else to free."""
    order = _transition(uow, actor, order, Action.CANCEL, payment_status=payment_status)
    inventory.release_allocations(uow, order_id=order.id, reason="order-cancelled")
    uow.emit(OrderCancelled(**_facts(order), payment_status=payment_status))
    return order


def refund_order(
    uow: UnitOfWork, actor: Principal, order: Order, *, payment_status: str, amount: int | None = None
) -> Order:
    """Mark refunded after the provider gave back ``amount`` — what the payment still held, as
    recorded by :func:`claim_rest` (None: the full total, for callers that predate the ledger)."""
    order = _transition(uow, actor, order, Action.REFUND, payment_status=payment_status)
    uow.emit(OrderRefunded(**_facts(order), refunded_amount=order.total if amount is None else amount))
    return order


def _transition(uow: UnitOfWork, actor: Principal, order: Order, action: Action, **values: Any) -> Order:
    to = next_status(order.status, action)
    change = repo.transition(uow.conn, order, to_status=to, actor=actor.id, **values)
    if change is None:
        raise OrderChanged(f"order {order.id!r} changed; reload and retry")
    payment = replace(order.payment, status=values.get("payment_status", order.payment.status))
    return replace(order, status=to, version=change.seq, payment=payment, history=(*order.history, change))


# --- bulk --------------------------------------------------------------------------------------


def import_orders(uow: UnitOfWork, orders: list[HistoricalOrder]) -> int:
    """Historical orders (demo loader): completed, no stock movement, no events; multi-row inserts."""
    for start in range(0, len(orders), IMPORT_BATCH):
        batch = [_historical(h) for h in orders[start : start + IMPORT_BATCH]]
        repo.insert_orders(uow.conn, batch, source="import")
    return len(orders)


def _historical(h: HistoricalOrder) -> Order:
    lines = [
        OrderLine(
            sku=ln.sku,
            name=ln.name,
            quantity=ln.quantity,
            unit_price=ln.unit_price,
            subtotal=ln.unit_price * ln.quantity,
            discount=ln.discount,
            total=ln.unit_price * ln.quantity + ln.discount,
        )
        for ln in h.lines
    ]
    subtotal = sum(ln.subtotal for ln in lines)
    discount = sum(ln.discount for ln in lines)
    return Order(
        id=new_id("ord"),
        number=new_order_number(),
        channel=h.channel,
        location_id=h.location_id,
        customer_id=h.customer_id,
        email=h.email,
        cart_id=None,
        status=Status.COMPLETED,
        version=0,
        currency=h.currency,
        subtotal=subtotal,
        discount_total=discount,
        total=subtotal + discount,
        fulfillment=None,
        payment=Payment(None, "imported", None, "captured"),
        placed_at=h.placed_at,
        created_at=h.placed_at,
        lines=lines,
        history=(StatusChange(0, None, Status.COMPLETED, "import", h.placed_at),),
    )


def _facts(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "number": order.number,
        "channel": order.channel,
        "location_id": order.location_id,
        "customer_id": order.customer_id,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount_total": order.discount_total,
        "total": order.total,
    }


# --- fulfilment (called by the fulfillment context) ---------------------------------------------


def start_fulfilment(uow: UnitOfWork, actor: Principal, order_id: str) -> Order:
    """paid → fulfilling, once the order was routed to the locations that will fulfil it."""
    return _transition(uow, actor, get_order(uow, actor, order_id), Action.FULFILL)


def complete_fulfilment(uow: UnitOfWork, actor: Principal, order_id: str) -> Order:
    """fulfilling → completed, when everything reached the customer (delivered or picked up)."""
    order = _transition(uow, actor, get_order(uow, actor, order_id), Action.COMPLETE)
    uow.emit(OrderCompleted(**_facts(order)))
    return order


# --- privacy (called by customers.privacy for export and erasure requests) --------------------------


def customer_data(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    """The person's orders (placed by them, or as a guest under their email) with their lines."""
    return repo.customer_rows(uow.conn, subject)


def erase_customer_pii(uow: UnitOfWork, subject: Subject) -> int:
    """Email and delivery address out of the person's orders. The financial record stays: amounts,
    SKUs, quantities, dates, payment reference and status history (which names no person)."""
    return repo.erase_customer_pii(uow.conn, subject)


# --- units no location can serve (called by the fulfillment context) -------------------------------

# Orders whose units may still be cancelled one by one: paid, and not yet completed or refunded.
_UNITS_CANCELLABLE = frozenset({Status.PAID, Status.FULFILLING})


def cancel_units(
    uow: UnitOfWork,
    actor: Principal,
    order_id: str,
    *,
    units: Mapping[str, int],
    refund_amount: int,
    reason: str,
    cancellation_id: str,
) -> Order:
    """Cancel ``units`` (sku → units) of a paid order that no location can serve, while the rest
    carries on: ``order.units_cancelled`` tells the customer, with the ``refund_amount`` the caller
    owes back to the original payment (it records the units and pays the refund after commit,
    keyed by ``cancellation_id``). The order's status and totals stay: they are what was charged.
    Raises ``BadUnitCancellation`` for units the order does not have, ``IllegalTransition`` when
    the order is no longer paid or being fulfilled."""
    order = get_order(uow, actor, order_id)
    if order.status not in _UNITS_CANCELLABLE:
        raise IllegalTransition(
            f"cannot cancel units of an order that is {order.status}",
            status_now=order.status,
            action="cancel",
        )
    ordered = {ln.sku: ln.quantity for ln in order.lines}
    bad = sorted(sku for sku, n in units.items() if n <= 0 or n > ordered.get(sku, 0))
    if bad or not units or refund_amount < 0:
        raise BadUnitCancellation(f"units of {', '.join(bad) or 'nothing'} are not on order {order.id!r}")
    uow.emit(
        OrderUnitsCancelled(
            **_facts(order),
            lines=[CancelledUnits(sku=sku, quantity=n) for sku, n in sorted(units.items())],
            refund_amount=refund_amount,
            reason=reason,
            cancellation_id=cancellation_id,
        )
    )
    return order


# --- the refund ledger: every amount given back against an order --------------------------------

# Attempts of the conditional write before giving up with 409: each lost attempt means another
# refund of the order committed meanwhile, so this bounds the waiting, not correctness.
_REFUND_ATTEMPTS = 20


def record_refund(
    uow: UnitOfWork, actor: Principal, order_id: str, *, amount: int | None, reason: str, key: str
) -> OrderRefund:
    """Record that ``amount`` (minor units; None: everything left) goes back to the order's
    payment, limited to what the payment still holds — the returned entry says what was granted,
    0 when nothing is left. The one way money is promised back against an order: the orders
    context's refund and cancel, and the fulfillment context's partial refunds (returns, exchange
    surplus, cancelled units) in the transaction that records its own side. The provider is
    called after commit, keyed like the entry. Idempotent by ``key``: a repeat answers the first
    entry. Raises ``OrderNotFound``, and ``OrderChanged`` only under extreme contention."""
    for _ in range(_REFUND_ATTEMPTS):
        position = repo.refund_position(uow.conn, order_id, key)
        if position is None:
            raise OrderNotFound(f"no order {order_id!r}")
        total, refunded, recorded = position
        if recorded is not None:
            return recorded
        granted = refund_grant(amount, total=total, refunded=refunded)
        if repo.add_refunded(uow.conn, order_id, seen=refunded, amount=granted):
            entry = OrderRefund(new_id("orf"), order_id, granted, str(reason), key, actor.id, clock.now())
            repo.insert_refund(uow.conn, entry)
            return entry
    raise OrderChanged(f"refunds of order {order_id!r} keep changing; retry")


def stranded_balance_claims(uow: UnitOfWork, *, older_than: timedelta, limit: int) -> list[OrderRefund]:
    """Refund and cancel claims (:func:`claim_rest`) older than ``older_than`` whose order never
    moved: the provider failed, or the process died, and nobody retried."""
    return repo.stranded_balance_claims(uow.conn, before=clock.now() - older_than, limit=limit)


def refunds_of(uow: UnitOfWork, order_id: str) -> list[OrderRefund]:
    """The order's refund ledger, oldest first."""
    return repo.refunds_of(uow.conn, order_id)


def claim_rest(uow: UnitOfWork, actor: Principal, order_id: str, action: Action) -> tuple[Order, OrderRefund]:
    """First step of cancel and refund: the order, if ``action`` is legal for it now, and the
    ledger entry claiming everything its payment still holds (its total less what returns,
    exchanges and cancelled units gave back). One such entry per order, keyed ``balance:<order>``
    whichever action made it: a retry after a provider failure — or a refund after a failed
    cancel — finds the same entry and calls the provider with the same key, so what was claimed
    is paid once and nothing claimed is left unpaid. An authorized, uncaptured payment claims
    nothing: voiding releases it whole."""
    order = check_action(uow, actor, order_id, action)
    wanted = 0 if order.payment.status == "authorized" else None
    reason = RefundReason.CANCEL if action == Action.CANCEL else RefundReason.REFUND
    entry = record_refund(uow, actor, order.id, amount=wanted, reason=reason, key=_balance_key(order))
    return get_order(uow, actor, order.id), entry  # with its refunded total as it now stands


def _balance_key(order: Order) -> str:
    return f"balance:{order.id}"
