"""Signing in with an anonymous cart folds it into the customer's cart, over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import new_cart, reserved, seed

WEB_SCOPES = (Scope.CARTS_READ, Scope.CARTS_WRITE)


def test_sign_in_with_an_anonymous_cart_merges_it(client: TestClient, db: Database) -> None:
    seed(db, {"TEE-M": {"dc-east": 10}, "MUG": {"dc-east": 10}}, prices={"TEE-M": 2999, "MUG": 1249})
    account = {"email": "grace@example.com", "password": "a long enough secret", "channel": "app"}
    signed_up = client.post("/api/v1/auth/sign-up", json=account)
    assert signed_up.status_code == 201, signed_up.text
    me = bearer(signed_up.json()["access_token"])
    mine = new_cart(client, me, {"TEE-M": 1}, fulfillment=None)

    web = bearer(make_key(db, *WEB_SCOPES, channel="web"))
    anonymous = new_cart(client, web, {"TEE-M": 2, "MUG": 1}, fulfillment=None)
    assert reserved(db, "TEE-M") == 3

    res = client.post(
        "/api/v1/auth/sign-in",
        json={
            "identifier": account["email"],
            "password": account["password"],
            "channel": "web",
            "cart_id": anonymous,
        },
    )
    assert res.status_code == 200, res.text
    carts = client.get("/api/v1/me/carts", headers=bearer(res.json()["access_token"])).json()
    assert [c["id"] for c in carts] == [mine]
    assert {ln["sku"]: ln["quantity"] for ln in carts[0]["lines"]} == {"TEE-M": 3, "MUG": 1}
    assert client.get(f"/api/v1/carts/{anonymous}", headers=web).json()["status"] == "merged"
    assert reserved(db, "TEE-M") == 3 and reserved(db, "MUG") == 1  # nothing reserved twice
