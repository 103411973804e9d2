"""Same-day delivery: offers from stores in range with open slots before the cut-off; booking
takes a slot place with a conditional update and moves the order's stock to the store."""

from __future__ import annotations

from datetime import UTC, datetime, time

from fastapi.testclient import TestClient

from omnicommerce.fulfillment.domain import SlotFull
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.fulfillment.support import DC, NEAR, allocations, drift, levels, order, place, seed
from tests.integration.orders.shop import customer_token

TODAY_10AM = datetime.combine(datetime.now(UTC).date(), time(10, 0), UTC)


def _rules(client: TestClient, ops: dict[str, str]) -> None:
    rules = client.get("/api/v1/fulfillment/rules/web", headers=ops).json()["rules"]
    rules["filters"]["excluded_locations"] = [NEAR]  # regular shipments go from the DC
    rules["same_day"] = {
        "enabled": True,
        "radius_km": 20,
        "cutoff": "15:00",
        "slots": [
            {"start": "09:00", "end": "11:00", "capacity": 5},
            {"start": "16:00", "end": "18:00", "capacity": 1},
        ],
    }
    assert client.put("/api/v1/fulfillment/rules/web", json=rules, headers=ops).status_code == 200


def test_same_day_offer_booking_and_delivery(client: TestClient, db: Database, settings: Settings) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 3}})
    ops = bearer(make_key(db, Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE, Scope.ORDERS_READ))
    _rules(client, ops)
    _, ada = customer_token(db, settings, "ada@example.com", "web")
    _, bob = customer_token(db, settings, "bob@example.com", "web")
    first, second = place(client, ada, {"SKU-A": 2}), place(client, ada, {"SKU-A": 1})
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    assert allocations(db, first) == {("SKU-A", DC): 2}
    clock.set_clock(lambda: TODAY_10AM)  # after the tokens: they are checked against real time

    offers = client.get(
        "/api/v1/fulfillment/same-day/offers", params={"postal_code": "10001", "line": "SKU-A:2"}, headers=ada
    )
    assert offers.status_code == 200, offers.text
    assert [(o["location_id"], [s["places_left"] for s in o["slots"]]) for o in offers.json()] == [
        (NEAR, [1])
    ]
    too_many = client.get(
        "/api/v1/fulfillment/same-day/offers", params={"postal_code": "10001", "line": "SKU-A:4"}, headers=ada
    )
    assert too_many.json() == []  # the store does not hold 4

    not_his = client.post(
        f"/api/v1/orders/{first}/same-day", json={"location_id": NEAR, "slot_start": "16:00"}, headers=bob
    )
    assert not_his.status_code == 404
    booked = client.post(
        f"/api/v1/orders/{first}/same-day",
        json={"location_id": NEAR, "slot_start": "16:00"},
        headers={**ada, "Idempotency-Key": "sd-1"},
    )
    assert booked.status_code == 201, booked.text
    fo = booked.json()
    assert (fo["kind"], fo["location_id"], fo["status"]) == ("same_day", NEAR, "pending")
    assert fo["delivery_from"].startswith(f"{TODAY_10AM.date().isoformat()}T16:00")
    assert allocations(db, first) == {("SKU-A", NEAR): 2}
    assert levels(db, "SKU-A") == {DC: (10, 1), NEAR: (3, 2)}
    parts = client.get(f"/api/v1/orders/{first}/fulfillment-orders", headers=ada).json()
    assert sorted((p["kind"], p["status"]) for p in parts) == [("same_day", "pending"), ("ship", "cancelled")]

    full = client.post(
        f"/api/v1/orders/{second}/same-day", json={"location_id": NEAR, "slot_start": "16:00"}, headers=ada
    )
    assert full.status_code == 409 and full.json()["type"].endswith(f"/{SlotFull.code}")
    begun = client.post(
        f"/api/v1/orders/{second}/same-day", json={"location_id": NEAR, "slot_start": "09:00"}, headers=ada
    )
    assert begun.status_code == 409 and begun.json()["type"].endswith("/same-day-unavailable")

    for step in ("accept", "pick", "pack"):
        assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/{step}", headers=ops).status_code == 200
    shipped = client.post(
        f"/api/v1/fulfillment-orders/{fo['id']}/ship", json={"tracking_number": "COURIER-7"}, headers=ops
    )
    assert shipped.status_code == 200, shipped.text
    assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/deliver", headers=ops).status_code == 200
    assert order(db, first).status == "completed"
    assert drift(db) == []


def test_no_same_day_after_the_cutoff(client: TestClient, db: Database, settings: Settings) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 3}})
    ops = bearer(make_key(db, Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE))
    _rules(client, ops)
    _, ada = customer_token(db, settings, "ada@example.com", "web")
    order_id = place(client, ada, {"SKU-A": 1})
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    clock.set_clock(lambda: TODAY_10AM.replace(hour=15, minute=30))
    offers = client.get(
        "/api/v1/fulfillment/same-day/offers", params={"postal_code": "10001", "line": "SKU-A"}, headers=ada
    )
    assert offers.status_code == 200 and offers.json() == []
    late = client.post(
        f"/api/v1/orders/{order_id}/same-day", json={"location_id": NEAR, "slot_start": "16:00"}, headers=ada
    )
    assert late.status_code == 409
    assert allocations(db, order_id) == {("SKU-A", DC): 1}
    bad = client.get(
        "/api/v1/fulfillment/same-day/offers", params={"postal_code": "10001", "line": "SKU-A:x"}, headers=ada
    )
    assert bad.status_code == 422
