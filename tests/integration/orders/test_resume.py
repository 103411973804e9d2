"""A checkout that died between its transactions is resumed by the next attempt, which pays under
the same key (the provider replays: one charge) and places the one order."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from omnicommerce.carts import service as carts
from omnicommerce.orders.payments import TestPaymentProvider
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.db import Database, transaction
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, new_cart, order_count, reserved, seed


def _charges(db: Database) -> list[tuple[str, str]]:
    with db.engine.connect() as conn:
        return [
            (r.reference, r.status)
            for r in conn.execute(text("SELECT reference, status FROM payment_test_charges"))
        ]


def test_a_crashed_checkout_is_resumed_without_charging_twice(client: TestClient, db: Database) -> None:
    seed(db, {"MUG": {DC: 5}}, prices={"MUG": 1250})
    web = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="web"))
    cart_id = new_cart(client, web, {"MUG": 2})

    # The first attempt: Tx A committed, the charge went through, then the process died.
    with transaction(db) as uow:
        claimed = carts.begin_checkout(uow, SYSTEM, cart_id, fulfillment=None, email=None, ttl_seconds=900)
    first = TestPaymentProvider(db).authorize(
        2500, "USD", "tok_visa", f"checkout:{cart_id}:{claimed.version}", capture=True
    )
    assert client.get(f"/api/v1/carts/{cart_id}", headers=web).json()["status"] == "checking_out"

    app_key = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="app"))
    other = client.post(
        f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=app_key
    )
    assert other.status_code == 404  # out of that key's reach, resumed or not

    res = client.post(f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=web)
    assert res.status_code == 201, res.text
    assert res.json()["payment"]["reference"] == first.reference and res.json()["total"] == 2500
    assert _charges(db) == [(first.reference, "captured")]
    assert order_count(db) == 1 and reserved(db, "MUG") == 2
    again = client.post(f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=web)
    assert again.status_code == 200 and again.json()["id"] == res.json()["id"]
