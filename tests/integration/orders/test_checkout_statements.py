"""Checkout issues the same number of SQL statements for 1 line as for 10 (no N+1)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, new_cart, seed
from tests.statements import counting

SKUS = [f"SKU-{i:02d}" for i in range(10)]


def _checkout_statements(client: TestClient, db: Database, headers: dict[str, str], skus: list[str]) -> int:
    cart_id = new_cart(client, headers, dict.fromkeys(skus, 2))
    with counting(db) as seen:
        res = client.post(
            f"/api/v1/carts/{cart_id}/checkout",
            headers={**headers, "Idempotency-Key": cart_id},
            json={"payment_token": "tok_visa"},
        )
    assert res.status_code == 201, res.text
    assert len(res.json()["lines"]) == len(skus)
    return len(seen)


def test_checkout_statement_count_does_not_grow_with_lines(client: TestClient, db: Database) -> None:
    seed(db, {sku: {DC: 100} for sku in SKUS})
    headers = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="web"))
    _checkout_statements(client, db, headers, SKUS[:1])  # warm caches (compiled statements, pool)
    one = _checkout_statements(client, db, headers, SKUS[:1])
    ten = _checkout_statements(client, db, headers, SKUS)
    print(f"checkout statements on {db.dialect}: 1 line = {one}, 10 lines = {ten}")
    assert one == ten
