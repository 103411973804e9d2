"""Pricing request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from omnicommerce.catalog.schemas import CategoryId, ChannelId, Sku
from omnicommerce.pricing.domain import COUPON_PATTERN, PromotionKind

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["USD"])]
Amount = Annotated[int, Field(ge=0, le=10**15, description="Minor units (cents)", examples=[1999])]
CouponCode = Annotated[
    str, Field(pattern=COUPON_PATTERN, description="Case-insensitive", examples=["WELCOME10"])
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriceEntry(_Strict):
    sku: Sku
    currency: Currency
    amount: Amount
    channel: ChannelId | None = Field(
        default=None, description="Set for a channel override; null = base price"
    )


class PricesUpdated(BaseModel):
    updated: int


class SkuPrices(BaseModel):
    sku: str
    prices: list[PriceEntry]


class QuoteLineIn(_Strict):
    sku: Sku
    quantity: int = Field(description="Units; must be at least 1")


class QuoteRequest(_Strict):
    channel: ChannelId | None = Field(
        default=None, description="Required unless the credential is bound to one"
    )
    currency: Currency
    customer_id: str | None = None
    coupon_codes: list[CouponCode] = Field(default_factory=list, max_length=20)
    lines: Annotated[list[QuoteLineIn], Field(min_length=1, max_length=500)]


class AdjustmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reason: str
    amount: int = Field(description="Negative = discount, minor units")
    promotion_id: str | None
    coupon_code: str | None


class PricedLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    quantity: int
    unit_price: int
    subtotal: int
    adjustments: list[AdjustmentOut]
    total: int


class QuoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    currency: str
    lines: list[PricedLineOut]
    subtotal: int
    discount_total: int = Field(description="Sum of the adjustments (<= 0)")
    total: int
    coupon_codes: list[str]


class PromotionCreate(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: PromotionKind
    basis_points: Annotated[int | None, Field(ge=1, le=10_000, description="percentage: 1000 = 10%")] = None
    amount_off: Annotated[
        int | None, Field(ge=1, le=10**12, description="fixed: minor units off per unit")
    ] = None
    currency: Currency | None = Field(default=None, description="fixed: the currency of amount_off")
    buy_quantity: Annotated[int | None, Field(ge=1, le=1000)] = None
    get_quantity: Annotated[int | None, Field(ge=1, le=1000)] = None
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now")
    ends_at: AwareDatetime | None = None
    channels: list[ChannelId] = Field(default_factory=list, description="Empty = every channel")
    skus: list[Sku] = Field(default_factory=list)
    category_ids: list[CategoryId] = Field(default_factory=list, description="Empty with skus = everything")
    requires_coupon: bool = False
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    active: bool = True

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        needed = {
            PromotionKind.PERCENTAGE: ("basis_points",),
            PromotionKind.FIXED: ("amount_off", "currency"),
            PromotionKind.BUY_X_GET_Y: ("buy_quantity", "get_quantity"),
        }[self.kind]
        missing = [f for f in needed if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind.value} promotion needs {', '.join(missing)}")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Promotion(BaseModel):
    id: str
    name: str
    kind: PromotionKind
    basis_points: int
    amount_off: int
    currency: str | None
    buy_quantity: int
    get_quantity: int
    starts_at: datetime
    ends_at: datetime | None
    channels: list[str]
    skus: list[str]
    category_ids: list[str]
    requires_coupon: bool
    priority: int
    active: bool
    created_at: datetime


class CouponCreate(_Strict):
    code: CouponCode
    promotion_id: str
    max_uses: Annotated[int | None, Field(ge=1, description="Null = unlimited")] = None
    expires_at: AwareDatetime | None = None


class Coupon(BaseModel):
    code: str
    promotion_id: str
    max_uses: int | None
    uses: int
    expires_at: datetime | None
