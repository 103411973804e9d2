"""Fulfillment use cases, one module per capability; this module is what other code calls.

Each use case takes a unit of work and never commits. They live in:

- ``routing_service``: routing rules per channel, routing a paid order, why it ships from there;
- ``fulfillment_orders``: reading fulfillment orders, accept, pick, pack, ship, deliver, cancel;
- ``rejection``: units a location cannot find, written off and re-routed;
- ``pickup`` and ``curbside``: BOPIS queue, codes, hand-over, expiry; curbside arrivals;
- ``refunds``: orders refunded in full when nothing of them is left anywhere;
- ``same_day``: today's slots from stores in range, and booking one;
- ``returns``: returns anywhere and exchanges (the price difference settled);
- ``unfilled``: units no location can serve, cancelled on the order and their price refunded;
- ``replanning``: batch re-planning of a channel's open orders;
- ``core``: what they share (rules, sourcing, creating and moving fulfillment orders, events).

The privacy request functions (``customer_data``, ``erase_customer_pii``) are found here by name.
"""

from __future__ import annotations

from typing import Any

from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.core import ROUTING_ACTOR, Placement, get_fo
from omnicommerce.fulfillment.curbside import arrived
from omnicommerce.fulfillment.domain import Action
from omnicommerce.fulfillment.fulfillment_orders import advance, cancel, deliver, fos_of_order, list_fos, ship
from omnicommerce.fulfillment.pickup import (
    due_pickups,
    expire_pickup,
    hand_over,
    pickup_queue,
    ready_for_pickup,
)
from omnicommerce.fulfillment.refunds import needs_refund, refund_settled, refunds_due, refunds_due_of
from omnicommerce.fulfillment.rejection import Rejection, reject
from omnicommerce.fulfillment.replanning import BatchOutcome, reoptimize_open_orders
from omnicommerce.fulfillment.returns import (
    ReturnCommand,
    abandon_exchange,
    complete_exchange,
    get_return,
    mark_return_refunded,
    receive_return,
    returns_to_refund,
    stale_exchange_charges,
)
from omnicommerce.fulfillment.routing_service import get_rules, put_rules, route_paid_order, routing_of
from omnicommerce.fulfillment.same_day import SameDayOffer, SlotOffer, book_same_day, same_day_offers
from omnicommerce.fulfillment.unfilled import (
    cancellations_of,
    cancellations_to_refund,
    cancelled_units,
    get_cancellation,
    mark_cancellation_refunded,
)
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import UnitOfWork

__all__ = [
    "ROUTING_ACTOR",
    "SYSTEM",
    "Action",
    "BatchOutcome",
    "Placement",
    "Rejection",
    "ReturnCommand",
    "SameDayOffer",
    "SlotOffer",
    "abandon_exchange",
    "advance",
    "arrived",
    "book_same_day",
    "cancel",
    "cancellations_of",
    "cancellations_to_refund",
    "cancelled_units",
    "complete_exchange",
    "customer_data",
    "deliver",
    "due_pickups",
    "erase_customer_pii",
    "expire_pickup",
    "fos_of_order",
    "get_cancellation",
    "get_fo",
    "get_return",
    "get_rules",
    "hand_over",
    "list_fos",
    "mark_cancellation_refunded",
    "mark_return_refunded",
    "needs_refund",
    "pickup_queue",
    "put_rules",
    "ready_for_pickup",
    "receive_return",
    "refund_settled",
    "refunds_due",
    "refunds_due_of",
    "reject",
    "reoptimize_open_orders",
    "returns_to_refund",
    "route_paid_order",
    "routing_of",
    "same_day_offers",
    "ship",
    "stale_exchange_charges",
]


# --- privacy (called by customers.privacy for export and erasure requests) --------------------------


def customer_data(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    """The person's fulfillment orders, and the returns and routing decisions of their orders."""
    return repo.customer_rows(uow.conn, subject)


def erase_customer_pii(uow: UnitOfWork, subject: Subject) -> int:
    """The curbside car description and free text naming the person out of their fulfillment
    orders, and the ship-to point out of their routing decisions; units, locations, tracking
    numbers and times stay."""
    return repo.erase_customer_pii(uow.conn, subject)
