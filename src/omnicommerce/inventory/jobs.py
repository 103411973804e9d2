"""Periodic inventory work. Correctness never waits for these: reservations release expired
holds on the rows they touch themselves; the sweeper only tidies the rest."""

from __future__ import annotations

from dataclasses import dataclass

from omnicommerce.inventory import repository as repo
from omnicommerce.inventory import service
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, UnitOfWork, transaction
from omnicommerce.platform.scheduler import periodic


def expire_holds(uow: UnitOfWork, limit: int = 500) -> int:
    """Release up to ``limit`` holds past their expiry (oldest first); returns how many."""
    return service.expire_holds(uow, limit=limit)


@periodic("inventory.expire-holds", every="hold_sweep_seconds")
def scheduled_hold_sweep(db: Database, settings: Settings) -> str:
    """Release stock holds past their expiry (reservations of abandoned carts), 500 at a time."""
    released = 0
    while True:
        with transaction(db) as uow:
            n = expire_holds(uow, limit=500)
        released += n
        if n < 500:
            return f"holds released {released}"


@dataclass(frozen=True, slots=True)
class Drift:
    """A stock row whose ``reserved`` differs from the units in its held + committed holds."""

    sku: str
    location_id: str
    reserved: int
    hold_units: int


def reserved_drift(uow: UnitOfWork) -> list[Drift]:
    """Must return nothing: every reserved unit belongs to exactly one active hold."""
    drift = [Drift(*row) for row in repo.reserved_vs_holds(uow.conn)]
    drift += [Drift(sku, loc, 0, units) for sku, loc, units in repo.orphan_hold_rows(uow.conn)]
    return drift
