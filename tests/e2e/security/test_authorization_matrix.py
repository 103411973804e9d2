"""Authorization for every endpoint, built from the app's routes so a new endpoint is covered the
day it is added: no credential → 401, a key without the route's scope → 403, a key with exactly
that scope gets past authorization. Then object-level checks: a customer never reaches another
customer's profile, cart or order (404), and a store's POS key never acts for another store or
channel."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from omnicommerce.api.app import create_app
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.observability import api_routes, dependants
from omnicommerce.platform.web import current_principal
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import SHIP, customer_token, new_cart, seed

# Endpoints anyone may call: probes and the ways to obtain a credential. Anything else must 401.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/sign-up"),
    ("POST", "/api/v1/auth/sign-in"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/otp/start"),
    ("POST", "/api/v1/auth/otp/verify"),
    ("POST", "/api/v1/staff/sign-in"),
    ("POST", "/api/v1/staff/refresh"),
}
ALL_SCOPES = frozenset(s.value for s in Scope)


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    scopes: frozenset[str]  # what require(...) asks for; empty when the service decides
    authenticated: bool  # the route resolves the caller (current_principal)

    @property
    def url(self) -> str:
        # Ids nobody has: authorization must be decided before the object is looked up.
        return re.sub(r"\{[^}]+\}", "zz-missing", self.template)

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _required_scopes(route: APIRoute) -> frozenset[str]:
    # require(*scopes) closes over its scope tuple.
    found: set[str] = set()
    for dep in dependants(route.dependant):
        for cell in getattr(dep.call, "__closure__", None) or ():
            value = cell.cell_contents
            if isinstance(value, tuple) and value and all(v in ALL_SCOPES for v in value):
                found.update(value)
    return frozenset(found)


def endpoints() -> list[Endpoint]:
    # Only the routes are read: the database is never opened.
    unused = Path(tempfile.gettempdir()) / "omni-route-matrix-unused.db"
    app = create_app(Settings(database_url=f"sqlite:///{unused}"), run_relay=False)
    found = []
    for template, route in api_routes(app):
        if not route.include_in_schema:
            continue
        authenticated = any(d.call is current_principal for d in dependants(route.dependant))
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append(Endpoint(method, template, _required_scopes(route), authenticated))
    return found


ENDPOINTS = endpoints()
PROTECTED = [e for e in ENDPOINTS if (e.method, e.template) not in PUBLIC]
SCOPED = [e for e in PROTECTED if e.scopes]


def call(client: TestClient, endpoint: Endpoint, headers: dict[str, str]) -> int:
    body = {} if endpoint.method in ("POST", "PUT", "PATCH") else None
    return client.request(endpoint.method, endpoint.url, json=body, headers=headers).status_code


def test_the_matrix_covers_the_api() -> None:
    assert len(ENDPOINTS) >= 50
    assert {("GET", "/api/v1/orders/{order_id}"), ("POST", "/api/v1/carts/{cart_id}/checkout")} <= {
        (e.method, e.template) for e in SCOPED
    }
    # The public list is not stale, and none of it resolves a caller (it would then need one).
    public = [e for e in ENDPOINTS if (e.method, e.template) in PUBLIC]
    assert len(public) == len(PUBLIC)
    assert not any(e.authenticated for e in public)


def test_no_credential_is_401(client: TestClient) -> None:
    # One client for the whole matrix: a test per endpoint would spend its time on fixtures.
    wrong = []
    for endpoint in PROTECTED:
        res = client.request(endpoint.method, endpoint.url, json={} if endpoint.method != "GET" else None)
        if (
            res.status_code != 401
            or not res.headers["content-type"].startswith("application/problem+json")
            or res.headers.get("WWW-Authenticate") != "Bearer"
        ):
            wrong.append(f"{endpoint} without a credential: {res.status_code}")
        for bad in ("Bearer omk_not-a-key", "Bearer not.a.jwt", "Basic dXNlcjpwdw=="):
            if (status := call(client, endpoint, {"Authorization": bad})) != 401:
                wrong.append(f"{endpoint} with {bad!r}: {status}")
    assert wrong == []


def test_a_key_without_the_scope_is_403_and_with_it_gets_through(client: TestClient, db: Database) -> None:
    refused, admitted = [], []
    for endpoint in SCOPED:
        others = sorted(ALL_SCOPES - endpoint.scopes - {Scope.ADMIN})
        lacking = bearer(make_key(db, *others))
        res = client.request(
            endpoint.method, endpoint.url, json={} if endpoint.method != "GET" else None, headers=lacking
        )
        if res.status_code != 403 or res.json().get("required_scope") not in endpoint.scopes:
            refused.append(f"{endpoint}: {res.status_code}")
        status = call(client, endpoint, bearer(make_key(db, *endpoint.scopes)))
        if status in (401, 403) or status >= 500:
            admitted.append(f"{endpoint}: {status}")
    assert refused == [], "not refused without the scope"
    assert admitted == [], "refused (or failed) with exactly the scope"


def test_a_customer_token_is_limited_to_the_customer_scopes(
    client: TestClient, db: Database, settings: Settings
) -> None:
    _, me = customer_token(db, settings, "shopper@example.com", "web")
    for method, url in (
        ("GET", "/api/v1/keys"),
        ("GET", "/api/v1/customers"),
        ("POST", "/api/v1/stock/adjustments"),
        ("PUT", "/api/v1/prices"),
        ("POST", "/api/v1/orders/zz/refund"),
    ):
        res = client.request(method, url, json={} if method != "GET" else None, headers=me)
        assert res.status_code == 403, (method, url, res.status_code)


# --- object level: customers ------------------------------------------------------------------


@pytest.fixture
def two_shoppers(client: TestClient, db: Database, settings: Settings) -> dict[str, object]:
    """Ann and Bob, each with a cart; Bob's cart has checked out into an order."""
    seed(db, {"TEE-M": {"dc-east": 10}})
    ann_id, ann = customer_token(db, settings, "ann@example.com", "web")
    bob_id, bob = customer_token(db, settings, "bob@example.com", "web")
    ann_cart = new_cart(client, ann, {"TEE-M": 1})
    bob_paid = new_cart(client, bob, {"TEE-M": 1})
    order = client.post(f"/api/v1/carts/{bob_paid}/checkout", json={"payment_token": "tok_visa"}, headers=bob)
    assert order.status_code == 201, order.text
    bob_cart = new_cart(client, bob, {"TEE-M": 2})
    return {
        "ann": ann,
        "ann_id": ann_id,
        "ann_cart": ann_cart,
        "bob": bob,
        "bob_id": bob_id,
        "bob_cart": bob_cart,
        "bob_order": order.json()["id"],
    }


