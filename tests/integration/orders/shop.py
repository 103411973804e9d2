"""A small shop for cart and order tests, set up through the other contexts' service functions."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from omnicommerce.catalog import service as catalog
from omnicommerce.catalog.schemas import ProductCreate, VariantCreate
from omnicommerce.customers import service as customers
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import LocationInfo
from omnicommerce.orders import service as orders_service
from omnicommerce.orders.domain import Order
from omnicommerce.orders.models import orders
from omnicommerce.platform.auth import SYSTEM, issue_access_token
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, transaction
from omnicommerce.pricing import service as pricing
from omnicommerce.pricing.schemas import CouponCreate, PriceEntry, PromotionCreate
from tests.conftest import bearer

STORES = ("store-001", "store-002")
DC = "dc-east"


def seed(
    db: Database, stock: Mapping[str, Mapping[str, int]], prices: Mapping[str, int] | None = None
) -> None:
    """Locations (one DC, two stores), one product per SKU, USD prices, and ``stock[sku][location]``."""
    prices = prices or {}
    with transaction(db) as uow:
        inventory.upsert_locations(
            uow,
            [
                LocationInfo(DC, "dc", "East DC", frozenset({"ship"}), 40.7, -74.0, "10001"),
                *(
                    LocationInfo(
                        s, "store", f"Store {s}", frozenset({"ship", "pickup"}), 40.7 + i, -73.9, "10002"
                    )
                    for i, s in enumerate(STORES)
                ),
            ],
        )
        catalog.import_catalog(
            uow,
            [],
            [
                ProductCreate(name=f"Product {sku}", variants=[VariantCreate(sku=sku, name=f"Variant {sku}")])
                for sku in stock
            ],
        )
        pricing.set_prices(
            uow, [PriceEntry(sku=sku, currency="USD", amount=prices.get(sku, 1999)) for sku in stock]
        )
        inventory.set_stock_bulk(
            uow, [(sku, loc, qty) for sku, by_loc in stock.items() for loc, qty in by_loc.items()]
        )


def promotion_and_coupon(
    db: Database, *, sku: str, code: str = "SAVE10", max_uses: int | None = None
) -> None:
    """An automatic 15% off ``sku`` and a coupon unlocking a further 10% off everything."""
    with transaction(db) as uow:
        pricing.create_promotion(
            uow, SYSTEM, PromotionCreate(name="Spring", kind="percentage", basis_points=1500, skus=[sku])
        )
        promo = pricing.create_promotion(
            uow,
            SYSTEM,
            PromotionCreate(name="Coupon 10", kind="percentage", basis_points=1000, requires_coupon=True),
        )
        pricing.create_coupon(uow, SYSTEM, CouponCreate(code=code, promotion_id=promo.id, max_uses=max_uses))


def customer_token(db: Database, settings: Settings, email: str, channel: str) -> tuple[str, dict[str, str]]:
    with transaction(db) as uow:
        cid = customers.find_or_create_by_email(uow, email=email, channel=channel)
    token = issue_access_token(settings.secret_key, customer_id=cid, channel=channel, ttl_seconds=900)
    return cid, bearer(token)


def order_count(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(orders)).scalar_one())


def stock(db: Database, sku: str) -> dict[str, tuple[int, int]]:
    """(on_hand, reserved) per location."""
    with db.uow(readonly=True) as uow:
        rows = inventory.list_positions(uow, SYSTEM, sku=sku, location_id=None, after=None, limit=1000)
    return {p.location_id: (p.on_hand, p.reserved) for p in rows}


def reserved(db: Database, sku: str) -> int:
    return sum(r for _, r in stock(db, sku).values())


SHIP = {
    "type": "ship",
    "address": {"name": "Ada", "line1": "1 Main St", "city": "NYC", "postal_code": "10001", "country": "US"},
}


def new_cart(
    client: TestClient,
    headers: dict[str, str],
    lines: Mapping[str, int],
    *,
    fulfillment: Mapping[str, object] | None = SHIP,
    **create: object,
) -> str:
    res = client.post("/api/v1/carts", json=dict(create), headers=headers)
    assert res.status_code in (200, 201), res.text
    cart_id = str(res.json()["id"])
    for sku, qty in lines.items():
        r = client.put(f"/api/v1/carts/{cart_id}/lines/{sku}", json={"quantity": qty}, headers=headers)
        assert r.status_code == 200, r.text
    if fulfillment is not None:
        r = client.put(f"/api/v1/carts/{cart_id}/fulfillment", json=dict(fulfillment), headers=headers)
        assert r.status_code == 200, r.text
    return cart_id


PRICE = 1_999  # of the paid orders the ``shop`` fixture places (conftest.py)


def order_of(db: Database, order_id: str) -> Order:
    with db.uow(readonly=True) as uow:
        return orders_service.get_order(uow, SYSTEM, order_id)
