"""Orders through HTTP: store sales, reading with scopes, cancel and refund."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, STORES, new_cart, order_count, reserved, seed, stock

POS_SCOPES = (Scope.ORDERS_READ, Scope.ORDERS_WRITE, Scope.CARTS_READ, Scope.CARTS_WRITE)


@pytest.fixture
def pos(db: Database) -> dict[str, str]:
    seed(db, {"SOCKS": {DC: 10, STORES[0]: 10}}, prices={"SOCKS": 500})
    return bearer(make_key(db, *POS_SCOPES, channel="pos", location=STORES[0]))


def test_store_sale_is_recorded_once_and_takes_stock(
    client: TestClient, db: Database, pos: dict[str, str]
) -> None:
    body = {
        "lines": [{"sku": "SOCKS", "quantity": 2}, {"sku": "SOCKS", "quantity": 1}],
        "payment": {"token": "tok_visa"},
        "email": "walkin@example.com",
    }
    first = client.post("/api/v1/orders", json=body, headers={**pos, "Idempotency-Key": "till-1"})
    again = client.post("/api/v1/orders", json=body, headers={**pos, "Idempotency-Key": "till-1"})
    assert first.status_code == 201, first.text
    assert again.json()["id"] == first.json()["id"] and order_count(db) == 1
    order = first.json()
    assert (order["status"], order["total"], order["location_id"]) == ("completed", 1500, STORES[0])
    assert order["customer_id"] is not None
    assert stock(db, "SOCKS")[STORES[0]] == (7, 0)
    cash = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "SOCKS", "quantity": 1}], "payment": {"method": "cash"}},
        headers=pos,
    )
    assert cash.status_code == 201 and cash.json()["payment"]["method"] == "cash"
    declined = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "SOCKS", "quantity": 1}], "payment": {"token": "tok_decline"}},
        headers=pos,
    )
    assert declined.status_code == 402 and order_count(db) == 2
    card = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "SOCKS", "quantity": 1}], "payment": {"token": "5555555555554444"}},
        headers=pos,
    )
    assert card.status_code == 422 and order_count(db) == 2


def test_store_sale_needs_a_store_key(client: TestClient, db: Database, pos: dict[str, str]) -> None:
    web = bearer(make_key(db, *POS_SCOPES, channel="web"))
    res = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "SOCKS", "quantity": 1}], "payment": {"method": "cash"}},
        headers=web,
    )
    assert res.status_code == 403 and res.json()["type"].endswith("store-key-required")


def test_list_filters_and_scopes(client: TestClient, db: Database, pos: dict[str, str]) -> None:
    web = bearer(make_key(db, *POS_SCOPES, channel="web"))
    for _ in range(3):
        assert (
            client.post(
                "/api/v1/orders",
                json={"lines": [{"sku": "SOCKS", "quantity": 1}], "payment": {"method": "cash"}},
                headers=pos,
            ).status_code
            == 201
        )
    cart_id = new_cart(client, web, {"SOCKS": 1})
    web_order = client.post(
        f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=web
    )
    admin = bearer(make_key(db, Scope.ADMIN))
    page = client.get("/api/v1/orders", params={"limit": 2}, headers=admin).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(
        "/api/v1/orders", params={"limit": 2, "cursor": page["next_cursor"]}, headers=admin
    ).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert len(client.get("/api/v1/orders", params={"channel": "pos"}, headers=admin).json()["items"]) == 3
    assert [o["id"] for o in client.get("/api/v1/orders", headers=web).json()["items"]] == [
        web_order.json()["id"]
    ]
    assert client.get(f"/api/v1/orders/{web_order.json()['id']}", headers=pos).status_code == 404
    assert client.get("/api/v1/orders", params={"status": "bogus"}, headers=admin).status_code == 422
    assert client.get("/api/v1/orders", params={"cursor": "%%%"}, headers=admin).status_code in (200, 422)


def test_cancel_paid_order_refunds_and_refund_is_terminal(
    client: TestClient, db: Database, pos: dict[str, str]
) -> None:
    web = bearer(make_key(db, *POS_SCOPES, channel="web"))
    cart_id = new_cart(client, web, {"SOCKS": 2})
    order = client.post(
        f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=web
    ).json()
    cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=web)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["payment"]["status"]) == ("cancelled", "refunded")
    again = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=web)
    assert again.status_code == 409 and again.json()["type"].endswith("illegal-transition")
    assert client.post(f"/api/v1/orders/{order['id']}/refund", headers=web).status_code == 409

    sale = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "SOCKS", "quantity": 1}], "payment": {"token": "tok_visa"}},
        headers=pos,
    ).json()
    refunded = client.post(f"/api/v1/orders/{sale['id']}/refund", headers=pos)
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert reserved(db, "SOCKS") == 0  # the cancelled order's allocation went back; sales hold nothing
