"""POST /fulfillment/reoptimize: the batch re-planning on demand (admin), and the distance filter
applied per order to the batch plan."""

from __future__ import annotations

from fastapi.testclient import TestClient

from omnicommerce.fulfillment import service
from omnicommerce.fulfillment.rules import FilterRules, RoutingRules
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.db import Database, transaction
from tests.conftest import bearer, make_key
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

PATH = "/api/v1/fulfillment/reoptimize"


def _two_orders_contesting_the_near_store(client: TestClient, db: Database) -> tuple[str, str]:
    """The first order takes the near store's only A; the second, which also needs B there, splits."""
    seed(db, {"SKU-A": {NEAR: 1, OTHER: 1, DC: 10}, "SKU-B": {NEAR: 5, DC: 10}})
    headers = shopper(db)
    first = place(client, headers, {"SKU-A": 1})
    second = place(client, headers, {"SKU-A": 1, "SKU-B": 1})
    route(db, first)
    route(db, second)
    assert allocations(db, first) == {("SKU-A", NEAR): 1}
    return first, second


def test_an_admin_re_plans_open_orders_over_http(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    first, second = _two_orders_contesting_the_near_store(client, db)

    res = client.post(PATH, json={"channel": "web", "time_budget_seconds": 2}, headers=admin_headers)

    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["channel"], body["orders"], body["changed"], body["method"]) == ("web", 2, 2, "batch-milp")
    assert body["bound"] <= body["cost"] + 1e-6 and body["dropped_for_distance"] == 0
    assert allocations(db, second) == {("SKU-A", NEAR): 1, ("SKU-B", NEAR): 1}
    assert allocations(db, first) == {("SKU-A", OTHER): 1}
    assert drift(db) == []


def test_reoptimize_is_for_admins_and_checks_its_input(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    ops = bearer(make_key(db, Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE))
    assert client.post(PATH, json={}, headers=ops).status_code == 403
    assert client.post(PATH, json={}).status_code == 401
    unknown = client.post(PATH, json={"channel": "nope"}, headers=admin_headers)
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/unknown-channel")
    bad = client.post(PATH, json={"time_budget_seconds": 0, "limit": 0}, headers=admin_headers)
    assert bad.status_code == 422
    empty = client.post(PATH, json={"channel": "app"}, headers=admin_headers)
    assert empty.status_code == 200 and (empty.json()["orders"], empty.json()["changed"]) == (0, 0)


def test_the_batch_never_sends_an_order_beyond_the_distance_filter(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    first, second = _two_orders_contesting_the_near_store(client, db)
    before = {first: allocations(db, first), second: allocations(db, second)}
    with transaction(db) as uow:  # the other store (~12 km from the customer) is now too far
        service.put_rules(uow, SYSTEM, "web", RoutingRules(filters=FilterRules(max_distance_km=5)))

    res = client.post(PATH, json={"channel": "web", "time_budget_seconds": 2}, headers=admin_headers)

    assert res.status_code == 200, res.text
    # The batch plan sends the first order to the other store, too far now: re-planned alone, it
    # keeps the near store's unit. Without that unit the batch sends the second order's A there
    # too: re-planned alone, it ships from the DC (DCs ship anywhere) instead of the other store.
    body = res.json()
    assert (body["dropped_for_distance"], body["orders"], body["changed"]) == (2, 2, 1)
    assert allocations(db, first) == before[first] == {("SKU-A", NEAR): 1}
    assert allocations(db, second) == {("SKU-A", DC): 1, ("SKU-B", DC): 1}
    assert before[second][("SKU-A", OTHER)] == 1
    assert drift(db) == []
