"""Paid orders for the refund tests (ledger, stranded claims)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from omnicommerce.orders.domain import Order
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, PRICE, new_cart, order_of, seed


@pytest.fixture
def shop(client: TestClient, db: Database) -> Callable[[], Order]:
    """Places a paid web order of three units (not routed: the relay does not run)."""
    seed(db, {"MUG": {DC: 10_000}}, prices={"MUG": PRICE})
    web = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="web"))

    def place() -> Order:
        cart_id = new_cart(client, web, {"MUG": 3})
        res = client.post(
            f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=web
        )
        assert res.status_code == 201, res.text
        return order_of(db, res.json()["id"])

    return place
