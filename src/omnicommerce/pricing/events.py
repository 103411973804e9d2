"""Events pricing publishes."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from omnicommerce.platform.events import Event


class PriceChanged(Event):
    context: ClassVar[str] = "pricing"
    type: Literal["price.changed"] = "price.changed"
    version: Literal[1] = 1
    sku: str
    currency: str
    channel: str | None  # None = the base price
    amount: int


class PromotionCreated(Event):
    context: ClassVar[str] = "pricing"
    type: Literal["promotion.created"] = "promotion.created"
    version: Literal[1] = 1
    promotion_id: str
    name: str
    kind: str
    requires_coupon: bool
    starts_at: datetime
    ends_at: datetime | None
