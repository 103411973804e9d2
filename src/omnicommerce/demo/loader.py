"""Load the demo retailer through the contexts' bulk service functions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from omnicommerce.catalog import service as catalog
from omnicommerce.catalog.schemas import CategoryCreate, ProductCreate, VariantCreate
from omnicommerce.customers import service as customers
from omnicommerce.demo import data
from omnicommerce.demo.data import DemoRetailer
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import LocationInfo, UnknownLocation
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import HistoricalLine, HistoricalOrder
from omnicommerce.platform import auth, clock
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.channels import Channel, upsert_channel
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, UnitOfWork, transaction
from omnicommerce.platform.passwords import hash_password
from omnicommerce.pricing import service as pricing
from omnicommerce.pricing.domain import PromotionKind
from omnicommerce.pricing.schemas import CouponCreate, PriceEntry, PromotionCreate

DEMO_PASSWORD = "omnicommerce-demo"  # every demo customer signs in with it
SYSTEM = auth.SYSTEM

# What a channel that sells needs: browse, price, see stock, run carts and orders, look customers up.
SELLING_SCOPES: list[str] = [
    Scope.CATALOG_READ,
    Scope.PRICES_READ,
    Scope.INVENTORY_READ,
    Scope.CARTS_READ,
    Scope.CARTS_WRITE,
    Scope.ORDERS_READ,
    Scope.ORDERS_WRITE,
    Scope.CUSTOMERS_READ,
    Scope.CUSTOMERS_WRITE,
]

# The key every demo role gets: name, scopes, channel, location.
DEMO_KEYS: list[tuple[str, list[str], str | None, str | None]] = [
    ("demo-admin", [Scope.ADMIN], None, None),
    (
        "demo-web-storefront",
        SELLING_SCOPES,
        "web",
        None,
    ),
    (
        "demo-pos-store-007",
        [*SELLING_SCOPES, Scope.INVENTORY_WRITE],  # a store also receives and counts stock
        "pos",
        "store-007",
    ),
    (
        "demo-call-center",
        SELLING_SCOPES,
        "call_center",
        None,
    ),
]


def is_loaded(settings: Settings) -> bool:
    db = Database(settings.database_url, pool_size=1)
    try:
        with db.uow(readonly=True) as uow:
            inventory.get_location(uow, data.LOCATIONS[0][0])
        return True
    except UnknownLocation:
        return False
    finally:
        db.dispose()


def demo_keys(settings: Settings) -> dict[str, str]:
    """Fresh demo keys (older demo keys are revoked): secrets are shown once, so each start makes new ones."""
    db = Database(settings.database_url, pool_size=1)
    try:
        with transaction(db) as uow:
            for row in auth.list_api_keys(uow.conn):
                if row.name.startswith("demo-") and row.active:
                    auth.revoke_api_key(uow.conn, row.id)
            return {
                name: auth.create_api_key(
                    uow.conn, name=name, scopes=list(scopes), channel=channel, location=location
                ).secret
                for name, scopes, channel, location in DEMO_KEYS
            }
    finally:
        db.dispose()


def load_demo(
    settings: Settings, *, seed: int, customers: int, orders: int, console: Console | None = None
) -> dict[str, Any]:
    now = clock.now()
    retailer = data.generate(seed, customers=customers, orders=orders, now=now)
    db = Database(settings.database_url, pool_size=2)
    steps: list[tuple[str, Callable[[UnitOfWork], Any]]] = [
        ("channels and locations", _load_channels_and_locations),
        ("catalog", lambda uow: _load_catalog(uow, retailer)),
        ("prices and promotions", lambda uow: _load_prices(uow, retailer)),
        ("stock", lambda uow: inventory.set_stock_bulk(uow, retailer.stock)),
        ("customers", lambda uow: _load_customers(uow, retailer)),
        ("historical orders", lambda uow: _load_orders(uow, retailer)),
    ]
    progress = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    try:
        with progress:
            task = progress.add_task("demo retailer", total=len(steps))
            for label, step in steps:
                progress.update(task, description=label)
                with transaction(db) as uow:
                    step(uow)
                progress.advance(task)
            progress.update(task, description="done")
    finally:
        db.dispose()
    return {
        "channels": len(data.CHANNELS),
        "locations": f"{sum(1 for loc in data.LOCATIONS if loc[2] == 'dc')} DCs, "
        f"{sum(1 for loc in data.LOCATIONS if loc[2] == 'store')} stores",
        "products": len(retailer.products),
        "variants": sum(len(p.variants) for p in retailer.products),
        "stock rows": len(retailer.stock),
        "customers": len(retailer.customers),
        "historical orders": len(retailer.orders),
        "customer password": DEMO_PASSWORD,
    }


def _load_channels_and_locations(uow: UnitOfWork) -> None:
    for channel_id, name, kind, currency in data.CHANNELS:
        upsert_channel(uow.conn, Channel(channel_id, name, kind, currency))
    inventory.upsert_locations(
        uow,
        [
            LocationInfo(
                id=loc_id,
                kind=kind,
                name=name,
                capabilities=frozenset(caps),
                lat=lat,
                lon=lon,
                postal_code=postal,
                city=city,
                country="US",
            )
            for loc_id, name, kind, city, postal, lat, lon, _area, caps in data.LOCATIONS
        ],
    )
    # The call center ships from the DCs only and keeps 2 units in reserve per location for stores.
    inventory.set_channel_rule(uow, "call_center", [loc[0] for loc in data.LOCATIONS if loc[2] == "dc"], 2)


def _load_catalog(uow: UnitOfWork, retailer: DemoRetailer) -> None:
    categories = [
        CategoryCreate(id=cid, name=name, parent_id=parent) for cid, name, parent in data.CATEGORIES
    ]
    products = [
        ProductCreate(
            name=p.name,
            description=p.description,
            category_ids=p.category_ids,
            hidden_channels=p.hidden_channels,
            variants=[
                VariantCreate(
                    sku=v.sku,
                    barcode=v.barcode,
                    name=v.name,
                    weight_grams=v.weight_grams,
                    attributes=dict(v.attributes),
                )
                for v in p.variants
            ],
        )
        for p in retailer.products
    ]
    catalog.import_catalog(uow, categories, products)


def _load_prices(uow: UnitOfWork, retailer: DemoRetailer) -> None:
    entries = [
        PriceEntry(sku=v.sku, currency="USD", amount=v.price) for p in retailer.products for v in p.variants
    ]
    # App-only prices on every tenth product: the app is the cheapest place to buy those.
    entries += [
        PriceEntry(sku=v.sku, currency="USD", amount=v.price - v.price // 10, channel="app")
        for p in retailer.products[::10]
        for v in p.variants
    ]
    pricing.set_prices(uow, entries)
    start = clock.now() - timedelta(days=1)
    pricing.create_promotion(
        uow,
        SYSTEM,
        PromotionCreate(
            name="Winter outerwear 20% off",
            kind=PromotionKind.PERCENTAGE,
            basis_points=2000,
            starts_at=start,
            ends_at=start + timedelta(days=60),
            category_ids=["outerwear"],
        ),
    )
    pricing.create_promotion(
        uow,
        SYSTEM,
        PromotionCreate(
            name="Hats: buy 2, get 1 free",
            kind=PromotionKind.BUY_X_GET_Y,
            buy_quantity=2,
            get_quantity=1,
            starts_at=start,
            category_ids=["hats"],
        ),
    )
    welcome = pricing.create_promotion(
        uow,
        SYSTEM,
        PromotionCreate(
            name="Welcome 10% off",
            kind=PromotionKind.PERCENTAGE,
            basis_points=1000,
            starts_at=start,
            requires_coupon=True,
        ),
    )
    pricing.create_coupon(uow, SYSTEM, CouponCreate(code="WELCOME10", promotion_id=welcome.id, max_uses=1000))


def _load_customers(uow: UnitOfWork, retailer: DemoRetailer) -> None:
    rows = [
        {
            "email": c.email,
            "phone": c.phone,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "channel": c.channel,
        }
        for c in retailer.customers
    ]
    customers.import_customers(uow, rows, password_hash=hash_password(DEMO_PASSWORD))


def _load_orders(uow: UnitOfWork, retailer: DemoRetailer) -> None:
    variants = {v.sku: (f"{p.name} — {v.name}", v.price) for p in retailer.products for v in p.variants}
    ids: dict[int, str] = {}
    history = []
    for o in retailer.orders:
        customer_id = None
        if o.customer_index is not None:
            email = retailer.customers[o.customer_index].email
            if o.customer_index not in ids:
                ids[o.customer_index] = customers.find_or_create_by_email(uow, email=email, channel=o.channel)
            customer_id = ids[o.customer_index]
        lines = tuple(
            HistoricalLine(sku=sku, name=variants[sku][0], quantity=q, unit_price=variants[sku][1])
            for sku, q in o.lines
        )
        history.append(
            HistoricalOrder(
                channel=o.channel,
                currency="USD",
                placed_at=o.placed_at,
                lines=lines,
                customer_id=customer_id,
                location_id=o.location_id,
            )
        )
    orders.import_orders(uow, history)
