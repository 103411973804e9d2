"""Traits and timeline entries the profile gets from commerce events: preferred store, favourite
categories, store visits and returns."""

from __future__ import annotations

from datetime import UTC, datetime

from omnicommerce.catalog import service as catalog
from omnicommerce.catalog.schemas import CategoryCreate, ProductCreate, VariantCreate
from omnicommerce.customers import ingestion, profile
from omnicommerce.customers.subscribers import record_commerce_event
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.outbox import Envelope

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _catalog(db: Database) -> None:
    with transaction(db) as uow:
        catalog.import_catalog(
            uow,
            [CategoryCreate(id="shoes", name="Shoes"), CategoryCreate(id="socks", name="Socks")],
            [
                ProductCreate(
                    name="Runner", category_ids=["shoes"], variants=[VariantCreate(sku="RUN-1", name="42")]
                ),
                ProductCreate(
                    name="Crew", category_ids=["socks"], variants=[VariantCreate(sku="SOCK-1", name="M")]
                ),
            ],
        )


def _order(db: Database, customer_id: str, event: str, *, location: str | None, skus: list[str]) -> None:
    payload = {
        "order_id": "ord_1",
        "number": "1",
        "channel": "pos" if location else "web",
        "location_id": location,
        "customer_id": customer_id,
        "currency": "USD",
        "subtotal": 1000,
        "discount_total": 0,
        "total": 1000,
        "skus": skus,
        "payment_status": "voided",
    }
    env = Envelope(new_id("evt"), event, 1, f"omni.orders.{event}", NOW, payload)
    with transaction(db) as uow:
        record_commerce_event(uow, env)


def _traits(db: Database, customer_id: str) -> dict[str, object]:
    with db.uow(readonly=True) as uow:
        return profile.get_profile(uow, SYSTEM, customer_id).traits


def test_preferred_store_and_favourite_categories_follow_the_orders(db: Database) -> None:
    _catalog(db)
    with transaction(db) as uow:
        ada = ingestion.ingest(uow, SYSTEM, [{"type": "identify", "userId": "u-ada", "channel": "web"}])
    customer_id = ada.results[0].customer_id
    assert customer_id is not None
    assert _traits(db, customer_id)["preferred_store"] is None

    _order(db, customer_id, "order.placed", location="store-007", skus=["RUN-1"])
    _order(db, customer_id, "order.placed", location="store-007", skus=["RUN-1", "SOCK-1"])
    _order(db, customer_id, "order.placed", location="store-002", skus=["SOCK-1"])
    _order(db, customer_id, "order.placed", location=None, skus=["SOCK-1"])  # shipped: no store
    traits = _traits(db, customer_id)
    assert traits["preferred_store"] == "store-007"
    assert traits["favourite_categories"] == ["socks", "shoes"]  # 3 orders with socks, 2 with shoes

    for _ in range(2):  # two store-007 orders cancelled: store-002 now leads
        _order(db, customer_id, "order.cancelled", location="store-007", skus=[])
    assert _traits(db, customer_id)["preferred_store"] == "store-002"


def test_store_visits_and_returns_reach_the_timeline(db: Database) -> None:
    with transaction(db) as uow:
        ada = ingestion.ingest(uow, SYSTEM, [{"type": "identify", "userId": "u-ada", "channel": "web"}])
    customer_id = ada.results[0].customer_id
    assert customer_id is not None
    for event in ("curbside.arrived", "pickup.collected", "return.received"):
        payload = {"customer_id": customer_id, "order_id": "ord_1", "location_id": "store-007"}
        with transaction(db) as uow:
            record_commerce_event(
                uow, Envelope(new_id("evt"), event, 1, f"omni.fulfillment.{event}", NOW, payload)
            )
    with db.uow(readonly=True) as uow:
        names = [e.name for e in profile.get_profile(uow, SYSTEM, customer_id).timeline]
    assert {"Curbside Arrival", "Store Pickup", "Order Returned"} <= set(names)
