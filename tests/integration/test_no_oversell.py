"""Many shoppers on every channel race for the last 10 units: exactly 10 win, nothing oversold."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, SHIP, STORES, order_count, seed, stock

SKU = "LAST-UNITS"
SCOPES = (Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.ORDERS_READ)
PER_CHANNEL = 14  # 56 checkouts in all


@pytest.mark.slow
def test_concurrent_checkouts_never_oversell(app: FastAPI, db: Database) -> None:
    seed(db, {SKU: {DC: 4, STORES[0]: 3, STORES[1]: 3}})
    keys = [
        bearer(make_key(db, *SCOPES, channel="web")),
        bearer(make_key(db, *SCOPES, channel="app")),
        bearer(make_key(db, *SCOPES, channel="call_center")),
        bearer(make_key(db, *SCOPES, channel="pos", location=STORES[0])),
        bearer(make_key(db, *SCOPES, channel="pos", location=STORES[1])),
    ]
    shoppers = [keys[i % len(keys)] for i in range(PER_CHANNEL * 4)]

    def shop(headers: dict[str, str]) -> tuple[str, str]:
        with TestClient(app, raise_server_exceptions=False) as c:
            cart = c.post("/api/v1/carts", json={}, headers=headers)
            assert cart.status_code == 201, cart.text
            cart_id = cart.json()["id"]
            line = c.put(f"/api/v1/carts/{cart_id}/lines/{SKU}", json={"quantity": 1}, headers=headers)
            if line.status_code != 200:
                return "line", line.json()["type"]
            if cart.json()["location_id"] is None:  # POS carts are carry-outs from their store
                assert (
                    c.put(f"/api/v1/carts/{cart_id}/fulfillment", json=SHIP, headers=headers).status_code
                    == 200
                )
            res = c.post(
                f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=headers
            )
            return ("order", res.json()["id"]) if res.status_code == 201 else ("checkout", res.json()["type"])

    with ThreadPoolExecutor(len(shoppers)) as pool:
        outcomes = list(pool.map(shop, shoppers))

    winners = [o for o in outcomes if o[0] == "order"]
    losers = [o for o in outcomes if o[0] != "order"]
    assert len(winners) == 10, outcomes
    assert order_count(db) == 10
    assert all(t.endswith("/insufficient-stock") for _, t in losers), losers
    levels = stock(db, SKU)
    assert all(on_hand - res >= 0 and res >= 0 for on_hand, res in levels.values()), levels
    assert sum(res for _, res in levels.values()) == 10  # every unit allocated to exactly one order
