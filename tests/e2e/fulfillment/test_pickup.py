"""BOPIS and curbside over HTTP: ready with a code and an expiry, the store's own key hands it
over, expiry cancels, releases the units and refunds; curbside arrivals and handover time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from omnicommerce.fulfillment import jobs
from omnicommerce.orders.payments import TestPaymentProvider
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.fulfillment.support import (
    NEAR,
    OTHER,
    PICKUP_AT_NEAR,
    drift,
    levels,
    order,
    place,
    seed,
)
from tests.integration.orders.shop import customer_token

FULFIL = (Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE)


def _ready_pickup(client: TestClient, db: Database, shopper: dict[str, str], store: dict[str, str]) -> Any:
    order_id = place(client, shopper, {"SKU-A": 2}, fulfillment=PICKUP_AT_NEAR)
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    [fo] = client.get(f"/api/v1/orders/{order_id}/fulfillment-orders", headers=shopper).json()
    assert (fo["kind"], fo["location_id"], fo["status"]) == ("pickup", NEAR, "pending")
    for step in ("accept", "pick", "pack", "ready"):
        res = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/{step}", headers=store)
        assert res.status_code == 200, res.text
    return res.json()


def test_bopis_hand_over_with_the_code(client: TestClient, db: Database, settings: Settings) -> None:
    seed(db, {"SKU-A": {NEAR: 5}})
    _, ada = customer_token(db, settings, "ada@example.com", "web")
    store = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    ready = _ready_pickup(client, db, ada, store)
    assert ready["status"] == "ready_for_pickup" and ready["pickup_code"] is None  # the store never sees it

    mine = client.get(f"/api/v1/fulfillment-orders/{ready['id']}", headers=ada).json()
    code = mine["pickup_code"]
    assert len(code) == 6 and mine["qr_payload"] == f"omni:pickup:{ready['id']}:{code}"
    queue = client.get(f"/api/v1/locations/{NEAR}/pickups", headers=store).json()
    assert [f["id"] for f in queue["items"]] == [ready["id"]]
    other_store = bearer(make_key(db, *FULFIL, channel="pos", location=OTHER))
    assert client.get(f"/api/v1/locations/{NEAR}/pickups", headers=other_store).status_code == 404

    path = f"/api/v1/fulfillment-orders/{ready['id']}/hand-over"
    wrong = client.post(path, json={"code": "AAAAAA" if code != "AAAAAA" else "BBBBBB"}, headers=store)
    assert wrong.status_code == 409 and wrong.json()["type"].endswith("/wrong-pickup-code")
    unbound = bearer(make_key(db, *FULFIL))
    assert client.post(path, json={"code": code}, headers=unbound).status_code == 403
    assert client.post(path, json={"code": code}, headers=other_store).status_code == 404
    done = client.post(path, json={"code": mine["qr_payload"]}, headers=store)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "picked_up"
    assert order(db, mine["order_id"]).status == "completed"
    assert levels(db, "SKU-A") == {NEAR: (3, 0)}
    assert client.get(f"/api/v1/locations/{NEAR}/pickups", headers=store).json()["items"] == []
    assert drift(db) == []


def test_an_expired_pickup_is_cancelled_released_and_refunded(
    client: TestClient, db: Database, settings: Settings
) -> None:
    seed(db, {"SKU-A": {NEAR: 5}})
    _, ada = customer_token(db, settings, "ada@example.com", "web")
    store = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    ready = _ready_pickup(client, db, ada, store)
    code = client.get(f"/api/v1/fulfillment-orders/{ready['id']}", headers=ada).json()["pickup_code"]
    later = clock.now() + timedelta(hours=73)  # the default window is 72 hours
    clock.set_clock(lambda: later)

    seen = client.get(f"/api/v1/fulfillment-orders/{ready['id']}", headers=ada).json()
    assert (seen["status"], seen["reason"]) == ("cancelled", "pickup window passed")  # checked at read
    res = client.post(
        f"/api/v1/fulfillment-orders/{ready['id']}/hand-over", json={"code": code}, headers=store
    )
    assert res.status_code == 409 and res.json()["type"].endswith("/pickup-expired")
    assert client.get(f"/api/v1/locations/{NEAR}/pickups", headers=store).json()["items"] == []

    swept = jobs.expire_pickups(db, TestPaymentProvider(db))
    assert (swept.expired, swept.refunded, swept.refund_failures) == (1, 1, 0)
    assert levels(db, "SKU-A") == {NEAR: (5, 0)}  # back on the shelf, sellable
    refunded = order(db, ready["order_id"])
    assert (refunded.status, refunded.payment.status) == ("refunded", "refunded")
    assert jobs.expire_pickups(db, TestPaymentProvider(db)) == jobs.SweepResult(0, 0, 0)
    assert drift(db) == []


def test_curbside_arrival_queue_and_handover_time(
    client: TestClient, db: Database, settings: Settings
) -> None:
    seed(db, {"SKU-A": {NEAR: 5, OTHER: 5}})
    _, ada = customer_token(db, settings, "ada@example.com", "app")
    _, bob = customer_token(db, settings, "bob@example.com", "app")
    store = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    ready = _ready_pickup(client, db, ada, store)
    code = client.get(f"/api/v1/fulfillment-orders/{ready['id']}", headers=ada).json()["pickup_code"]
    path = f"/api/v1/fulfillment-orders/{ready['id']}/arrived"
    assert client.post(path, json={"bay": "3"}, headers=bob).status_code == 404  # not bob's order

    arrival = client.post(path, json={"bay": "3", "car": "blue Golf"}, headers=ada)
    assert arrival.status_code == 200, arrival.text
    assert (arrival.json()["arrival_bay"], arrival.json()["arrival_car"]) == ("3", "blue Golf")
    waiting = client.get(f"/api/v1/locations/{NEAR}/curbside", headers=store).json()["items"]
    assert [(f["id"], f["arrival_bay"]) for f in waiting] == [(ready["id"], "3")]

    later = clock.now() + timedelta(seconds=240)
    clock.set_clock(lambda: later)
    done = client.post(
        f"/api/v1/fulfillment-orders/{ready['id']}/hand-over", json={"code": code}, headers=store
    )
    assert done.status_code == 200, done.text
    assert 239 <= done.json()["handover_seconds"] <= 241
    assert client.get(f"/api/v1/locations/{NEAR}/curbside", headers=store).json()["items"] == []
    assert client.post(path, json={"bay": "4"}, headers=ada).status_code == 409  # already collected


def test_curbside_only_where_the_store_offers_it(
    client: TestClient, db: Database, settings: Settings
) -> None:
    seed(db, {"SKU-A": {OTHER: 5}})
    _, ada = customer_token(db, settings, "ada@example.com", "web")
    order_id = place(client, ada, {"SKU-A": 1}, fulfillment={"type": "pickup", "location_id": OTHER})
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    [fo] = client.get(f"/api/v1/orders/{order_id}/fulfillment-orders", headers=ada).json()
    res = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/arrived", json={"bay": "1"}, headers=ada)
    assert res.status_code == 409 and res.json()["type"].endswith("/curbside-not-offered")
