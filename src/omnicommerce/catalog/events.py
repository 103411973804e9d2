"""Events the catalog publishes."""

from __future__ import annotations

from typing import ClassVar, Literal

from omnicommerce.platform.events import Event


class ProductCreated(Event):
    context: ClassVar[str] = "catalog"
    type: Literal["product.created"] = "product.created"
    version: Literal[1] = 1
    product_id: str
    name: str
    skus: list[str]
    category_ids: list[str]


class ProductListingChanged(Event):
    context: ClassVar[str] = "catalog"
    type: Literal["product.listing_changed"] = "product.listing_changed"
    version: Literal[1] = 1
    product_id: str
    hidden_channels: list[str]
