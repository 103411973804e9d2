"""Routing rules over HTTP, and the routing explanation: who may see it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.fulfillment.support import DC, NEAR, OTHER, place, seed
from tests.integration.orders.shop import customer_token


def test_rules_are_data_per_channel(client: TestClient, db: Database) -> None:
    writer = bearer(make_key(db, Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE))
    default = client.get("/api/v1/fulfillment/rules/web", headers=writer)
    assert default.status_code == 200
    assert default.json()["version"] == 0
    assert default.json()["rules"]["objectives"]["split_penalty"] == 1.5

    rules = default.json()["rules"]
    rules["filters"]["excluded_locations"] = [NEAR]
    rules["filters"]["opening_hours"] = {"store": {"open": "09:00", "close": "21:00"}}
    rules["objectives"]["split_penalty"] = 4.0
    put = client.put("/api/v1/fulfillment/rules/web", json=rules, headers=writer)
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1
    assert client.get("/api/v1/fulfillment/rules/web", headers=writer).json()["rules"] == rules
    assert client.get("/api/v1/fulfillment/rules/app", headers=writer).json()["version"] == 0

    bad = {**rules, "filters": {**rules["filters"], "required_capability": "teleport"}}
    res = client.put("/api/v1/fulfillment/rules/web", json=bad, headers=writer)
    assert res.status_code == 422 and res.headers["content-type"].startswith("application/problem+json")
    bad_hours = {**rules, "filters": {**rules["filters"], "opening_hours": {"store": {"open": "9am"}}}}
    assert client.put("/api/v1/fulfillment/rules/web", json=bad_hours, headers=writer).status_code == 422
    assert client.get("/api/v1/fulfillment/rules/nope", headers=writer).status_code == 404
    store_key = bearer(make_key(db, Scope.FULFILLMENT_WRITE, channel="pos", location=NEAR))
    assert client.put("/api/v1/fulfillment/rules/web", json=rules, headers=store_key).status_code == 403
    reader = bearer(make_key(db, Scope.FULFILLMENT_READ))
    assert client.put("/api/v1/fulfillment/rules/web", json=rules, headers=reader).status_code == 403


def test_customers_see_only_their_own_orders_routing(
    client: TestClient, db: Database, settings: Settings
) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5, OTHER: 5}})
    _, ada = customer_token(db, settings, "ada@example.com", "web")
    _, bob = customer_token(db, settings, "bob@example.com", "web")
    order_id = place(client, ada, {"SKU-A": 1})
    client.app.state.relay.drain()  # type: ignore[attr-defined]

    mine = client.get(f"/api/v1/orders/{order_id}/routing", headers=ada)
    assert mine.status_code == 200, mine.text
    [decision] = mine.json()["decisions"]
    assert decision["trigger"] == "order.paid" and decision["packages"] == 1
    chosen = [c["location_id"] for c in decision["candidates"] if c["chosen"]]
    assert chosen == [NEAR]
    assert all(c["reason"] for c in decision["candidates"])
    assert [f["location_id"] for f in mine.json()["fulfillment_orders"]] == [NEAR]

    assert client.get(f"/api/v1/orders/{order_id}/routing", headers=bob).status_code == 404
    fo_id = mine.json()["fulfillment_orders"][0]["id"]
    assert client.get(f"/api/v1/fulfillment-orders/{fo_id}", headers=ada).status_code == 200
    assert client.get(f"/api/v1/fulfillment-orders/{fo_id}", headers=bob).status_code == 404
    # Customers read; they do not run the warehouse.
    assert client.post(f"/api/v1/fulfillment-orders/{fo_id}/accept", headers=ada).status_code == 403
