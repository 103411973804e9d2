"""Reading fulfillment orders, and moving them through the warehouse part of their flow:
accept, pick, pack, ship, deliver, cancel."""

from __future__ import annotations

from collections.abc import Sequence

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.core import complete_order_if_done, facts, locked, move, release, unit_lines
from omnicommerce.fulfillment.domain import Action, FulfillmentOrder
from omnicommerce.fulfillment.events import (
    FulfillmentAccepted,
    FulfillmentCancelled,
    FulfillmentDelivered,
    FulfillmentPacked,
    FulfillmentPicking,
    FulfillmentShipped,
)
from omnicommerce.inventory import service as inventory
from omnicommerce.orders import service as orders
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.web import decode_cursor


def fos_of_order(uow: UnitOfWork, actor: Principal, order_id: str) -> list[FulfillmentOrder]:
    order = orders.get_order(uow, actor, order_id)
    return repo.for_order(uow.conn, order.id, actor=actor if actor.location else None)


def list_fos(
    uow: UnitOfWork,
    actor: Principal,
    *,
    location_id: str | None,
    statuses: Sequence[str] | None,
    cursor: str | None,
    limit: int,
) -> list[FulfillmentOrder]:
    return repo.search(
        uow.conn,
        actor,
        location_id=location_id,
        statuses=statuses,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )


_SIMPLE_EVENTS = {
    Action.ACCEPT: FulfillmentAccepted,
    Action.PICK: FulfillmentPicking,
    Action.PACK: FulfillmentPacked,
}


def advance(uow: UnitOfWork, actor: Principal, fo_id: str, action: Action) -> FulfillmentOrder:
    """accept, pick or pack: the location works through the order."""
    fo = move(uow, locked(uow, actor, fo_id), action)
    uow.emit(_SIMPLE_EVENTS[action](**facts(fo)))
    return fo


def ship(
    uow: UnitOfWork, actor: Principal, fo_id: str, *, tracking_number: str, carrier: str | None
) -> FulfillmentOrder:
    """The parcel left: its units leave the location's stock (on hand and allocation)."""
    fo = move(uow, locked(uow, actor, fo_id), Action.SHIP, tracking_number=tracking_number, carrier=carrier)
    inventory.consume_allocations(
        uow, order_id=fo.order_id, location_id=fo.location_id, lines=fo.units, reason="ship", actor=actor.id
    )
    uow.emit(
        FulfillmentShipped(
            **facts(fo), tracking_number=tracking_number, carrier=carrier, lines=unit_lines(fo.units)
        )
    )
    return fo


def deliver(uow: UnitOfWork, actor: Principal, fo_id: str) -> FulfillmentOrder:
    fo = move(uow, locked(uow, actor, fo_id), Action.DELIVER)
    uow.emit(FulfillmentDelivered(**facts(fo)))
    complete_order_if_done(uow, fo.order_id)
    return fo


def cancel(uow: UnitOfWork, actor: Principal, fo_id: str, *, reason: str) -> FulfillmentOrder:
    """Staff cancel a fulfillment order that has not left: its units go back to sellable stock.
    (Money goes back through the order's own cancel or refund.)"""
    fo = move(uow, locked(uow, actor, fo_id), Action.CANCEL, reason=reason)
    release(uow, fo, reason="fo_cancelled")
    uow.emit(FulfillmentCancelled(**facts(fo), reason=reason))
    complete_order_if_done(uow, fo.order_id)
    return fo
