"""Cart POSTs under an Idempotency-Key replay their first answer (the key is checked after the
work, optimistically), and one customer never gets two active carts, even when racing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, SHIP, reserved, seed

SCOPES = (Scope.CARTS_READ, Scope.CARTS_WRITE)


@pytest.fixture
def web(db: Database) -> dict[str, str]:
    seed(db, {"CAP": {DC: 5}})
    return bearer(make_key(db, *SCOPES, channel="web"))


def test_creating_with_a_key_twice_gives_one_cart(client: TestClient, web: dict[str, str]) -> None:
    headers = {**web, "Idempotency-Key": "open-1"}
    first = client.post("/api/v1/carts", json={}, headers=headers)
    again = client.post("/api/v1/carts", json={}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/api/v1/carts", json={"currency": "USD"}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


def test_adding_a_line_with_a_key_twice_adds_once(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    cart_id = client.post("/api/v1/carts", json={}, headers=web).json()["id"]
    headers = {**web, "Idempotency-Key": "add-1"}
    body = {"sku": "CAP", "quantity": 1}
    first = client.post(f"/api/v1/carts/{cart_id}/lines", json=body, headers=headers)
    again = client.post(f"/api/v1/carts/{cart_id}/lines", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert [(ln["sku"], ln["quantity"]) for ln in again.json()["lines"]] == [("CAP", 1)]
    assert reserved(db, "CAP") == 1
    other = client.post(f"/api/v1/carts/{cart_id}/lines", json={"sku": "CAP", "quantity": 2}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")

    # Once the cart has checked out, the work itself would now fail (cart not open): the stored
    # answer still stands for a repeat, and the failure stands for a new key.
    assert client.put(f"/api/v1/carts/{cart_id}/fulfillment", json=SHIP, headers=web).status_code == 200
    paid = client.post(f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=web)
    assert paid.status_code == 201, paid.text
    late = client.post(f"/api/v1/carts/{cart_id}/lines", json=body, headers=headers)
    assert late.status_code == 200 and late.json() == first.json()
    fresh = client.post(
        f"/api/v1/carts/{cart_id}/lines", json=body, headers={**web, "Idempotency-Key": "add-2"}
    )
    assert fresh.status_code == 409 and fresh.json()["type"].endswith("/cart-not-open")
    assert reserved(db, "CAP") == 1


def test_racing_opens_for_one_customer_share_one_cart(
    app: FastAPI, db: Database, web: dict[str, str]
) -> None:
    start = threading.Barrier(10)

    def open_cart(_: int) -> tuple[int, str]:
        with TestClient(app, raise_server_exceptions=False) as c:
            start.wait()
            res = c.post("/api/v1/carts", json={"email": "race@example.com"}, headers=web)
            return res.status_code, res.json().get("id", res.text)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(open_cart, range(10)))
    assert sorted(s for s, _ in results) == [200] * 9 + [201], results
    assert len({cart_id for _, cart_id in results}) == 1
