"""carts request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from omnicommerce.carts.domain import MAX_LINE_QUANTITY

CartId = Annotated[str, Field(pattern=r"^crt_[0-9A-Z]{26}$", examples=["crt_01J9Z3K4M5N6P7Q8R9S0T1V2W3"])]
Sku = Annotated[str, Field(min_length=1, max_length=64)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CartCreate(_In):
    channel: str | None = Field(default=None, description="Required for keys not bound to a channel")
    currency: str | None = Field(default=None, description="Must equal the channel's currency if given")
    customer_id: str | None = None
    email: Email | None = Field(
        default=None, description="Finds or creates the customer; their open cart wins"
    )


class LineSet(_In):
    quantity: int = Field(ge=0, le=MAX_LINE_QUANTITY, description="0 removes the line")


class LineAdd(_In):
    sku: Sku
    quantity: int = Field(ge=1, le=MAX_LINE_QUANTITY)


class Address(_In):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")


class ShipFulfillment(_In):
    type: Literal["ship"]
    address: Address


class PickupFulfillment(_In):
    type: Literal["pickup"]
    location_id: str = Field(min_length=1, max_length=40)


Fulfillment = Annotated[ShipFulfillment | PickupFulfillment, Field(discriminator="type")]


class CouponAdd(_In):
    code: str = Field(min_length=1, max_length=64)


class ClaimRequest(_In):
    code: str = Field(min_length=4, max_length=64, description="The code, or the QR payload omni:cart:<code>")


class Handoff(BaseModel):
    code: str
    qr_payload: str
    expires_at: datetime


class Adjustment(BaseModel):
    reason: str
    amount: int
    promotion_id: str | None = None
    coupon_code: str | None = None


class CartLine(BaseModel):
    sku: str
    name: str = Field(description="The product (and variant) name when the line was last set")
    quantity: int
    unit_price: int
    subtotal: int
    adjustments: list[Adjustment]
    total: int


class CartOut(BaseModel):
    id: str
    channel: str
    customer_id: str | None
    email: str | None
    currency: str
    status: str
    location_id: str | None
    fulfillment: dict[str, object] | None
    coupon_codes: list[str]
    version: int
    lines: list[CartLine]
    subtotal: int
    discount_total: int
    total: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
