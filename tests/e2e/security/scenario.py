"""A shopper's whole journey over HTTP, for tests that look at what it leaves behind (logs,
metrics): sign-up with a password, sign-in, a cart, checkout with a payment token, an API key
created and used, and a staff user created, signed in (once with a wrong password) and refreshed.
Returns every secret and personal value it sent."""

from __future__ import annotations

from dataclasses import astuple, dataclass

from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import seed


@dataclass(frozen=True)
class Sensitive:
    password: str
    email: str
    phone: str
    first_name: str
    last_name: str
    payment_token: str
    api_key_secret: str
    access_token: str
    staff_email: str
    staff_password: str
    staff_access_token: str
    staff_refresh_token: str

    def values(self) -> tuple[str, ...]:
        return astuple(self)


def run_shopper_scenario(client: TestClient, db: Database) -> Sensitive:
    seed(db, {"SCN-TEE": {"dc-east": 5}}, prices={"SCN-TEE": 2500})
    email, phone = "zelphine.quorrington@example.org", "+14155550199"
    password, first, last = "correct horse battery staple 42", "Zelphine", "Quorrington"
    signed_up = client.post(
        "/api/v1/auth/sign-up",
        json={
            "email": email,
            "phone": phone,
            "password": password,
            "first_name": first,
            "last_name": last,
            "channel": "web",
        },
    )
    assert signed_up.status_code == 201, signed_up.text
    wrong = client.post(
        "/api/v1/auth/sign-in", json={"identifier": email, "password": "not it at all", "channel": "web"}
    )
    assert wrong.status_code == 401, wrong.text
    signed_in = client.post(
        "/api/v1/auth/sign-in", json={"identifier": phone, "password": password, "channel": "web"}
    )
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    me = bearer(token)

    cart = client.post("/api/v1/carts", json={}, headers=me)
    assert cart.status_code in (200, 201), cart.text
    cart_id = cart.json()["id"]
    line = client.put(f"/api/v1/carts/{cart_id}/lines/SCN-TEE", json={"quantity": 1}, headers=me)
    assert line.status_code == 200, line.text
    ship = {
        "type": "ship",
        "address": {
            "name": f"{first} {last}",
            "line1": "1 Main St",
            "city": "NYC",
            "postal_code": "10001",
            "country": "US",
        },
    }
    assert client.put(f"/api/v1/carts/{cart_id}/fulfillment", json=ship, headers=me).status_code == 200
    payment_token = "tok_visa"
    order = client.post(
        f"/api/v1/carts/{cart_id}/checkout",
        json={"payment_token": payment_token},
        headers={**me, "Idempotency-Key": "scenario-checkout"},
    )
    assert order.status_code == 201, order.text

    admin = bearer(make_key(db, Scope.ADMIN))
    created = client.post(
        "/api/v1/keys", json={"name": "erp export", "scopes": [Scope.ORDERS_READ]}, headers=admin
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert client.get("/api/v1/orders", headers=bearer(secret)).status_code == 200
    staff = _staff_sign_in(client, admin)
    return Sensitive(password, email, phone, first, last, payment_token, secret, token, *staff)


def _staff_sign_in(client: TestClient, admin: dict[str, str]) -> tuple[str, str, str, str]:
    email, password = "odalric.vennemeyer@example.org", "staff pass phrase 7731"
    body = {"email": email, "name": "Odalric", "role": "service_agent", "password": password}
    assert client.post("/api/v1/staff", json=body, headers=admin).status_code == 201
    wrong = client.post("/api/v1/staff/sign-in", json={"email": email, "password": "guess guess guess"})
    assert wrong.status_code == 401, wrong.text
    signed_in = client.post("/api/v1/staff/sign-in", json={"email": email, "password": password})
    assert signed_in.status_code == 200, signed_in.text
    access, refresh = signed_in.json()["access_token"], signed_in.json()["refresh_token"]
    assert client.get("/api/v1/staff/me", headers=bearer(access)).status_code == 200
    rotated = client.post("/api/v1/staff/refresh", json={"refresh_token": refresh})
    assert rotated.status_code == 200, rotated.text
    return email, password, access, refresh
