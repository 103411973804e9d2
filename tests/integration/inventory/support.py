"""Shared set-up for inventory tests: three locations and a few helpers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from omnicommerce.inventory import service
from omnicommerce.inventory.domain import LocationInfo, StockPosition
from omnicommerce.inventory.models import holds, stock_levels
from omnicommerce.platform.db import Database, transaction

LOCATIONS = [
    LocationInfo(
        id="dc-east",
        kind="dc",
        name="DC East",
        capabilities=frozenset({"ship"}),
        lat=40.71,
        lon=-74.0,
        postal_code="10001",
        city="New York",
        country="US",
    ),
    LocationInfo(
        id="store-007",
        kind="store",
        name="Store 7",
        capabilities=frozenset({"ship", "pickup"}),
        lat=42.36,
        lon=-71.06,
        postal_code="02108",
        city="Boston",
        country="US",
    ),
    LocationInfo(
        id="store-008",
        kind="store",
        name="Store 8",
        capabilities=frozenset({"pickup", "curbside"}),
        lat=41.82,
        lon=-71.41,
        postal_code="02903",
        city="Providence",
        country="US",
    ),
]


def setup_stock(db: Database, rows: Iterable[tuple[str, str, int] | tuple[str, str, int, int]]) -> None:
    with transaction(db) as uow:
        service.upsert_locations(uow, LOCATIONS)
        service.set_stock_bulk(uow, list(rows))


def position(db: Database, sku: str, location_id: str) -> StockPosition:
    with db.engine.connect() as conn:
        r = conn.execute(
            select(stock_levels).where(stock_levels.c.sku == sku, stock_levels.c.location_id == location_id)
        ).one()
    return StockPosition(r.sku, r.location_id, r.on_hand, r.reserved, r.safety_stock)


def total_reserved(db: Database, sku: str) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(stock_levels.c.reserved), 0)).where(stock_levels.c.sku == sku)
            ).scalar_one()
        )


def hold_states(db: Database, owner_id: str) -> list[Any]:
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                select(holds.c.sku, holds.c.location_id, holds.c.quantity, holds.c.state)
                .where(holds.c.owner_id == owner_id)
                .order_by(holds.c.sku, holds.c.location_id, holds.c.state)
            ).all()
        )
