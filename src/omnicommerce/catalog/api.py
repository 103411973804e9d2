"""Catalog HTTP routes: categories, products with their variants, listings per channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from omnicommerce.catalog import service
from omnicommerce.catalog.domain import (
    DuplicateBarcode,
    DuplicateCategory,
    DuplicateSku,
    ProductNotFound,
    UnknownCategory,
    UnknownListingChannel,
    UnknownSku,
)
from omnicommerce.catalog.schemas import (
    Category,
    CategoryCreate,
    ListingUpdate,
    Product,
    ProductCreate,
    Variant,
)
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import ChannelMismatch
from omnicommerce.platform.errors import problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import BadCursor, IdempotencyKey, Page, ReadUoW, Route, UoW, require

router = APIRouter(tags=["catalog"], route_class=Route)

CatalogRead = Annotated[Principal, Depends(require(Scope.CATALOG_READ))]
CatalogWrite = Annotated[Principal, Depends(require(Scope.CATALOG_WRITE))]


@router.post(
    "/categories",
    status_code=201,
    response_model=Category,
    responses=problem_schema(DuplicateCategory, UnknownCategory, IdempotencyConflict),
)
def create_category(
    body: CategoryCreate, actor: CatalogWrite, uow: UoW, idem: IdempotencyKey
) -> JSONResponse:
    return idem.run(uow, body, lambda: service.create_category(uow, actor, body))


@router.get("/categories")
def list_categories(actor: CatalogRead, uow: ReadUoW) -> list[Category]:
    return service.list_categories(uow, actor)


@router.post(
    "/products",
    status_code=201,
    response_model=Product,
    responses=problem_schema(
        DuplicateSku, DuplicateBarcode, UnknownCategory, UnknownListingChannel, IdempotencyConflict
    ),
)
def create_product(body: ProductCreate, actor: CatalogWrite, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    return idem.run(uow, body, lambda: service.create_product(uow, actor, body))


@router.get("/products", responses=problem_schema(BadCursor, ChannelMismatch))
def list_products(
    actor: CatalogRead,
    uow: ReadUoW,
    channel: Annotated[str | None, Query(description="Only products listed on this channel")] = None,
    category: Annotated[str | None, Query(description="Only products in this category")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Substring of the name or a SKU")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[Product]:
    return service.list_products(
        uow, actor, channel=channel, category=category, q=q, cursor=cursor, limit=limit
    )


@router.get("/products/{product_id}", responses=problem_schema(ProductNotFound, ChannelMismatch))
def get_product(product_id: str, actor: CatalogRead, uow: ReadUoW, channel: str | None = None) -> Product:
    return service.get_product(uow, actor, product_id, channel=channel)


@router.patch(
    "/products/{product_id}/listing", responses=problem_schema(ProductNotFound, UnknownListingChannel)
)
def set_listing(product_id: str, body: ListingUpdate, actor: CatalogWrite, uow: UoW) -> Product:
    product = service.set_listing(uow, actor, product_id, body)
    uow.commit()
    return product


@router.get("/variants/{sku}", responses=problem_schema(UnknownSku, ChannelMismatch))
def get_variant(sku: str, actor: CatalogRead, uow: ReadUoW, channel: str | None = None) -> Variant:
    return service.get_variant(uow, actor, sku, channel=channel)
