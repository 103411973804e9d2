"""Catalog request and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from omnicommerce.catalog.domain import SKU_PATTERN, SLUG_PATTERN

Sku = Annotated[
    str, Field(pattern=SKU_PATTERN, description="Stock keeping unit, unique", examples=["TSHIRT-BLK-M"])
]
CategoryId = Annotated[str, Field(min_length=1, max_length=64, examples=["cat_01J9Z3…", "t-shirts"])]
ChannelId = Annotated[str, Field(min_length=1, max_length=40, examples=["web"])]
AttributeValue = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryCreate(_Strict):
    id: Annotated[str | None, Field(pattern=SLUG_PATTERN, description="A slug id; omitted = `cat_…`")] = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    parent_id: CategoryId | None = None


class Category(BaseModel):
    id: str
    name: str
    parent_id: str | None


class VariantCreate(_Strict):
    sku: Sku
    barcode: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    name: Annotated[str, Field(min_length=1, max_length=300)]
    weight_grams: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, examples=[{"size": "M"}])
    active: bool = True


class ProductCreate(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=300)]
    description: Annotated[str, Field(max_length=20_000)] = ""
    category_ids: list[CategoryId] = Field(default_factory=list)
    hidden_channels: list[ChannelId] = Field(default_factory=list, description="Channels it is NOT listed on")
    active: bool = True
    variants: Annotated[list[VariantCreate], Field(min_length=1, max_length=500)]


class ListingUpdate(_Strict):
    hidden_channels: list[ChannelId] = Field(description="Channels the product is NOT listed on")


class Variant(BaseModel):
    sku: str
    barcode: str | None
    name: str
    product_id: str
    weight_grams: int
    attributes: dict[str, AttributeValue]
    active: bool


class Product(BaseModel):
    id: str
    name: str
    description: str
    category_ids: list[str]
    hidden_channels: list[str]
    active: bool
    created_at: datetime
    variants: list[Variant]
