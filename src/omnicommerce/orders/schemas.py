"""orders request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from omnicommerce.carts.schemas import Email, PickupFulfillment, ShipFulfillment, Sku
from omnicommerce.orders.domain import Order


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckoutRequest(_In):
    payment_token: str = Field(
        min_length=1, max_length=200, description="A provider token (tok_…), never a card"
    )
    fulfillment: ShipFulfillment | PickupFulfillment | None = Field(default=None, discriminator="type")
    expected_total: int | None = Field(default=None, ge=0, description="409 if the live total differs")
    email: Email | None = None


class SaleLine(_In):
    sku: Sku
    quantity: int = Field(ge=1, le=10_000)


class CardPayment(_In):
    token: str = Field(min_length=1, max_length=200)


class CashPayment(_In):
    method: Literal["cash"]


class StoreSaleCreate(_In):
    lines: list[SaleLine] = Field(min_length=1, max_length=500)
    customer_id: str | None = None
    email: Email | None = None
    payment: CardPayment | CashPayment

    def demand(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ln in self.lines:
            out[ln.sku] = out.get(ln.sku, 0) + ln.quantity
        return out


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    quantity: int
    unit_price: int
    subtotal: int
    discount: int
    total: int
    adjustments: list[dict[str, Any]]


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    provider: str | None
    method: str
    reference: str | None
    status: str


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    number: str
    channel: str
    location_id: str | None
    customer_id: str | None
    email: str | None
    cart_id: str | None
    status: str
    version: int
    currency: str
    subtotal: int
    discount_total: int
    total: int
    refunded_total: int = Field(
        default=0, description="Given back to the payment so far (refunds, returns, cancelled units)"
    )
    fulfillment: dict[str, Any] | None
    payment: PaymentOut
    placed_at: datetime
    created_at: datetime
    lines: list[OrderLineOut]

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls.model_validate(order)
