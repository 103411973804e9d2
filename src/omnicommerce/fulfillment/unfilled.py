"""Units no location can serve — routing found nowhere for them, at payment or after a store's
rejection — are cancelled on the order and their price goes back to the original payment.

The cancellation is recorded in the routing's transaction (one per routing decision: the unique
``decision_id`` means a retried routing or a duplicate event cannot cancel the same units twice),
with the amount owed: the units' share of their line's total after discounts and adjustments,
counted on the running total of units cancelled so that, line by line, the refunds add up to
exactly the share of every cancelled unit and, order by order, never exceed what was captured.
The refund itself goes to the provider after commit (``jobs.refund_cancellation``), keyed by the
cancellation, and is recorded once (compare-and-set ``refund_pending → refunded``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.core import ROUTING_ACTOR
from omnicommerce.fulfillment.domain import (
    HOLDS_STOCK,
    UnfilledCancellation,
    UnfilledStatus,
    sum_units,
    unfilled_refunds,
)
from omnicommerce.fulfillment.events import UnfilledRefunded, UnitLine
from omnicommerce.inventory import service as inventory
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order, RefundReason
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id

NOWHERE = "no location can serve them"


def cancel_unfilled(
    uow: UnitOfWork, order: Order, units: Mapping[str, int], *, decision_id: str, reason: str
) -> UnfilledCancellation | None:
    """Cancel ``units`` (sku → units nobody can serve) of ``order`` after the routing
    ``decision_id`` found nowhere for them: recorded with the refund owed (``refund_pending``),
    any allocation of them left released, and ``order.units_cancelled`` emitted. None when there
    is nothing to cancel."""
    units = {sku: n for sku, n in units.items() if n > 0}
    if not units:
        return None
    cancellation_id = new_id("unf")
    cancellation = UnfilledCancellation(
        id=cancellation_id,
        order_id=order.id,
        decision_id=decision_id,
        lines=tuple(sorted(units.items())),
        refund_amount=_refund_owed(uow, order, units, cancellation_id),
        currency=order.currency,
        status=UnfilledStatus.REFUND_PENDING,
        refund_reference=None,
        created_at=clock.now(),
    )
    repo.insert_cancellation(uow.conn, cancellation)
    _release_left_over(uow, order.id, units.keys())
    orders.cancel_units(
        uow,
        SYSTEM,
        order.id,
        units=units,
        refund_amount=cancellation.refund_amount,
        reason=reason,
        cancellation_id=cancellation.id,
    )
    return cancellation


def _refund_owed(uow: UnitOfWork, order: Order, units: Mapping[str, int], cancellation_id: str) -> int:
    """The units' share of what was paid for their lines, given the units cancelled before,
    recorded in the orders context's refund ledger (key ``unfilled:<id>``, the key the provider
    is called with) in this transaction: never more than the payment still holds after what was
    given back already — the ledger's conditional write decides. Nothing owed, nothing recorded."""
    before = sum_units([pair for c in repo.cancellations_of_order(uow.conn, order.id) for pair in c.lines])
    paid = {ln.sku: (ln.total, ln.quantity) for ln in order.lines}
    owed = sum(unfilled_refunds(paid, before, units).values())
    if owed <= 0:
        return 0
    key = f"unfilled:{cancellation_id}"
    return orders.record_refund(
        uow, SYSTEM, order.id, amount=owed, reason=RefundReason.UNFILLED, key=key
    ).amount


def _release_left_over(uow: UnitOfWork, order_id: str, skus: Iterable[str]) -> None:
    """Give back any allocation of these skus that no open fulfillment order stands for (units
    a routing could not place but the order still held somewhere)."""
    wanted = set(skus)
    open_units: dict[tuple[str, str], int] = {}
    for fo in repo.for_order(uow.conn, order_id):
        if fo.status in HOLDS_STOCK:
            for sku, n in fo.units.items():
                open_units[(sku, fo.location_id)] = open_units.get((sku, fo.location_id), 0) + n
    surplus = {
        (a.sku, a.location_id): a.quantity - open_units.get((a.sku, a.location_id), 0)
        for a in inventory.order_allocations(uow, order_id=order_id)
        if a.sku in wanted
    }
    moves = {key: -n for key, n in surplus.items() if n > 0}
    if moves:
        inventory.move_allocations(
            uow, order_id=order_id, moves=moves, reason="unfilled", actor=ROUTING_ACTOR
        )


def cancellations_of(uow: UnitOfWork, order_id: str) -> list[UnfilledCancellation]:
    return repo.cancellations_of_order(uow.conn, order_id)


def cancelled_units(uow: UnitOfWork, order_id: str) -> dict[str, int]:
    """Units of the order cancelled because nobody could serve them (sku → units)."""
    return sum_units([pair for c in repo.cancellations_of_order(uow.conn, order_id) for pair in c.lines])


def get_cancellation(uow: UnitOfWork, cancellation_id: str) -> UnfilledCancellation | None:
    return repo.get_cancellation(uow.conn, cancellation_id)


def cancellations_to_refund(uow: UnitOfWork, *, limit: int = 100, order_id: str | None = None) -> list[str]:
    return repo.cancellations_to_refund(uow.conn, limit, order_id=order_id)


def mark_cancellation_refunded(uow: UnitOfWork, cancellation_id: str, *, reference: str | None) -> None:
    """Record the refund once (a retry finds it done and changes nothing); ``unfilled.refunded``."""
    found = repo.get_cancellation(uow.conn, cancellation_id)
    if found is None or not repo.mark_cancellation_refunded(uow.conn, cancellation_id, reference):
        return
    order = orders.get_order(uow, SYSTEM, found.order_id)
    uow.emit(
        UnfilledRefunded(
            cancellation_id=found.id,
            order_id=found.order_id,
            channel=order.channel,
            customer_id=order.customer_id,
            lines=[UnitLine(sku=sku, quantity=n) for sku, n in found.lines],
            refund_amount=found.refund_amount,
            currency=found.currency,
            refund_reference=reference,
        )
    )
