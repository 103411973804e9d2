"""Pydantic request and response shapes of the fulfillment API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from omnicommerce.fulfillment.domain import (
    Condition,
    ExchangeTerms,
    FulfillmentOrder,
    Return,
    ReturnLine,
    Status,
    UnfilledCancellation,
    is_expired,
    qr_payload,
    sum_units,
)
from omnicommerce.fulfillment.rules import RoutingRules
from omnicommerce.platform.auth import Principal

FulfillmentOrderId = Annotated[str, Field(description="ful_…", examples=["ful_01JABCDEF"])]
Sku = Annotated[str, Field(min_length=1, max_length=64)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShipRequest(_In):
    tracking_number: str = Field(min_length=1, max_length=80)
    carrier: str | None = Field(default=None, max_length=40)


class RejectLine(_In):
    sku: Sku
    quantity: int = Field(ge=1, le=10_000)


class RejectRequest(_In):
    lines: list[RejectLine] = Field(min_length=1, max_length=200)
    reason: str = Field(default="item not found", min_length=1, max_length=200)

    def units(self) -> dict[str, int]:
        return sum_units([(x.sku, x.quantity) for x in self.lines])


class CancelRequest(_In):
    reason: str = Field(default="cancelled by staff", min_length=1, max_length=200)


class HandOverRequest(_In):
    code: str = Field(min_length=1, max_length=200, description="The pickup code, or the scanned QR payload")


class ArrivalRequest(_In):
    bay: str | None = Field(default=None, max_length=40, examples=["3"])
    car: str | None = Field(default=None, max_length=120, examples=["blue Golf, AB-123"])


class SameDayBooking(_In):
    location_id: str = Field(min_length=1, max_length=40)
    slot_start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM (UTC) of today's slot")


class SlotOut(BaseModel):
    start: datetime
    end: datetime
    places_left: int


class SameDayOfferOut(BaseModel):
    location_id: str
    distance_km: float
    slots: list[SlotOut]


class FoLineOut(BaseModel):
    sku: str
    quantity: int
    rejected: int


class FulfillmentOrderOut(BaseModel):
    id: FulfillmentOrderId
    order_id: str
    order_number: str
    channel: str
    customer_id: str | None
    location_id: str
    kind: str
    status: str
    version: int
    lines: list[FoLineOut]
    delayed: bool
    tracking_number: str | None
    carrier: str | None
    pickup_code: str | None = Field(description="Shown to the customer and unbound keys, never to the store")
    qr_payload: str | None
    pickup_expires_at: datetime | None
    arrived_at: datetime | None
    arrival_bay: str | None
    arrival_car: str | None
    handed_over_at: datetime | None
    handover_seconds: float | None
    reason: str | None
    rerouted_from: str | None
    delivery_from: datetime | None = Field(description="Same-day: the booked slot")
    delivery_until: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, fo: FulfillmentOrder, actor: Principal, now: datetime) -> FulfillmentOrderOut:
        # The store checks the code the customer shows: its own key never sees it.
        show_code = fo.pickup_code is not None and actor.location is None
        status, reason = fo.status, fo.reason
        if is_expired(fo, now):  # checked at read: the sweeper may not have run yet
            status, reason = Status.CANCELLED, "pickup window passed"
        return cls(
            id=fo.id,
            order_id=fo.order_id,
            order_number=fo.order_number,
            channel=fo.channel,
            customer_id=fo.customer_id,
            location_id=fo.location_id,
            kind=fo.kind,
            status=status,
            version=fo.version,
            lines=[FoLineOut(sku=ln.sku, quantity=ln.quantity, rejected=ln.rejected) for ln in fo.lines],
            delayed=fo.delayed,
            tracking_number=fo.tracking_number,
            carrier=fo.carrier,
            pickup_code=fo.pickup_code if show_code else None,
            qr_payload=qr_payload(fo.id, fo.pickup_code) if show_code and fo.pickup_code else None,
            pickup_expires_at=fo.pickup_expires_at,
            arrived_at=fo.arrived_at,
            arrival_bay=fo.arrival_bay,
            arrival_car=fo.arrival_car,
            handed_over_at=fo.handed_over_at,
            handover_seconds=fo.handover_seconds,
            reason=reason,
            rerouted_from=fo.rerouted_from,
            delivery_from=fo.delivery_from,
            delivery_until=fo.delivery_until,
            created_at=fo.created_at,
            updated_at=fo.updated_at,
        )


class RejectionOut(BaseModel):
    fulfillment_order: FulfillmentOrderOut
    rerouted_to: list[FulfillmentOrderOut]
    unfilled: dict[str, int] = Field(description="sku -> units no location could take")


class ReoptimizeRequest(_In):
    channel: str = Field(default="web", min_length=1, max_length=40, description="Whose open orders")
    limit: int = Field(default=500, ge=1, le=5000, description="At most this many open orders")
    time_budget_seconds: float = Field(default=10.0, ge=0.5, le=120, description="Solver time budget")


class ReoptimizeOut(BaseModel):
    channel: str
    orders: int = Field(description="Open orders re-planned together (no location started on them)")
    changed: int = Field(
        description="Orders whose plan changed: allocations moved, fulfillment orders replaced"
    )
    cost: float = Field(description="Of the batch plan (objective units)")
    bound: float = Field(description="No plan of these orders costs less (Lagrangian bound)")
    method: str
    dropped_for_distance: int = Field(
        description="Orders kept as they were: the batch plan sent them beyond max_distance_km"
    )


class RulesOut(BaseModel):
    channel: str
    version: int = Field(description="0 while the channel uses the defaults")
    rules: RoutingRules


class CandidateOut(BaseModel):
    location_id: str
    kind: str | None = None
    chosen: bool
    package_cost: float | None = Field(default=None, description="One package from here, in currency units")
    units_available: int | None = None
    reason: str


class AssignmentOut(BaseModel):
    sku: str
    location_id: str
    quantity: int
    delayed: bool


class UnitsOut(BaseModel):
    sku: str
    quantity: int


class DecisionOut(BaseModel):
    id: str
    trigger: str
    created_at: datetime
    method: str
    cost: float
    packages: int
    ship_to: list[float] | None
    attempts: int | None = None
    fallback: str | None = None
    candidates: list[CandidateOut]
    assignments: list[AssignmentOut]
    unfilled: list[UnitsOut]


class CancellationOut(BaseModel):
    """Units no location could serve, cancelled on the order; their price back to the payment."""

    id: str
    decision_id: str = Field(description="The routing that found nowhere for them")
    lines: list[UnitsOut]
    refund_amount: int = Field(description="Minor units, to the original payment")
    currency: str
    status: str = Field(description="refund_pending | refunded")
    refund_reference: str | None
    created_at: datetime

    @classmethod
    def of(cls, c: UnfilledCancellation) -> CancellationOut:
        return cls(
            id=c.id,
            decision_id=c.decision_id,
            lines=[UnitsOut(sku=sku, quantity=n) for sku, n in c.lines],
            refund_amount=c.refund_amount,
            currency=c.currency,
            status=c.status,
            refund_reference=c.refund_reference,
            created_at=c.created_at,
        )


class RoutingOut(BaseModel):
    order_id: str
    decisions: list[DecisionOut] = Field(description="Oldest first: the routing at payment, then re-routings")
    fulfillment_orders: list[FulfillmentOrderOut]
    cancelled_units: list[CancellationOut] = Field(
        default_factory=list, description="Units nobody could serve: cancelled, their price refunded"
    )

    @classmethod
    def of(
        cls,
        order_id: str,
        decisions: list[dict[str, Any]],
        fos: list[FulfillmentOrderOut],
        cancellations: Sequence[UnfilledCancellation] = (),
    ) -> RoutingOut:
        return cls(
            order_id=order_id,
            decisions=[DecisionOut.model_validate(d) for d in decisions],
            fulfillment_orders=fos,
            cancelled_units=[CancellationOut.of(c) for c in cancellations],
        )


class ReturnLineIn(_In):
    sku: Sku
    quantity: int = Field(ge=1, le=10_000)
    condition: Condition = Condition.SELLABLE


class ReplacementLine(_In):
    sku: Sku
    quantity: int = Field(ge=1, le=10_000)


class ReturnCreate(_In):
    location_id: str = Field(min_length=1, max_length=40, description="Where the units are received")
    method: Literal["in_store", "mail"] = "in_store"
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=200)
    replacement: list[ReplacementLine] = Field(
        default_factory=list, max_length=200, description="Exchange: these ship instead of a refund"
    )
    payment_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Exchange costing more than the returned units: a provider token (tok_…) paying the"
        " difference. Checkout keeps no card token, so the original payment cannot be charged again.",
    )

    def domain_lines(self) -> tuple[ReturnLine, ...]:
        return tuple(ReturnLine(x.sku, x.quantity, x.condition) for x in self.lines)

    def replacement_units(self) -> dict[str, int]:
        return sum_units([(x.sku, x.quantity) for x in self.replacement])


class ReturnLineOut(BaseModel):
    sku: str
    quantity: int
    condition: str


class ExchangeOut(BaseModel):
    replacement: list[UnitsOut]
    returned_value: int = Field(description="What the returned units were paid (minor units)")
    replacement_value: int = Field(description="The replacement's price now (the pricing quote)")
    difference: int = Field(description="> 0 charged, < 0 refunded (the return's refund_amount), 0 even")
    currency: str
    charge_reference: str | None = Field(description="The provider's reference of the charge, if any")

    @classmethod
    def of(cls, e: ExchangeTerms) -> ExchangeOut:
        return cls(
            replacement=[UnitsOut(sku=sku, quantity=n) for sku, n in e.replacement],
            returned_value=e.returned_value,
            replacement_value=e.replacement_value,
            difference=e.difference,
            currency=e.currency,
            charge_reference=e.charge_reference,
        )


class ReturnOut(BaseModel):
    id: str
    order_id: str
    location_id: str
    method: str
    status: str = Field(description="refund_pending | refunded | exchanged | charge_pending | declined")
    lines: list[ReturnLineOut]
    refund_amount: int = Field(description="Minor units, to the original payment")
    currency: str
    refund_reference: str | None
    replacement_fulfillment_order_id: str | None
    created_at: datetime
    exchange: ExchangeOut | None = Field(default=None, description="An exchange's price side")

    @classmethod
    def of(cls, r: Return) -> ReturnOut:
        return cls(
            id=r.id,
            order_id=r.order_id,
            location_id=r.location_id,
            method=r.method,
            status=r.status,
            lines=[ReturnLineOut(sku=x.sku, quantity=x.quantity, condition=x.condition) for x in r.lines],
            refund_amount=r.refund_amount,
            currency=r.currency,
            refund_reference=r.refund_reference,
            replacement_fulfillment_order_id=r.replacement_fulfillment_order_id,
            created_at=r.created_at,
            exchange=ExchangeOut.of(r.exchange) if r.exchange else None,
        )
