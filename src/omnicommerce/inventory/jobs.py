"""Periodic inventory work. Correctness never waits for these: reservations release expired
holds on the rows they touch themselves; the sweeper only tidies the rest."""

from __future__ import annotations

from dataclasses import dataclass

from omnicommerce.inventory import repository as repo
from omnicommerce.inventory import service
from omnicommerce.platform.db import UnitOfWork


def expire_holds(uow: UnitOfWork, limit: int = 500) -> int:
    """Release up to ``limit`` holds past their expiry (oldest first); returns how many."""
    return service.expire_holds(uow, limit=limit)


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
