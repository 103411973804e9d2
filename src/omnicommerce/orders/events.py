"""Events the orders context publishes; each carries the order's id, channel, customer and totals."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

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
    """The order was refunded. ``refunded_amount`` is what this refund gave back to the payment:
    its total less what returns, exchanges and cancelled units gave back before (0 when nothing
    was left) — all of an order's refunds together are at most its total."""

    type: Literal["order.refunded"] = "order.refunded"
    version: Literal[1] = 1
    refunded_amount: int


class CancelledUnits(BaseModel):
    sku: str
    quantity: int


class OrderUnitsCancelled(OrderEvent):
    """Units of the order that no location can serve were cancelled; the rest of the order carries
    on. ``refund_amount`` (minor units: the units' price with their share of the line's discounts)
    goes back to the original payment — for the customer's message."""

    type: Literal["order.units_cancelled"] = "order.units_cancelled"
    version: Literal[1] = 1
    lines: list[CancelledUnits]
    refund_amount: int
    reason: str
    cancellation_id: str
