"""Events the orders context publishes; each carries the order's id, channel, customer and totals."""

from __future__ import annotations

from typing import Literal

from omnicommerce.platform.events import Event


class OrderEvent(Event):
    context = "orders"
    order_id: str
    number: str
    channel: str
    location_id: str | None = None
    customer_id: str | None = None
    currency: str
    subtotal: int
    discount_total: int
    total: int


class OrderPlaced(OrderEvent):
    type: Literal["order.placed"] = "order.placed"
    version: Literal[1] = 1
    cart_id: str | None = None
    skus: list[str]


class OrderPaid(OrderEvent):
    type: Literal["order.paid"] = "order.paid"
    version: Literal[1] = 1
    payment_method: str
    payment_reference: str | None = None


class OrderCompleted(OrderEvent):
    type: Literal["order.completed"] = "order.completed"
    version: Literal[1] = 1


class OrderCancelled(OrderEvent):
    type: Literal["order.cancelled"] = "order.cancelled"
    version: Literal[1] = 1
    payment_status: str


class OrderRefunded(OrderEvent):
    type: Literal["order.refunded"] = "order.refunded"
    version: Literal[1] = 1
    refunded_amount: int
