"""A small omnichannel retailer for fulfillment tests: a far DC, a store near the customer (with
curbside) and another store, set up through the other contexts' service functions."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.testclient import TestClient

from omnicommerce.catalog import service as catalog
from omnicommerce.catalog.schemas import ProductCreate, VariantCreate
from omnicommerce.fulfillment import service as fulfillment
from omnicommerce.fulfillment.domain import FulfillmentOrder
from omnicommerce.inventory import jobs as inventory_jobs
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import LocationInfo
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.db import Database, transaction
from omnicommerce.pricing import service as pricing
from omnicommerce.pricing.schemas import PriceEntry
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import SHIP, new_cart

DC = "dc-far"  # ~3,900 km from the customer: cheap to pick, dear to ship
NEAR = "store-near"  # same postal code as the customer (10001); offers curbside and same-day
OTHER = "store-other"  # ~12 km away
PICKUP_AT_NEAR = {"type": "pickup", "location_id": NEAR}


def seed(db: Database, stock: Mapping[str, Mapping[str, int]]) -> None:
    """The three locations, one product per SKU (1 kg, $19.99), and ``stock[sku][location]``."""
    with transaction(db) as uow:
        inventory.upsert_locations(
            uow,
            [
                LocationInfo(DC, "dc", "West DC", frozenset({"ship"}), 34.05, -118.24, "90001"),
                LocationInfo(
                    NEAR,
                    "store",
                    "Midtown",
                    frozenset({"ship", "pickup", "curbside", "same_day"}),
                    40.75,
                    -73.99,
                    "10001",
                ),
                LocationInfo(
                    OTHER, "store", "Brooklyn", frozenset({"ship", "pickup"}), 40.65, -73.95, "11201"
                ),
            ],
        )
        catalog.import_catalog(
            uow,
            [],
            [
                ProductCreate(
                    name=f"Product {sku}",
                    variants=[VariantCreate(sku=sku, name=f"V {sku}", weight_grams=1000)],
                )
                for sku in stock
            ],
        )
        pricing.set_prices(uow, [PriceEntry(sku=sku, currency="USD", amount=1999) for sku in stock])
        inventory.set_stock_bulk(
            uow, [(sku, loc, qty) for sku, by_loc in stock.items() for loc, qty in by_loc.items()]
        )


def shopper(db: Database) -> dict[str, str]:
    return bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="web"))


def place(
    client: TestClient,
    headers: dict[str, str],
    lines: Mapping[str, int],
    *,
    fulfillment: Mapping[str, object] = SHIP,
) -> str:
    """A paid web order (checked out through the API); not routed yet."""
    cart_id = new_cart(client, headers, lines, fulfillment=fulfillment)
    res = client.post(
        f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=headers
    )
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


def route(db: Database, order_id: str) -> list[FulfillmentOrder]:
    with transaction(db) as uow:
        return fulfillment.route_paid_order(uow, order_id)


def order(db: Database, order_id: str) -> Order:
    with db.uow(readonly=True) as uow:
        return orders.get_order(uow, SYSTEM, order_id)


def levels(db: Database, sku: str) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) per location."""
    with db.uow(readonly=True) as uow:
        rows = inventory.list_positions(uow, SYSTEM, sku=sku, location_id=None, after=None, limit=100)
    return {p.location_id: (p.on_hand, p.reserved) for p in rows}


def allocations(db: Database, order_id: str) -> dict[tuple[str, str], int]:
    with db.uow(readonly=True) as uow:
        return {
            (a.sku, a.location_id): a.quantity for a in inventory.order_allocations(uow, order_id=order_id)
        }


def drift(db: Database) -> list[inventory_jobs.Drift]:
    with db.uow(readonly=True) as uow:
        return inventory_jobs.reserved_drift(uow)
