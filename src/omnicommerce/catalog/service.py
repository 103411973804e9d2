"""Catalog use cases. They never commit; other contexts call only these functions."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from omnicommerce.catalog import repository as repo
from omnicommerce.catalog.domain import (
    DuplicateBarcode,
    DuplicateSku,
    ProductNotFound,
    UnknownCategory,
    UnknownListingChannel,
    UnknownSku,
    VariantInfo,
    check_new_variants,
    pack_ids,
    unpack_ids,
)
from omnicommerce.catalog.events import ProductCreated, ProductListingChanged
from omnicommerce.catalog.schemas import (
    Category,
    CategoryCreate,
    ListingUpdate,
    Product,
    ProductCreate,
    Variant,
)
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.channels import list_channels, resolve_channel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.web import Page, decode_cursor, page_of


def listing_channel(actor: Principal, requested: str | None) -> str | None:
    """The channel whose listing scopes a read; None = an unbound caller asking for every channel."""
    if actor.channel is None and requested is None:
        return None
    return resolve_channel(actor.channel, requested)


# --- categories ------------------------------------------------------------------------------


def create_category(uow: UnitOfWork, actor: Principal, cmd: CategoryCreate) -> Category:
    category = Category(id=cmd.id or new_id("cat"), name=cmd.name, parent_id=cmd.parent_id)
    _insert_categories(uow, [category])
    return category


def list_categories(uow: UnitOfWork, actor: Principal) -> list[Category]:
    return [Category(id=r.id, name=r.name, parent_id=r.parent_id) for r in repo.list_categories(uow.conn)]


def _insert_categories(uow: UnitOfWork, batch: Sequence[Category]) -> None:
    parents = {c.parent_id for c in batch if c.parent_id} - {c.id for c in batch}
    _require_categories(uow, parents)
    now = clock.now()
    repo.insert_categories(uow.conn, [{**c.model_dump(), "created_at": now} for c in batch])


def _require_categories(uow: UnitOfWork, ids: Collection[str]) -> None:
    missing = sorted(set(ids) - repo.existing_category_ids(uow.conn, ids))
    if missing:
        raise UnknownCategory(f"no such category: {', '.join(missing)}", category_ids=missing)


# --- products --------------------------------------------------------------------------------


def create_product(uow: UnitOfWork, actor: Principal, cmd: ProductCreate) -> Product:
    return _insert_products(uow, [cmd], new_categories=())[0]


def import_catalog(uow: UnitOfWork, categories: list[CategoryCreate], products: list[ProductCreate]) -> int:
    """Bulk load (demo, ERP import) with multi-row inserts: a fixed handful of statements.

    Returns the number of products added."""
    batch = [Category(id=c.id or new_id("cat"), name=c.name, parent_id=c.parent_id) for c in categories]
    if batch:
        _insert_categories(uow, batch)
    return len(_insert_products(uow, products, new_categories={c.id for c in batch}))


def _insert_products(
    uow: UnitOfWork, cmds: Sequence[ProductCreate], *, new_categories: Collection[str]
) -> list[Product]:
    if not cmds:
        return []
    all_variants = [v for p in cmds for v in p.variants]
    check_new_variants([v.sku for v in all_variants], [v.barcode for v in all_variants])
    _require_categories(uow, {c for p in cmds for c in p.category_ids} - set(new_categories))
    _require_channels(uow, {ch for p in cmds for ch in p.hidden_channels})
    _require_free(uow, [v.sku for v in all_variants], [v.barcode for v in all_variants if v.barcode])
    now = clock.now()
    created = [_new_product(cmd, now) for cmd in cmds]
    repo.insert_products(
        uow.conn,
        [_product_row(p) for p in created],
        [_variant_row(v, i) for p in created for i, v in enumerate(p.variants)],
    )
    for p in created:
        uow.emit(
            ProductCreated(
                product_id=p.id, name=p.name, skus=[v.sku for v in p.variants], category_ids=p.category_ids
            )
        )
    return created


def _require_channels(uow: UnitOfWork, ids: Collection[str]) -> None:
    if not ids:
        return
    missing = sorted(set(ids) - {c.id for c in list_channels(uow.conn)})
    if missing:
        raise UnknownListingChannel(f"no such channel: {', '.join(missing)}", channels=missing)


def _require_free(uow: UnitOfWork, skus: list[str], barcodes: list[str]) -> None:
    taken = repo.taken_skus_and_barcodes(uow.conn, skus, barcodes)
    wanted_skus = set(skus)
    if dup := sorted(r.sku for r in taken if r.sku in wanted_skus):
        raise DuplicateSku(f"SKU(s) already exist: {', '.join(dup)}", skus=dup)
    if dup := sorted({r.barcode for r in taken if r.barcode}):
        raise DuplicateBarcode(f"barcode(s) already in use: {', '.join(dup)}", barcodes=dup)


def _new_product(cmd: ProductCreate, now: datetime) -> Product:
    product_id = new_id("prd")
    return Product(
        id=product_id,
        name=cmd.name,
        description=cmd.description,
        category_ids=sorted(set(cmd.category_ids)),
        hidden_channels=sorted(set(cmd.hidden_channels)),
        active=cmd.active,
        created_at=now,
        variants=[Variant(product_id=product_id, **v.model_dump()) for v in cmd.variants],
    )


def _product_row(p: Product) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "category_ids": pack_ids(p.category_ids),
        "hidden_channels": pack_ids(p.hidden_channels),
        "active": p.active,
        "created_at": p.created_at,
        "updated_at": p.created_at,
    }


def _variant_row(v: Variant, position: int) -> dict[str, Any]:
    return {
        "sku": v.sku,
        "barcode": v.barcode,
        "product_id": v.product_id,
        "name": v.name,
        "weight_grams": v.weight_grams,
        "attributes": json.dumps(v.attributes, sort_keys=True),
        "position": position,
        "active": v.active,
    }


def list_products(
    uow: UnitOfWork,
    actor: Principal,
    *,
    channel: str | None = None,
    category: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Product]:
    rows = repo.find_products(
        uow.conn,
        channel=listing_channel(actor, channel),
        category=category,
        q=q,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    return page_of(_with_variants(uow, rows), limit, lambda p: p.id)


def get_product(uow: UnitOfWork, actor: Principal, product_id: str, *, channel: str | None = None) -> Product:
    return _load_product(uow, product_id, channel=listing_channel(actor, channel))


def set_listing(uow: UnitOfWork, actor: Principal, product_id: str, cmd: ListingUpdate) -> Product:
    _require_channels(uow, cmd.hidden_channels)
    hidden = sorted(set(cmd.hidden_channels))
    if not repo.set_hidden_channels(uow.conn, product_id, pack_ids(hidden), clock.now()):
        raise ProductNotFound(f"no product {product_id!r}")
    uow.emit(ProductListingChanged(product_id=product_id, hidden_channels=hidden))
    # The writer sees the result even if it just hid the product from its own channel.
    return _load_product(uow, product_id, channel=None)


def _load_product(uow: UnitOfWork, product_id: str, *, channel: str | None) -> Product:
    row = repo.get_product(uow.conn, product_id, channel=channel)
    if row is None:
        raise ProductNotFound(f"no product {product_id!r}")
    return _with_variants(uow, [row])[0]


def _with_variants(uow: UnitOfWork, rows: Sequence[Row[Any]]) -> list[Product]:
    by_product: dict[str, list[Variant]] = {}
    for v in repo.variants_of(uow.conn, [r.id for r in rows]):
        by_product.setdefault(v.product_id, []).append(_variant(v))
    return [
        Product(
            id=r.id,
            name=r.name,
            description=r.description,
            category_ids=list(unpack_ids(r.category_ids)),
            hidden_channels=list(unpack_ids(r.hidden_channels)),
            active=r.active,
            created_at=r.created_at,
            variants=by_product.get(r.id, []),
        )
        for r in rows
    ]


def _variant(row: Row[Any]) -> Variant:
    return Variant(
        sku=row.sku,
        barcode=row.barcode,
        name=row.name,
        product_id=row.product_id,
        weight_grams=row.weight_grams,
        attributes=json.loads(row.attributes),
        active=row.active,
    )


# --- variants --------------------------------------------------------------------------------


def get_variant(uow: UnitOfWork, actor: Principal, sku: str, *, channel: str | None = None) -> Variant:
    rows = repo.variant_infos(uow.conn, [sku], channel=listing_channel(actor, channel))
    if not rows:
        raise UnknownSku(f"no variant with SKU {sku!r}", sku=sku)
    return _variant(rows[0])


def get_variants(uow: UnitOfWork, skus: Collection[str]) -> dict[str, VariantInfo]:
    """SKU → what other contexts need, in one query; unknown SKUs are absent."""
    return {
        r.sku: VariantInfo(
            sku=r.sku,
            product_id=r.product_id,
            product_name=r.product_name,
            name=r.name,
            barcode=r.barcode,
            category_ids=unpack_ids(r.category_ids),
            hidden_channels=frozenset(unpack_ids(r.hidden_channels)),
            weight_grams=r.weight_grams,
            active=bool(r.active and r.product_active),
        )
        for r in repo.variant_infos(uow.conn, set(skus))
    }