def test_a_customer_cannot_read_or_change_another_customers_things(
    client: TestClient, two_shoppers: dict[str, object]
) -> None:
    s = two_shoppers
    ann = s["ann"]
    assert isinstance(ann, dict)
    bob_id, bob_cart, bob_order = s["bob_id"], s["bob_cart"], s["bob_order"]
    attempts = [
        ("GET", f"/api/v1/customers/{bob_id}", None),
        ("PATCH", f"/api/v1/customers/{bob_id}", {"first_name": "Mallory"}),
        ("GET", f"/api/v1/customers/{bob_id}/orders", None),
        ("GET", f"/api/v1/carts/{bob_cart}", None),
        ("PUT", f"/api/v1/carts/{bob_cart}/lines/TEE-M", {"quantity": 5}),
        ("POST", f"/api/v1/carts/{bob_cart}/lines", {"sku": "TEE-M", "quantity": 1}),
        ("PUT", f"/api/v1/carts/{bob_cart}/fulfillment", SHIP),
        ("POST", f"/api/v1/carts/{bob_cart}/handoff", {}),
        ("POST", f"/api/v1/carts/{bob_cart}/checkout", {"payment_token": "tok_visa"}),
        ("GET", f"/api/v1/orders/{bob_order}", None),
    ]
    for method, url, body in attempts:
        res = client.request(method, url, json=body, headers=ann)
        assert res.status_code == 404, (method, url, res.status_code, res.text[:200])
        assert res.headers["content-type"].startswith("application/problem+json")
    listed = client.get("/api/v1/orders", headers=ann).json()["items"]
    assert listed == []
    assert client.get("/api/v1/me/orders", headers=ann).json()["items"] == []
    assert [c["id"] for c in client.get("/api/v1/me/carts", headers=ann).json()] == [s["ann_cart"]]
    # Bob's things are untouched: his cart still holds 2 units, his profile its name.
    bob = s["bob"]
    assert isinstance(bob, dict)
    lines = client.get(f"/api/v1/carts/{bob_cart}", headers=bob).json()["lines"]
    assert [(ln["sku"], ln["quantity"]) for ln in lines] == [("TEE-M", 2)]
    assert client.get(f"/api/v1/customers/{bob_id}", headers=bob).json().get("first_name") != "Mallory"


