"""One cart across channels: started on web, seen on the app, claimed at a store, merged at sign-in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from omnicommerce.carts import service as carts
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, transaction
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, STORES, customer_token, new_cart, seed, stock

KEY_SCOPES = (Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.ORDERS_READ)


@pytest.fixture
def shop(db: Database) -> None:
    seed(db, {"JACKET": {DC: 5, STORES[0]: 5}, "SCARF": {DC: 5, STORES[0]: 5}})


def test_cart_started_on_web_continues_on_app(
    client: TestClient, db: Database, settings: Settings, shop: None
) -> None:
    web = bearer(make_key(db, *KEY_SCOPES, channel="web"))
    cart_id = new_cart(client, web, {"JACKET": 1}, fulfillment=None, email="grace@example.com")
    customer_id, app = customer_token(db, settings, "grace@example.com", "app")

    mine = client.get("/api/v1/me/carts", headers=app).json()
    assert [c["id"] for c in mine] == [cart_id]
    assert mine[0]["customer_id"] == customer_id and mine[0]["lines"][0]["sku"] == "JACKET"

    again = client.post("/api/v1/carts", json={}, headers=app)
    assert again.status_code == 200 and again.json()["id"] == cart_id and again.json()["channel"] == "app"
    assert [(ln["sku"], ln["quantity"]) for ln in again.json()["lines"]] == [("JACKET", 1)]
    # now on the app channel: the web key no longer reaches it, the customer still does
    assert client.get(f"/api/v1/carts/{cart_id}", headers=web).status_code == 404
    assert (
        client.put(f"/api/v1/carts/{cart_id}/lines/SCARF", json={"quantity": 2}, headers=app).status_code
        == 200
    )


def test_handoff_code_moves_cart_and_holds_to_the_store(
    client: TestClient, db: Database, settings: Settings, shop: None
) -> None:
    customer_id, app = customer_token(db, settings, "alan@example.com", "app")
    cart_id = new_cart(client, app, {"JACKET": 2}, fulfillment=None)
    assert stock(db, "JACKET")[STORES[0]][1] + stock(db, "JACKET")[DC][1] == 2
    handoff = client.post(f"/api/v1/carts/{cart_id}/handoff", headers=app)
    assert handoff.status_code == 201, handoff.text
    code = handoff.json()["code"]
    assert handoff.json()["qr_payload"] == f"omni:cart:{code}"

    pos = bearer(make_key(db, *KEY_SCOPES, Scope.ORDERS_WRITE, channel="pos", location=STORES[0]))
    assert client.post("/api/v1/carts/claim", json={"code": code}, headers=app).status_code == 403
    claimed = client.post("/api/v1/carts/claim", json={"code": code.lower()}, headers=pos)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["channel"] == "pos" and claimed.json()["location_id"] == STORES[0]
    assert stock(db, "JACKET")[STORES[0]][1] == 2 and stock(db, "JACKET")[DC][1] == 0  # holds moved
    assert (
        client.post("/api/v1/carts/claim", json={"code": code}, headers=pos)
        .json()["type"]
        .endswith("handoff-code-used")
    )

    order = client.post(f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=pos)
    assert order.status_code == 201, order.text
    assert (order.json()["channel"], order.json()["location_id"]) == ("pos", STORES[0])
    mine = client.get("/api/v1/me/orders", headers=app).json()["items"]
    assert [o["id"] for o in mine] == [order.json()["id"]]
    assert (
        client.get(f"/api/v1/customers/{customer_id}/orders", headers=app).json()["items"][0]["customer_id"]
        == customer_id
    )
    _, other = customer_token(db, settings, "eve@example.com", "web")
    assert client.get(f"/api/v1/customers/{customer_id}/orders", headers=other).status_code == 404
    assert client.get(f"/api/v1/orders/{order.json()['id']}", headers=other).status_code == 404


def test_handoff_codes_expire(client: TestClient, db: Database, settings: Settings, shop: None) -> None:
    _, app = customer_token(db, settings, "kay@example.com", "app")
    cart_id = new_cart(client, app, {"SCARF": 1}, fulfillment=None)
    code = client.post(f"/api/v1/carts/{cart_id}/handoff", headers=app).json()["code"]
    later = clock.now() + timedelta(seconds=settings.handoff_code_ttl_seconds + 1)
    clock.set_clock(lambda: later)
    agent = bearer(make_key(db, *KEY_SCOPES, channel="call_center"))
    res = client.post("/api/v1/carts/claim", json={"code": code}, headers=agent)
    assert res.status_code == 410 and res.json()["type"].endswith("handoff-code-expired")
    assert client.post("/api/v1/carts/claim", json={"code": "ZZZZZZZZ"}, headers=agent).status_code == 404


def test_call_center_claims_without_moving_stock(
    client: TestClient, db: Database, settings: Settings, shop: None
) -> None:
    _, app = customer_token(db, settings, "lin@example.com", "app")
    cart_id = new_cart(client, app, {"SCARF": 1}, fulfillment=None)
    code = client.post(f"/api/v1/carts/{cart_id}/handoff", headers=app).json()["code"]
    agent = bearer(make_key(db, *KEY_SCOPES, channel="call_center"))
    res = client.post("/api/v1/carts/claim", json={"code": f"omni:cart:{code}"}, headers=agent)
    assert (
        res.status_code == 200
        and res.json()["channel"] == "call_center"
        and res.json()["location_id"] is None
    )
    assert client.get(f"/api/v1/carts/{cart_id}", headers=agent).status_code == 200


def test_anonymous_cart_merges_into_customer_cart(
    client: TestClient, db: Database, settings: Settings, shop: None
) -> None:
    customer_id, web_me = customer_token(db, settings, "mo@example.com", "web")
    mine = new_cart(client, web_me, {"JACKET": 1}, fulfillment=None)
    web = bearer(make_key(db, *KEY_SCOPES, channel="web"))
    anon = new_cart(client, web, {"JACKET": 2, "SCARF": 1}, fulfillment=None)
    assert sum(r for _, r in stock(db, "JACKET").values()) == 3

    with transaction(db) as uow:
        carts.merge_anonymous_cart(
            uow, anonymous_cart_id=anon, customer_id=customer_id, channel="web", ttl_seconds=900
        )

    merged = client.get(f"/api/v1/carts/{mine}", headers=web_me).json()
    assert {ln["sku"]: ln["quantity"] for ln in merged["lines"]} == {"JACKET": 3, "SCARF": 1}
    assert client.get(f"/api/v1/carts/{anon}", headers=web).json()["status"] == "merged"
    assert sum(r for _, r in stock(db, "JACKET").values()) == 3  # not double-reserved
    assert sum(r for _, r in stock(db, "SCARF").values()) == 1


def test_anonymous_cart_becomes_the_customers_when_they_have_none(
    client: TestClient, db: Database, settings: Settings, shop: None
) -> None:
    customer_id, app = customer_token(db, settings, "new@example.com", "app")
    web = bearer(make_key(db, *KEY_SCOPES, channel="web"))
    anon = new_cart(client, web, {"SCARF": 1}, fulfillment=None)
    with transaction(db) as uow:
        carts.merge_anonymous_cart(
            uow, anonymous_cart_id=anon, customer_id=customer_id, channel="app", ttl_seconds=900
        )
    assert [c["id"] for c in client.get("/api/v1/me/carts", headers=app).json()] == [anon]
    with db.uow(readonly=True) as uow:
        assert [c.id for c in carts.list_for_customer(uow, SYSTEM, customer_id)] == [anon]


def test_me_is_for_customers_only(client: TestClient, db: Database, settings: Settings) -> None:
    key = bearer(make_key(db, Scope.ADMIN))
    for path in ("/api/v1/me", "/api/v1/me/orders", "/api/v1/me/carts"):
        res = client.get(path, headers=key)
        assert res.status_code == 403 and res.headers["content-type"].startswith("application/problem+json")
    customer_id, me = customer_token(db, settings, "me@example.com", "web")
    assert client.get("/api/v1/me", headers=me).json()["id"] == customer_id
