"""Reactions to other contexts' events, each de-duplicated by event id (``processed_events``)."""

from __future__ import annotations

from omnicommerce.fulfillment import service
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.outbox import Envelope, subscriber


@subscriber("order.paid", consumer="fulfillment.route-paid-order")
def route_paid_order(uow: UnitOfWork, env: Envelope) -> None:
    """A paid order is routed and turned into fulfillment orders (once per order, whatever the
    number of deliveries: the service returns what the first routing made)."""
    service.route_paid_order(uow, str(env.payload["order_id"]))
