"""Every route, for each staff role: a role reaches what its scopes allow (``ROLE_SCOPES``) and is
refused (403) the rest; an analyst writes nothing; a store associate acts only for their store —
another store's stock, store sales, pickups and curbside queue answer 404."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from omnicommerce.platform.db import Database
from omnicommerce.platform.staff.domain import ROLE_SCOPES, Role
from tests.e2e.security.staff_support import sign_in, staff_headers
from tests.e2e.security.test_authorization_matrix import PROTECTED, PUBLIC, SCOPED, Endpoint
from tests.integration.fulfillment.support import NEAR, OTHER, PICKUP_AT_NEAR, place, seed, shopper

# POSTs that only read (a quote, a segment preview): an analyst may call them.
READING_POSTS = {("POST", "/api/v1/prices/quote"), ("POST", "/api/v1/segments/preview")}
# Bodies valid enough to reach the authorization a service decides (not stopped at validation).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/api/v1/customers/{customer_id}/consents"): {
        "consents": [{"purpose": "marketing", "channel": "email", "granted": True}]
    },
}


def request(client: TestClient, endpoint: Endpoint, headers: dict[str, str]) -> Any:
    body = BODIES.get((endpoint.method, endpoint.template), {} if endpoint.method != "GET" else None)
    return client.request(endpoint.method, endpoint.url, json=body, headers=headers)


@pytest.fixture
def crew(client: TestClient, admin_headers: dict[str, str], db: Database) -> dict[str, dict[str, str]]:
    """A signed-in staff user of each role; the store associate works at the near store."""
    seed(db, {"SKU-A": {NEAR: 5, OTHER: 5}})
    return {
        role.value: staff_headers(
            client,
            admin_headers,
            role.value,
            f"{role.value}@example.com",
            NEAR if role == Role.STORE_ASSOCIATE else None,
        )
        for role in Role
    }


def test_every_scoped_route_admits_exactly_the_roles_whose_scopes_cover_it(
    client: TestClient, crew: dict[str, dict[str, str]]
) -> None:
    wrong = []
    for role, headers in crew.items():
        granted = ROLE_SCOPES[Role(role)]
        for endpoint in SCOPED:
            res = request(client, endpoint, headers)
            refused_for_scope = res.status_code == 403 and res.json().get("required_scope") in endpoint.scopes
            allowed = role == Role.ADMIN or endpoint.scopes <= granted
            if allowed and (refused_for_scope or res.status_code == 401 or res.status_code >= 500):
                wrong.append(f"{role} refused {endpoint}: {res.status_code}")
            if not allowed and not refused_for_scope:
                wrong.append(f"{role} admitted to {endpoint}: {res.status_code}")
    assert wrong == []


def test_an_analyst_changes_nothing_anywhere(client: TestClient, crew: dict[str, dict[str, str]]) -> None:
    writes = [
        e for e in PROTECTED if e.method != "GET" and (e.method, e.template) not in READING_POSTS | PUBLIC
    ]
    assert len(writes) >= 50
    statuses = {str(e): request(client, e, crew[Role.ANALYST]).status_code for e in writes}
    assert {e: s for e, s in statuses.items() if s != 403} == {}
    for method, template in READING_POSTS:
        res = client.request(method, template, json={}, headers=crew[Role.ANALYST])
        assert res.status_code not in (401, 403), (template, res.status_code)


def test_customer_records_answer_by_role(
    client: TestClient, crew: dict[str, dict[str, str]], db: Database
) -> None:
    web = shopper(db)
    cart = client.post("/api/v1/carts", json={"email": "cleo@example.com"}, headers=web)
    customer_id = client.get("/api/v1/customers", params={"email": "cleo@example.com"}, headers=crew["admin"])
    assert cart.status_code == 201 and customer_id.status_code == 200, (cart.text, customer_id.text)
    [cleo] = customer_id.json()["items"]
    url = f"/api/v1/customers/{cleo['id']}"
    expected = {  # reading a profile, changing it
        "admin": (200, 200),
        "service_agent": (200, 200),
        "marketer": (200, 403),
        "analyst": (200, 403),
        "store_associate": (403, 403),
    }
    seen = {
        role: (
            client.get(url, headers=crew[role]).status_code,
            client.patch(url, json={"first_name": "Cleo"}, headers=crew[role]).status_code,
        )
        for role in expected
    }
    assert seen == expected


def test_a_store_associate_never_touches_another_stores_stock_sales_or_pickups(
    client: TestClient, crew: dict[str, dict[str, str]], admin_headers: dict[str, str], db: Database
) -> None:
    near = crew[Role.STORE_ASSOCIATE]
    other = staff_headers(client, admin_headers, "store_associate", "otto@example.com", OTHER)

    # Stock: their store's moves; another's is neither changed nor seen.
    adjust = {"location_id": NEAR, "sku": "SKU-A", "delta": -1, "reason": "damaged"}
    assert client.post("/api/v1/stock/adjustments", json=adjust, headers=near).status_code in (200, 201)
    assert client.post("/api/v1/stock/adjustments", json=adjust, headers=other).status_code == 404
    receipt = {"location_id": NEAR, "lines": [{"sku": "SKU-A", "quantity": 100}]}
    assert client.post("/api/v1/stock/receipts", json=receipt, headers=other).status_code == 404
    seen = client.get("/api/v1/stock", params={"sku": "SKU-A"}, headers=other).json()["items"]
    assert [(p["location_id"], p["on_hand"]) for p in seen] == [(OTHER, 5)]
    mine = client.get("/api/v1/stock", params={"sku": "SKU-A"}, headers=near).json()["items"]
    assert [(p["location_id"], p["on_hand"]) for p in mine] == [(NEAR, 4)]

    # A store sale rung up by the associate belongs to their store (and channel).
    sale = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "SKU-A", "quantity": 1}], "payment": {"method": "cash"}},
        headers=near,
    )
    assert sale.status_code == 201, sale.text
    assert (sale.json()["channel"], sale.json()["location_id"]) == ("pos", NEAR)
    order_id = sale.json()["id"]
    for method, url in (
        ("GET", f"/api/v1/orders/{order_id}"),
        ("POST", f"/api/v1/orders/{order_id}/cancel"),
        ("POST", f"/api/v1/orders/{order_id}/refund"),
    ):
        assert client.request(method, url, headers=other).status_code == 404, url
    assert all(o["id"] != order_id for o in client.get("/api/v1/orders", headers=other).json()["items"])

    # A web order picked up at the near store: its associate runs the pickup, the other sees nothing.
    web_order = place(client, shopper(db), {"SKU-A": 1}, fulfillment=PICKUP_AT_NEAR)
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    [fo] = client.get(f"/api/v1/orders/{web_order}/fulfillment-orders", headers=admin_headers).json()
    assert fo["location_id"] == NEAR
    for step in ("accept", "pick"):
        assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/{step}", headers=other).status_code == 404
        assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/{step}", headers=near).status_code == 200
    assert client.get(f"/api/v1/fulfillment-orders/{fo['id']}", headers=other).status_code == 404
    assert client.get(f"/api/v1/locations/{NEAR}/pickups", headers=other).status_code == 404
    assert client.get(f"/api/v1/locations/{NEAR}/curbside", headers=other).status_code == 404
    assert client.get(f"/api/v1/locations/{NEAR}/curbside", headers=near).status_code == 200
    # The ledger names the staff user who moved the stock.
    ledger = client.get("/api/v1/stock/ledger", params={"sku": "SKU-A"}, headers=near).json()["items"]
    me = client.get("/api/v1/staff/me", headers=near).json()["id"]
    assert any(entry.get("actor") == me for entry in ledger), ledger


def test_moving_an_associate_to_another_store_ends_their_old_session_and_their_reach(
    client: TestClient, crew: dict[str, dict[str, str]], admin_headers: dict[str, str]
) -> None:
    old_session = crew[Role.STORE_ASSOCIATE]
    me = client.get("/api/v1/staff/me", headers=old_session).json()
    moved = client.patch(f"/api/v1/staff/{me['id']}", json={"location": OTHER}, headers=admin_headers)
    assert moved.status_code == 200 and moved.json()["location"] == OTHER
    assert client.get(f"/api/v1/locations/{NEAR}/pickups", headers=old_session).status_code == 401
    new_session = sign_in(client, me["email"])
    assert client.get(f"/api/v1/locations/{NEAR}/pickups", headers=new_session).status_code == 404
    assert client.get(f"/api/v1/locations/{OTHER}/pickups", headers=new_session).status_code == 200
    nowhere = client.patch(f"/api/v1/staff/{me['id']}", json={"location": "store-404"}, headers=admin_headers)
    assert nowhere.status_code == 404 and nowhere.json()["type"].endswith("/unknown-location")
