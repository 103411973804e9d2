"""Batch re-optimisation: orders routed one at a time, then re-planned together so the first
does not keep the units the second needs more; applied atomically, or not at all."""

from __future__ import annotations

from fastapi.testclient import TestClient

from omnicommerce.fulfillment import service as fulfillment
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database, transaction
from tests.integration.fulfillment.support import (
    DC,
    NEAR,
    OTHER,
    allocations,
    drift,
    place,
    route,
    seed,
    shopper,
)


def _parts(db: Database, order_id: str) -> list[tuple[str, str, dict[str, int]]]:
    with db.uow(readonly=True) as uow:
        fos = fulfillment.fos_of_order(uow, SYSTEM, order_id)
    return sorted((f.location_id, f.status, f.units) for f in fos)


def test_the_batch_gives_the_contested_unit_to_the_order_that_needs_it(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 1, OTHER: 1, DC: 10}, "SKU-B": {NEAR: 5, DC: 10}})
    headers = shopper(db)
    first = place(client, headers, {"SKU-A": 1})
    second = place(client, headers, {"SKU-A": 1, "SKU-B": 1})
    route(db, first)
    route(db, second)
    assert _parts(db, first) == [(NEAR, "pending", {"SKU-A": 1})]  # took the near store's only A
    assert len(_parts(db, second)) == 2  # so the second order splits

    with transaction(db) as uow:
        outcome = fulfillment.reoptimize_open_orders(uow, channel="web", time_budget_s=5)

    assert (outcome.orders, outcome.changed) == (2, 2)
    assert outcome.bound <= outcome.cost + 1e-6
    assert allocations(db, first) == {("SKU-A", OTHER): 1}
    assert allocations(db, second) == {("SKU-A", NEAR): 1, ("SKU-B", NEAR): 1}
    assert [p for p in _parts(db, second) if p[1] == "pending"] == [
        (NEAR, "pending", {"SKU-A": 1, "SKU-B": 1})
    ]
    with db.uow(readonly=True) as uow:
        decisions = fulfillment.routing_of(uow, SYSTEM, second)[1]
    assert [d["trigger"] for d in decisions] == ["order.paid", "batch"]
    assert drift(db) == []

    with transaction(db) as uow:  # already optimal: nothing moves the second time
        again = fulfillment.reoptimize_open_orders(uow, channel="web", time_budget_s=5)
    assert (again.orders, again.changed) == (2, 0)


def test_orders_a_location_started_on_are_left_alone(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 1, OTHER: 1, DC: 10}, "SKU-B": {NEAR: 5, DC: 10}})
    headers = shopper(db)
    first = place(client, headers, {"SKU-A": 1})
    second = place(client, headers, {"SKU-A": 1, "SKU-B": 1})
    [started] = route(db, first)
    route(db, second)
    with transaction(db) as uow:
        fulfillment.advance(uow, SYSTEM, started.id, fulfillment.Action.ACCEPT)
        outcome = fulfillment.reoptimize_open_orders(uow, channel="web", time_budget_s=5)
    assert outcome.orders == 1  # only the second order is still open to re-planning
    assert allocations(db, first) == {("SKU-A", NEAR): 1}
    assert drift(db) == []
