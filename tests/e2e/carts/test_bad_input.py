"""Bad input to the cart API: always problem+json, never a 500, and nothing changes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, STORES, new_cart, reserved, seed

SCOPES = (Scope.CARTS_READ, Scope.CARTS_WRITE)


@pytest.fixture
def web(db: Database) -> dict[str, str]:
    seed(db, {"CAP": {DC: 3, STORES[0]: 1}})
    return bearer(make_key(db, *SCOPES, channel="web"))


def _problem(res: object, status: int, code: str | None = None) -> None:
    assert res.status_code == status, res.text  # type: ignore[attr-defined]
    assert res.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    if code is not None:
        assert res.json()["type"].endswith("/" + code)  # type: ignore[attr-defined]


def test_bad_lines_are_refused_and_change_nothing(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    cart_id = new_cart(client, web, {"CAP": 1}, fulfillment=None)
    before = client.get(f"/api/v1/carts/{cart_id}", headers=web).json()
    _problem(
        client.put(f"/api/v1/carts/{cart_id}/lines/NOPE", json={"quantity": 1}, headers=web),
        422,
        "unknown-sku",
    )
    _problem(
        client.post(f"/api/v1/carts/{cart_id}/lines", json={"sku": "NOPE", "quantity": 1}, headers=web),
        422,
        "unknown-sku",
    )
    _problem(
        client.put(f"/api/v1/carts/{cart_id}/lines/CAP", json={"quantity": -1}, headers=web),
        422,
        "validation-error",
    )
    _problem(client.put(f"/api/v1/carts/{cart_id}/lines/CAP", json={"quantity": "two"}, headers=web), 422)
    _problem(
        client.put(
            f"/api/v1/carts/{cart_id}/lines/CAP",
            content=b"{quantity: 1",
            headers={**web, "Content-Type": "application/json"},
        ),
        400,
        "malformed-json",
    )
    _problem(
        client.put(f"/api/v1/carts/{cart_id}/lines/CAP", json={"quantity": 99}, headers=web),
        409,
        "insufficient-stock",
    )
    _problem(client.put(f"/api/v1/carts/{cart_id}/fulfillment", json={"type": "teleport"}, headers=web), 422)
    _problem(
        client.put(
            f"/api/v1/carts/{cart_id}/fulfillment",
            json={"type": "pickup", "location_id": "nowhere"},
            headers=web,
        ),
        404,
    )
    _problem(client.post(f"/api/v1/carts/{cart_id}/coupons", json={"code": "NOSUCHCODE"}, headers=web), 422)
    after = client.get(f"/api/v1/carts/{cart_id}", headers=web).json()
    assert (after["lines"], after["version"], after["coupon_codes"]) == (
        before["lines"],
        before["version"],
        before["coupon_codes"],
    )
    assert reserved(db, "CAP") == 1


def test_wrong_currency_and_channel(client: TestClient, db: Database, web: dict[str, str]) -> None:
    _problem(client.post("/api/v1/carts", json={"currency": "EUR"}, headers=web), 422, "currency-mismatch")
    _problem(client.post("/api/v1/carts", json={"channel": "pos"}, headers=web), 403, "channel-mismatch")
    unbound = bearer(make_key(db, *SCOPES))
    _problem(client.post("/api/v1/carts", json={}, headers=unbound), 422, "channel-required")
    _problem(client.post("/api/v1/carts", json={"channel": "mars"}, headers=unbound), 404, "unknown-channel")
    _problem(client.post("/api/v1/carts", json={"surprise": 1}, headers=web), 422, "validation-error")


def test_another_channels_key_cannot_reach_a_cart(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    pos = bearer(make_key(db, *SCOPES, channel="pos", location=STORES[0]))
    other_store = bearer(make_key(db, *SCOPES, channel="pos", location=STORES[1]))
    pos_cart = new_cart(client, pos, {"CAP": 1}, fulfillment=None)
    _problem(client.get(f"/api/v1/carts/{pos_cart}", headers=web), 404, "cart-not-found")
    _problem(client.get(f"/api/v1/carts/{pos_cart}", headers=other_store), 404, "cart-not-found")
    _problem(client.put(f"/api/v1/carts/{pos_cart}/lines/CAP", json={"quantity": 0}, headers=web), 404)
    _problem(
        client.post(f"/api/v1/carts/{pos_cart}/checkout", json={"payment_token": "tok_visa"}, headers=web),
        404,
    )
    assert client.get(f"/api/v1/carts/{pos_cart}", headers=pos).json()["lines"][0]["quantity"] == 1
    assert reserved(db, "CAP") == 1


def test_auth_is_required(client: TestClient, db: Database, web: dict[str, str]) -> None:
    cart_id = new_cart(client, web, {}, fulfillment=None)
    _problem(client.get(f"/api/v1/carts/{cart_id}"), 401)
    reader = bearer(make_key(db, Scope.CARTS_READ, channel="web"))
    _problem(client.put(f"/api/v1/carts/{cart_id}/lines/CAP", json={"quantity": 1}, headers=reader), 403)


def test_removing_a_line_releases_its_units(client: TestClient, db: Database, web: dict[str, str]) -> None:
    cart_id = new_cart(client, web, {"CAP": 2}, fulfillment=None)
    res = client.post(f"/api/v1/carts/{cart_id}/lines", json={"sku": "CAP", "quantity": 1}, headers=web)
    assert res.json()["lines"][0]["quantity"] == 3 and reserved(db, "CAP") == 3
    assert (
        client.put(f"/api/v1/carts/{cart_id}/lines/CAP", json={"quantity": 0}, headers=web).json()["lines"]
        == []
    )
    assert reserved(db, "CAP") == 0