# --- object level: stores and channels --------------------------------------------------------

POS = (
    Scope.ORDERS_READ,
    Scope.ORDERS_WRITE,
    Scope.INVENTORY_READ,
    Scope.INVENTORY_WRITE,
    Scope.CARTS_WRITE,
    Scope.CARTS_READ,
)


def test_a_stores_pos_key_cannot_act_for_another_store(client: TestClient, db: Database) -> None:
    seed(db, {"MUG": {"store-001": 5, "store-002": 5}})
    pos1 = bearer(make_key(db, *POS, channel="pos", location="store-001"))
    pos2 = bearer(make_key(db, *POS, channel="pos", location="store-002"))
    sale = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "MUG", "quantity": 1}], "payment": {"method": "cash"}},
        headers=pos1,
    )
    assert sale.status_code == 201, sale.text
    order_id = sale.json()["id"]

    assert client.get(f"/api/v1/orders/{order_id}", headers=pos2).status_code == 404
    assert client.post(f"/api/v1/orders/{order_id}/cancel", headers=pos2).status_code == 404
    assert client.post(f"/api/v1/orders/{order_id}/refund", headers=pos2).status_code == 404
    assert all(o["id"] != order_id for o in client.get("/api/v1/orders", headers=pos2).json()["items"])
    # Stock of the other store: neither changed nor seen.
    adjust = {"location_id": "store-002", "sku": "MUG", "delta": -5, "reason": "shrink"}
    assert client.post("/api/v1/stock/adjustments", json=adjust, headers=pos1).status_code == 404
    receipt = {"location_id": "store-002", "lines": [{"sku": "MUG", "quantity": 100}]}
    assert client.post("/api/v1/stock/receipts", json=receipt, headers=pos1).status_code == 404
    seen = client.get("/api/v1/stock", params={"sku": "MUG"}, headers=pos1).json()["items"]
    assert {p["location_id"] for p in seen} == {"store-001"}
    assert client.get("/api/v1/orders/" + order_id, headers=pos1).status_code == 200
    mine = client.get("/api/v1/stock", params={"sku": "MUG"}, headers=pos2).json()["items"]
    assert [(p["location_id"], p["on_hand"]) for p in mine] == [("store-002", 5)]


def test_a_channel_bound_key_cannot_act_for_another_channel(client: TestClient, db: Database) -> None:
    seed(db, {"TEE-M": {"dc-east": 5}})
    web = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="web"))
    app = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="app"))
    other_channel = client.post("/api/v1/carts", json={"channel": "app"}, headers=web)
    assert other_channel.status_code in (403, 422), other_channel.text
    assert other_channel.headers["content-type"].startswith("application/problem+json")
    app_cart = new_cart(client, app, {"TEE-M": 1}, fulfillment=None)
    assert client.get(f"/api/v1/carts/{app_cart}", headers=web).status_code == 404
    res = client.put(f"/api/v1/carts/{app_cart}/lines/TEE-M", json={"quantity": 3}, headers=web)
    assert res.status_code == 404


# --- keys -------------------------------------------------------------------------------------


def test_api_keys_are_shown_once_and_never_listed(client: TestClient, admin_headers: dict[str, str]) -> None:
    created = client.post(
        "/api/v1/keys", json={"name": "erp", "scopes": ["orders:read"]}, headers=admin_headers
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("omk_") and len(secret) >= 40
    listing = client.get("/api/v1/keys", headers=admin_headers)
    assert secret not in listing.text and secret[10:] not in listing.text
    assert client.get("/api/v1/orders", headers=bearer(secret)).status_code == 200
    revoked = client.delete(f"/api/v1/keys/{created.json()['id']}", headers=admin_headers)
    assert revoked.status_code in (200, 204)
    assert client.get("/api/v1/orders", headers=bearer(secret)).status_code == 401
