"""Ship from store / DC over HTTP: the state machine, split shipments with tracking numbers,
illegal transitions as 409 problem+json, the order completing, and who may act on what."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.fulfillment.support import DC, NEAR, OTHER, drift, levels, order, place, seed, shopper

FULFIL = (Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE)


def _routed(client: TestClient, order_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    res = client.get(f"/api/v1/orders/{order_id}/fulfillment-orders", headers=headers)
    assert res.status_code == 200, res.text
    return list(res.json())


def _post(client: TestClient, path: str, headers: dict[str, str], body: Any = None) -> Any:
    res = client.post(f"/api/v1/fulfillment-orders/{path}", json=body, headers=headers)
    assert res.status_code == 200, res.text
    return res.json()


def test_split_shipment_ships_with_tracking_and_completes_the_order(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 3}, "SKU-B": {DC: 10, OTHER: 3}})
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    order_id = place(client, shopper(db), {"SKU-A": 1, "SKU-B": 2})

    fos = _routed(client, order_id, ops)

    assert sorted((f["location_id"], f["status"], f["kind"]) for f in fos) == [
        (NEAR, "pending", "ship"),
        (OTHER, "pending", "ship"),
    ]
    for i, fo in enumerate(sorted(fos, key=lambda f: f["location_id"])):
        for step in ("accept", "pick", "pack"):
            assert _post(client, f"{fo['id']}/{step}", ops)["status"] in ("accepted", "picking", "packed")
        shipped = _post(client, f"{fo['id']}/ship", ops, {"tracking_number": f"1Z{i}", "carrier": "UPS"})
        assert (shipped["status"], shipped["tracking_number"]) == ("shipped", f"1Z{i}")
    assert levels(db, "SKU-A")[NEAR] == (2, 0)  # the unit left the store: on hand and allocation
    assert levels(db, "SKU-B")[OTHER] == (1, 0)

    near, other = sorted(fos, key=lambda f: f["location_id"])
    _post(client, f"{near['id']}/deliver", ops)
    assert order(db, order_id).status == "fulfilling"  # half of it is still on its way
    _post(client, f"{other['id']}/deliver", ops)
    assert order(db, order_id).status == "completed"
    assert drift(db) == []


def test_illegal_transitions_are_409_problems(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 3}})
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    [fo] = _routed(client, place(client, shopper(db), {"SKU-A": 1}), ops)

    res = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/deliver", headers=ops)
    assert res.status_code == 409
    assert res.headers["content-type"].startswith("application/problem+json")
    problem = res.json()
    assert problem["type"].endswith("/illegal-fulfillment-transition")
    assert problem["status_now"] == "pending" and problem["action"] == "deliver"

    res = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/ready", headers=ops)  # a shipment, not a pickup
    assert res.status_code == 409
    res = client.post(
        f"/api/v1/fulfillment-orders/{fo['id']}/ship", json={"tracking_number": ""}, headers=ops
    )
    assert res.status_code == 422
    _post(client, f"{fo['id']}/accept", ops)
    res = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/accept", headers=ops)
    assert res.status_code == 409


def test_cancel_gives_the_units_back(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 3}})
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    [fo] = _routed(client, place(client, shopper(db), {"SKU-A": 2}), ops)
    assert levels(db, "SKU-A") == {NEAR: (3, 2)}
    cancelled = _post(client, f"{fo['id']}/cancel", ops, {"reason": "customer called"})
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "customer called")
    assert levels(db, "SKU-A") == {NEAR: (3, 0)}
    assert drift(db) == []


def test_a_store_key_reaches_only_its_own_stores_orders(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 3}})
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    [fo] = _routed(client, place(client, shopper(db), {"SKU-A": 1}), ops)
    near_key = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    other_key = bearer(make_key(db, *FULFIL, channel="pos", location=OTHER))
    read_only = bearer(make_key(db, Scope.FULFILLMENT_READ))

    for path in ("accept", "cancel"):
        res = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/{path}", headers=other_key)
        assert res.status_code == 404, res.text
    assert client.get(f"/api/v1/fulfillment-orders/{fo['id']}", headers=other_key).status_code == 404
    listed = client.get("/api/v1/fulfillment-orders", headers=other_key).json()
    assert listed["items"] == []
    assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/accept", headers=read_only).status_code == 403
    assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/accept").status_code == 401
    assert _post(client, f"{fo['id']}/accept", near_key)["status"] == "accepted"
    mine = client.get("/api/v1/fulfillment-orders", params={"status": "accepted"}, headers=near_key).json()
    assert [f["id"] for f in mine["items"]] == [fo["id"]]


def test_reject_over_http_reroutes_and_replays_by_idempotency_key(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 3, OTHER: 3}})
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    [fo] = _routed(client, place(client, shopper(db), {"SKU-A": 2}), ops)
    near_key = {**bearer(make_key(db, *FULFIL, channel="pos", location=NEAR)), "Idempotency-Key": "rej-1"}
    body = {"lines": [{"sku": "SKU-A", "quantity": 2}], "reason": "shelf empty"}

    first = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/reject", json=body, headers=near_key)
    again = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/reject", json=body, headers=near_key)
    other = client.post(
        f"/api/v1/fulfillment-orders/{fo['id']}/reject", json={**body, "reason": "x"}, headers=near_key
    )

    assert first.status_code == 200, first.text
    assert first.json()["fulfillment_order"]["status"] == "rejected"
    assert [f["location_id"] for f in first.json()["rerouted_to"]] == [OTHER]
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert other.status_code == 422
    assert levels(db, "SKU-A") == {NEAR: (1, 0), OTHER: (3, 2)}
    routing = client.get(f"/api/v1/orders/{fo['order_id']}/routing", headers=ops).json()
    assert [d["trigger"] for d in routing["decisions"]] == ["order.paid", f"rejection:{fo['id']}"]
    bad = client.post(
        f"/api/v1/fulfillment-orders/{first.json()['rerouted_to'][0]['id']}/reject",
        json={"lines": [{"sku": "SKU-A", "quantity": 9}]},
        headers=ops,
    )
    assert bad.status_code == 422 and bad.json()["type"].endswith("/bad-rejection")
