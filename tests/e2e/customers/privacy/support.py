"""A person who left personal data everywhere it can go — signed up, tracked on the web and by
Segment, shopped with a delivery address, picked up at the curbside, reached a partner by
webhook — through the real API; and the scan that looks for it in every text column."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import String, func, or_, select

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database, metadata
from tests.conftest import bearer, make_key
from tests.e2e.integrations.test_webhooks_api import deliver
from tests.integration.fulfillment.support import NEAR, seed
from tests.integration.orders.shop import new_cart

MARKER = "zq-marker-7731"
EMAIL = f"{MARKER}@example.com"
PHONE = "+14155552671"
# The phone as people type it, and the digits every stored form of it contains.
PHONE_TYPED = "(415) 555-2671"
NEEDLES = (MARKER, "4155552671", "555-2671")
FULFIL = (Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE)


@dataclass
class Planted:
    customer_id: str
    token: dict[str, str]
    order_ids: list[str]
    order_totals: dict[str, int]


def _ok(res: Any, *codes: int) -> Any:
    assert res.status_code in (codes or (200, 201)), res.text
    return res.json()


def plant_everywhere(client: TestClient, app: FastAPI, db: Database, webhook_url: str) -> Planted:
    admin = bearer(make_key(db, Scope.ADMIN))
    _ok(
        client.post(
            "/api/v1/webhooks/endpoints", headers=admin, json={"url": webhook_url, "event_types": ["*"]}
        )
    )
    seed(db, {"SKU-A": {NEAR: 10}})

    signed = _ok(
        client.post(
            "/api/v1/auth/sign-up",
            json={
                "email": EMAIL.upper(),
                "phone": PHONE_TYPED,
                "password": "correct horse battery",
                "first_name": MARKER,
                "last_name": f"{MARKER}-family",
                "channel": "web",
            },
        )
    )
    customer_id, token = signed["customer_id"], bearer(signed["access_token"])
    _track(client, db, customer_id)

    # A delivery: email and address on the cart (with an Idempotency-Key: its answer is stored).
    cart = client.post(
        "/api/v1/carts", json={"email": EMAIL}, headers={**token, "Idempotency-Key": f"cart-{MARKER}"}
    )
    cart_id = _ok(cart)["id"]
    _ok(client.put(f"/api/v1/carts/{cart_id}/lines/SKU-A", json={"quantity": 1}, headers=token))
    address = {
        "name": f"{MARKER} Person",
        "line1": f"1 {MARKER} Road",
        "line2": f"Flat {PHONE}",
        "city": "New York",
        "postal_code": "10001",
        "country": "US",
    }
    _ok(
        client.put(
            f"/api/v1/carts/{cart_id}/fulfillment", json={"type": "ship", "address": address}, headers=token
        )
    )
    shipped = _ok(
        client.post(f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=token)
    )

    # A curbside pickup: the car description is theirs too.
    pickup_cart = new_cart(client, token, {"SKU-A": 2}, fulfillment={"type": "pickup", "location_id": NEAR})
    picked = _ok(
        client.post(
            f"/api/v1/carts/{pickup_cart}/checkout", json={"payment_token": "tok_visa"}, headers=token
        )
    )
    deliver(app)
    store = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    [fo] = _ok(client.get(f"/api/v1/orders/{picked['id']}/fulfillment-orders", headers=token))
    for step in ("accept", "pick", "pack", "ready"):
        _ok(client.post(f"/api/v1/fulfillment-orders/{fo['id']}/{step}", headers=store))
    _ok(
        client.post(
            f"/api/v1/fulfillment-orders/{fo['id']}/arrived",
            json={"bay": "2", "car": f"red {MARKER}"},
            headers=token,
        )
    )
    deliver(app)
    orders = [shipped, picked]
    return Planted(customer_id, token, [o["id"] for o in orders], {o["id"]: o["total"] for o in orders})


def _track(client: TestClient, db: Database, customer_id: str) -> None:
    """Events through both ingestion doors: our own schema and Segment's identify/track."""
    events_key = make_key(db, Scope.EVENTS_WRITE)
    web = {
        "type": "track",
        "event": "Product Viewed",
        "userId": customer_id,
        "anonymousId": f"anon-{MARKER}",
        "properties": {"sku": "SKU-A", "price": 1999, "note": f"gift for {MARKER}"},
        "context": {"ip": "203.0.113.7", "page": {"url": f"https://shop.example/?ref={MARKER}"}},
    }
    _ok(client.post("/api/v1/events", json={"batch": [web]}, headers=bearer(events_key)))
    basic = {"Authorization": "Basic " + base64.b64encode(f"{events_key}:".encode()).decode()}
    identify = {
        "userId": customer_id,
        "anonymousId": f"anon-{MARKER}",
        "traits": {
            "email": EMAIL,
            "phone": PHONE_TYPED,
            "firstName": MARKER,
            "address": {"street": f"2 {MARKER} Avenue", "city": "New York"},
        },
        "context": {"device": {"id": f"device-{MARKER}"}},
    }
    _ok(client.post("/v1/identify", json=identify, headers=basic))
    anonymous = {"anonymousId": f"anon-{MARKER}", "event": "Searched", "properties": {"query": MARKER}}
    _ok(client.post("/v1/track", json=anonymous, headers=basic))


def marker_hits(db: Database) -> dict[str, int]:
    """table.column → rows holding any needle, over every text column of every table."""
    hits: dict[str, int] = {}
    with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, String):
                    continue
                found = or_(*(func.lower(column).contains(n.lower(), autoescape=True) for n in NEEDLES))
                count = conn.execute(select(func.count()).select_from(table).where(found)).scalar_one()
                if count:
                    hits[f"{table.name}.{column.name}"] = int(count)
    return hits
