"""Routing a paid order: candidates from the rules, the engine's plan, the allocations moved
there with the conditional update, fulfillment orders created, and the decision explained."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from omnicommerce.fulfillment import routing_service
from omnicommerce.fulfillment import service as fulfillment
from omnicommerce.fulfillment.rules import FilterRules, RoutingRules
from omnicommerce.orders.domain import Status as OrderStatus
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database, transaction
from tests.integration.fulfillment.support import (
    DC,
    NEAR,
    OTHER,
    allocations,
    drift,
    levels,
    order,
    place,
    route,
    seed,
    shopper,
)


def _decisions(db: Database, order_id: str) -> list[dict[str, object]]:
    with db.uow(readonly=True) as uow:
        return fulfillment.routing_of(uow, SYSTEM, order_id)[1]


def test_paid_order_moves_from_the_checkout_allocation_to_the_cheapest_location(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5, OTHER: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 2})
    assert allocations(db, order_id) == {("SKU-A", DC): 2}  # checkout takes from the deepest stock

    fos = route(db, order_id)

    assert [(fo.location_id, fo.kind, fo.status, fo.units) for fo in fos] == [
        (NEAR, "ship", "pending", {"SKU-A": 2})
    ]
    assert allocations(db, order_id) == {("SKU-A", NEAR): 2}
    assert levels(db, "SKU-A") == {DC: (10, 0), NEAR: (5, 2), OTHER: (5, 0)}
    assert order(db, order_id).status == OrderStatus.FULFILLING
    [decision] = _decisions(db, order_id)
    by_location = {c["location_id"]: c for c in decision["candidates"]}  # type: ignore[attr-defined]
    assert by_location[NEAR]["chosen"] is True
    assert by_location[DC]["chosen"] is False and by_location[OTHER]["chosen"] is False
    assert by_location[DC]["package_cost"] > by_location[NEAR]["package_cost"]
    assert decision["assignments"] == [{"sku": "SKU-A", "location_id": NEAR, "quantity": 2, "delayed": False}]
    assert decision["ship_to"] == [40.75, -73.99]  # from the postal code, via the store sharing it
    assert drift(db) == []


def test_routing_twice_changes_nothing(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 1})
    first = route(db, order_id)
    again = route(db, order_id)
    assert [f.id for f in again] == [f.id for f in first]
    assert len(_decisions(db, order_id)) == 1
    assert allocations(db, order_id) == {("SKU-A", NEAR): 1}


def test_the_paid_event_routes_through_the_relay_once(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 1})
    relay = client.app.state.relay  # type: ignore[attr-defined]
    relay.drain()
    relay.drain()
    with db.uow(readonly=True) as uow:
        fos = fulfillment.fos_of_order(uow, SYSTEM, order_id)
    assert [(f.location_id, f.units) for f in fos] == [(NEAR, {"SKU-A": 1})]
    assert order(db, order_id).status == OrderStatus.FULFILLING


def test_rule_filters_keep_locations_out_and_say_why(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5, OTHER: 5}})
    with transaction(db) as uow:
        rules = RoutingRules(filters=FilterRules(excluded_locations=[NEAR], max_distance_km=5))
        fulfillment.put_rules(uow, SYSTEM, "web", rules)
    order_id = place(client, shopper(db), {"SKU-A": 1})

    fos = route(db, order_id)

    assert [f.location_id for f in fos] == [DC]  # the near store is excluded, the other too far
    [decision] = _decisions(db, order_id)
    reasons = {c["location_id"]: c["reason"] for c in decision["candidates"]}  # type: ignore[attr-defined]
    assert reasons[NEAR] == "excluded"
    assert "beyond 5 km" in reasons[OTHER]
    assert drift(db) == []


def test_units_no_candidate_has_stay_where_checkout_put_them(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5}})
    with transaction(db) as uow:
        fulfillment.put_rules(uow, SYSTEM, "web", RoutingRules(filters=FilterRules(eligible_kinds=["store"])))
    order_id = place(client, shopper(db), {"SKU-A": 7})  # more than any store has: DC at checkout

    fos = route(db, order_id)

    assert {f.location_id: f.units for f in fos} == {NEAR: {"SKU-A": 5}, DC: {"SKU-A": 2}}
    assert sum(allocations(db, order_id).values()) == 7
    assert drift(db) == []


def test_an_engine_failure_keeps_the_checkout_allocation(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 2})

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(routing_service, "route_order", broken)
    fos = route(db, order_id)  # the event stream is not stalled: the order is routed as it stands

    assert [(f.location_id, f.units) for f in fos] == [(DC, {"SKU-A": 2})]
    [decision] = _decisions(db, order_id)
    assert decision["method"] == "engine-error"
    assert order(db, order_id).status == OrderStatus.FULFILLING
    assert drift(db) == []
