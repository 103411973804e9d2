"""Catalog use cases on real SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from omnicommerce.catalog import service
from omnicommerce.catalog.domain import (
    DuplicateBarcode,
    DuplicateSku,
    ProductNotFound,
    UnknownCategory,
    UnknownListingChannel,
    UnknownSku,
)
from omnicommerce.catalog.schemas import CategoryCreate, ListingUpdate, ProductCreate, VariantCreate
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.channels import ChannelMismatch
from omnicommerce.platform.db import Database
from tests.statements import count_statements

POS_KEY = Principal("api_key", "key_pos", frozenset({Scope.CATALOG_READ}), channel="pos")


def product(
    name: str,
    *skus: str,
    categories: tuple[str, ...] = (),
    hidden: tuple[str, ...] = (),
    barcode_prefix: str | None = None,
) -> ProductCreate:
    variants = [
        VariantCreate(
            sku=s,
            name=f"{name} {s}",
            weight_grams=250,
            attributes={"size": s[-1]},
            barcode=f"{barcode_prefix}{i}" if barcode_prefix else None,
        )
        for i, s in enumerate(skus)
    ]
    return ProductCreate(
        name=name, category_ids=list(categories), hidden_channels=list(hidden), variants=variants
    )


@pytest.fixture
def seeded(db: Database) -> Database:
    with db.uow() as uow:
        service.import_catalog(
            uow,
            [CategoryCreate(id="tees", name="T-shirts"), CategoryCreate(id="shoes", name="Shoes")],
            [
                product("Black Tee", "TEE-BLK-S", "TEE-BLK-M", categories=("tees",), barcode_prefix="400"),
                product("Runner", "RUN-42", categories=("shoes",), hidden=("pos",)),
                product("Gift card", "GIFT_50"),
            ],
        )
        uow.commit()
    return db


def test_get_variants_is_one_query_with_everything_other_contexts_need(seeded: Database) -> None:
    with seeded.uow() as uow, count_statements(seeded) as stmts:
        infos = service.get_variants(uow, ["TEE-BLK-M", "RUN-42", "NOPE"])
    assert len(stmts) == 1
    assert set(infos) == {"TEE-BLK-M", "RUN-42"}
    run = infos["RUN-42"]
    assert (run.product_name, run.category_ids, run.hidden_channels, run.weight_grams, run.active) == (
        "Runner",
        ("shoes",),
        frozenset({"pos"}),
        250,
        True,
    )
    assert run.listed_on("web") and not run.listed_on("pos")
    assert infos["TEE-BLK-M"].barcode == "4001"


def test_existing_sku_or_barcode_is_a_conflict(seeded: Database) -> None:
    with seeded.uow() as uow:
        with pytest.raises(DuplicateSku) as err:
            service.create_product(uow, SYSTEM, product("Again", "NEW-1", "TEE-BLK-S"))
        assert err.value.extensions["skus"] == ["TEE-BLK-S"]
        with pytest.raises(DuplicateBarcode):
            service.create_product(uow, SYSTEM, product("Again", "NEW-1", barcode_prefix="400"))


def test_unknown_category_or_channel_is_refused(db: Database) -> None:
    with db.uow() as uow:
        with pytest.raises(UnknownCategory):
            service.create_product(uow, SYSTEM, product("X", "X-1", categories=("nope",)))
        with pytest.raises(UnknownListingChannel):
            service.create_product(uow, SYSTEM, product("X", "X-1", hidden=("mars",)))


def test_list_filters_by_channel_category_and_text(seeded: Database) -> None:
    with seeded.uow() as uow:

        def names(**kw: Any) -> list[str]:
            return sorted(p.name for p in service.list_products(uow, SYSTEM, **kw).items)

        assert names() == ["Black Tee", "Gift card", "Runner"]
        assert names(channel="pos") == ["Black Tee", "Gift card"]
        assert names(category="tees") == ["Black Tee"]
        assert names(q="RUN") == ["Runner"]
        assert names(q="blk-m") == ["Black Tee"]
        assert names(q="_") == ["Gift card"]  # LIKE wildcards are matched literally
        assert names(channel="pos", q="runner") == []


def test_cursor_pages_walk_every_product_once(seeded: Database) -> None:
    with seeded.uow() as uow:
        seen, cursor = [], None
        while True:
            page = service.list_products(uow, SYSTEM, limit=2, cursor=cursor)
            seen += [p.id for p in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert len(seen) == 3 == len(set(seen)) and seen == sorted(seen)


def test_channel_bound_key_sees_only_its_channel(seeded: Database) -> None:
    with seeded.uow() as uow:
        runner = service.list_products(uow, SYSTEM, q="Runner").items[0]
        assert [p.name for p in service.list_products(uow, POS_KEY).items if p.name == "Runner"] == []
        with pytest.raises(ProductNotFound):
            service.get_product(uow, POS_KEY, runner.id)
        with pytest.raises(UnknownSku):
            service.get_variant(uow, POS_KEY, "RUN-42")
        with pytest.raises(ChannelMismatch):
            service.list_products(uow, POS_KEY, channel="web")


def test_listing_change_is_stored_and_announced(seeded: Database) -> None:
    with seeded.uow() as uow:
        tee = service.list_products(uow, SYSTEM, q="Black").items[0]
        updated = service.set_listing(
            uow, SYSTEM, tee.id, ListingUpdate(hidden_channels=["web", "app", "web"])
        )
        assert updated.hidden_channels == ["app", "web"]
        assert [e.type for e in uow.pending_events] == ["product.listing_changed"]
        uow.commit()
    with seeded.uow() as uow:
        assert service.get_variants(uow, ["TEE-BLK-S"])["TEE-BLK-S"].hidden_channels == {"app", "web"}
        with pytest.raises(ProductNotFound):
            service.set_listing(uow, SYSTEM, "prd_nope", ListingUpdate(hidden_channels=[]))


def test_bulk_import_is_a_fixed_handful_of_statements(db: Database) -> None:
    categories = [CategoryCreate(id=f"c{i}", name=f"Category {i}") for i in range(10)]
    products = [
        product(
            f"P{i}",
            *(f"SKU-{i}-{v}" for v in range(4)),
            categories=(f"c{i % 10}",),
            barcode_prefix=f"9{i:04d}",
        )
        for i in range(300)
    ]
    with db.uow() as uow, count_statements(db) as stmts:
        assert service.import_catalog(uow, categories, products) == 300
        uow.commit()
    assert len(stmts) < 20
    with db.uow() as uow:
        assert len(service.get_variants(uow, [f"SKU-{i}-3" for i in range(300)])) == 300
        assert len(service.list_categories(uow, SYSTEM)) == 10
