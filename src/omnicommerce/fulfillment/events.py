"""Events the fulfillment context publishes (``omni.fulfillment.<type>``); each carries the
fulfillment order, its order, location and the customer, so engagement can message them."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel

from omnicommerce.platform.events import Event


class UnitLine(BaseModel):
    sku: str
    quantity: int


class _FulfillmentEvent(Event):
    context: ClassVar[str] = "fulfillment"
    fulfillment_order_id: str
    order_id: str
    location_id: str
    kind: str
    channel: str
    customer_id: str | None = None


class FulfillmentCreated(_FulfillmentEvent):
    """A location was given lines of an order to fulfil (on payment, or by re-routing)."""

    type: Literal["fulfillment.created"] = "fulfillment.created"
    version: Literal[1] = 1
    lines: list[UnitLine]
    delayed: bool
    rerouted_from: str | None = None


class FulfillmentAccepted(_FulfillmentEvent):
    type: Literal["fulfillment.accepted"] = "fulfillment.accepted"
    version: Literal[1] = 1


class FulfillmentPicking(_FulfillmentEvent):
    type: Literal["fulfillment.picking"] = "fulfillment.picking"
    version: Literal[1] = 1


class FulfillmentPacked(_FulfillmentEvent):
    type: Literal["fulfillment.packed"] = "fulfillment.packed"
    version: Literal[1] = 1


class FulfillmentShipped(_FulfillmentEvent):
    type: Literal["fulfillment.shipped"] = "fulfillment.shipped"
    version: Literal[1] = 1
    tracking_number: str
    carrier: str | None = None
    lines: list[UnitLine]


class FulfillmentDelivered(_FulfillmentEvent):
    type: Literal["fulfillment.delivered"] = "fulfillment.delivered"
    version: Literal[1] = 1


class FulfillmentRejected(_FulfillmentEvent):
    """The location could not find some units; they were written off there and re-routed."""

    type: Literal["fulfillment.rejected"] = "fulfillment.rejected"
    version: Literal[1] = 1
    lines: list[UnitLine]
    reason: str
    fully_rejected: bool
    rerouted_to: list[str]
    unfilled: list[UnitLine]


class FulfillmentCancelled(_FulfillmentEvent):
    type: Literal["fulfillment.cancelled"] = "fulfillment.cancelled"
    version: Literal[1] = 1
    reason: str


class PickupReady(_FulfillmentEvent):
    """The order waits at the store; ``pickup_code`` and ``qr_payload`` are for the customer."""

    type: Literal["pickup.ready"] = "pickup.ready"
    version: Literal[1] = 1
    pickup_code: str
    qr_payload: str
    expires_at: datetime


class PickupCollected(_FulfillmentEvent):
    type: Literal["pickup.collected"] = "pickup.collected"
    version: Literal[1] = 1
    curbside: bool
    handover_seconds: float | None = None


class CarriedOut(_FulfillmentEvent):
    """A till checkout with no fulfillment choice: the customer took the units, the order is complete."""

    type: Literal["fulfillment.carried_out"] = "fulfillment.carried_out"
    version: Literal[1] = 1
    lines: list[UnitLine]


class PickupRerouted(_FulfillmentEvent):
    """Units the pickup store could not find wait at another store nearby: tell the customer where."""

    type: Literal["pickup.rerouted"] = "pickup.rerouted"
    version: Literal[1] = 1
    from_location_id: str
    distance_km: float
    lines: list[UnitLine]


class PickupExpired(_FulfillmentEvent):
    """Not collected in time: cancelled, stock released, the payment refunded."""

    type: Literal["pickup.expired"] = "pickup.expired"
    version: Literal[1] = 1
    expired_at: datetime


class CurbsideArrived(_FulfillmentEvent):
    type: Literal["curbside.arrived"] = "curbside.arrived"
    version: Literal[1] = 1
    bay: str | None = None
    car: str | None = None


class RoutingDecided(Event):
    """Where an order's units ship from, and what that costs (``GET /orders/{id}/routing``)."""

    context: ClassVar[str] = "fulfillment"
    type: Literal["routing.decided"] = "routing.decided"
    version: Literal[1] = 1
    order_id: str
    decision_id: str
    trigger: str
    method: str
    cost: float
    packages: int
    locations: list[str]
    unfilled: list[UnitLine]


class ReturnLineOut(BaseModel):
    sku: str
    quantity: int
    condition: str


class ReturnReceived(Event):
    """Units of an order came back at a location (any store, or a DC for mail returns)."""

    context: ClassVar[str] = "fulfillment"
    type: Literal["return.received"] = "return.received"
    version: Literal[1] = 1
    return_id: str
    order_id: str
    location_id: str
    method: str
    channel: str
    customer_id: str | None = None
    lines: list[ReturnLineOut]
    refund_amount: int
    currency: str
    exchange: bool


class ReturnRefunded(Event):
    context: ClassVar[str] = "fulfillment"
    type: Literal["return.refunded"] = "return.refunded"
    version: Literal[1] = 1
    return_id: str
    order_id: str
    refund_amount: int
    currency: str
    refund_reference: str | None = None


class UnfilledRefunded(Event):
    """The price of units no location could serve (cancelled on the order: ``order.units_cancelled``)
    went back to the original payment."""

    context: ClassVar[str] = "fulfillment"
    type: Literal["unfilled.refunded"] = "unfilled.refunded"
    version: Literal[1] = 1
    cancellation_id: str
    order_id: str
    channel: str
    customer_id: str | None = None
    lines: list[UnitLine]
    refund_amount: int
    currency: str
    refund_reference: str | None = None


class ExchangeSettled(Event):
    """An exchange's price difference was settled: ``difference`` > 0 charged to the customer
    (``charge_reference``), < 0 owed back to the original payment (with the return's refund), 0
    an even exchange."""

    context: ClassVar[str] = "fulfillment"
    type: Literal["exchange.settled"] = "exchange.settled"
    version: Literal[1] = 1
    return_id: str
    order_id: str
    channel: str
    customer_id: str | None = None
    replacement: list[UnitLine]
    returned_value: int
    replacement_value: int
    difference: int
    currency: str
    charge_reference: str | None = None
    replacement_fulfillment_order_id: str
