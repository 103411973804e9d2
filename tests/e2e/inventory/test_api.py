"""Inventory over HTTP through the real app: auth (401/403/404), idempotency, validation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from omnicommerce.platform.outbox import outbox
from tests.conftest import bearer, make_key

API = "/api/v1"
DC = {
    "id": "dc-east",
    "name": "DC East",
    "kind": "dc",
    "capabilities": ["ship"],
    "lat": 40.71,
    "lon": -74.0,
    "postal_code": "10001",
    "country": "us",
}
STORE = {
    "id": "store-007",
    "name": "Store 7",
    "kind": "store",
    "capabilities": ["ship", "pickup"],
    "lat": 42.36,
    "lon": -71.06,
}
OTHER = {"id": "store-008", "name": "Store 8", "kind": "store", "capabilities": ["pickup"]}


@pytest.fixture
def writer(db: Database) -> dict[str, str]:
    return bearer(make_key(db, Scope.INVENTORY_READ, Scope.INVENTORY_WRITE))


@pytest.fixture
def store_key(db: Database) -> dict[str, str]:
    return bearer(make_key(db, Scope.INVENTORY_READ, Scope.INVENTORY_WRITE, location="store-007"))


@pytest.fixture
def stocked(client: TestClient, writer: dict[str, str]) -> None:
    for loc in (DC, STORE, OTHER):
        assert client.post(f"{API}/locations", json=loc, headers=writer).status_code == 201
    for loc, qty in (("dc-east", 5), ("store-007", 3), ("store-008", 2)):
        res = client.post(
            f"{API}/stock/receipts",
            headers=writer,
            json={"location_id": loc, "lines": [{"sku": "sku-1", "quantity": qty}]},
        )
        assert res.status_code == 201, res.text


def _problem(res: Any, status: int) -> dict[str, Any]:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = res.json()
    assert body["status"] == status
    return body


ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/locations", DC),
    ("GET", "/locations", None),
    ("GET", "/locations/dc-east", None),
    ("PUT", "/channels/web/stock-rule", {"visible_locations": [], "buffer": 0}),
    ("POST", "/stock/receipts", {"location_id": "dc-east", "lines": [{"sku": "x", "quantity": 1}]}),
    ("POST", "/stock/adjustments", {"location_id": "dc-east", "sku": "x", "delta": 1, "reason": "found"}),
    (
        "POST",
        "/stock/transfers",
        {"from": "dc-east", "to": "store-007", "lines": [{"sku": "x", "quantity": 1}]},
    ),
    ("POST", "/stock/cycle-counts", {"location_id": "dc-east", "counts": [{"sku": "x", "counted": 1}]}),
    ("GET", "/stock?sku=x", None),
    ("GET", "/stock/ledger", None),
    ("GET", "/availability?sku=x&channel=web", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_a_credential_and_its_scope(
    client: TestClient, db: Database, method: str, path: str, body: dict[str, Any] | None
) -> None:
    _problem(client.request(method, API + path, json=body), 401)
    wrong = bearer(make_key(db, Scope.CATALOG_READ))
    _problem(client.request(method, API + path, json=body, headers=wrong), 403)


STORE_SCOPED = [
    ("GET", "/locations/dc-east", None),
    ("POST", "/stock/receipts", {"location_id": "dc-east", "lines": [{"sku": "x", "quantity": 1}]}),
    (
        "POST",
        "/stock/adjustments",
        {"location_id": "dc-east", "sku": "sku-1", "delta": -1, "reason": "damaged"},
    ),
    (
        "POST",
        "/stock/transfers",
        {"from": "dc-east", "to": "store-007", "lines": [{"sku": "sku-1", "quantity": 1}]},
    ),
    ("POST", "/stock/cycle-counts", {"location_id": "dc-east", "counts": [{"sku": "sku-1", "counted": 1}]}),
    ("GET", "/stock?location_id=dc-east", None),
    ("GET", "/stock/ledger?location_id=dc-east", None),
]


@pytest.mark.usefixtures("stocked")
@pytest.mark.parametrize(("method", "path", "body"), STORE_SCOPED)
def test_a_store_key_sees_other_locations_as_missing(
    client: TestClient, store_key: dict[str, str], method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert _problem(client.request(method, API + path, json=body, headers=store_key), 404)["type"].endswith(
        "unknown-location"
    )


@pytest.mark.usefixtures("stocked")
def test_a_store_key_acts_on_its_own_store_only(client: TestClient, store_key: dict[str, str]) -> None:
    assert [x["id"] for x in client.get(f"{API}/locations", headers=store_key).json()["items"]] == [
        "store-007"
    ]
    stock = client.get(f"{API}/stock?sku=sku-1", headers=store_key).json()["items"]
    assert [(p["location_id"], p["on_hand"]) for p in stock] == [("store-007", 3)]
    res = client.post(
        f"{API}/stock/transfers",
        headers=store_key,
        json={"from": "store-007", "to": "store-008", "lines": [{"sku": "sku-1", "quantity": 2}]},
    )
    assert res.status_code == 201, res.text
    _problem(client.post(f"{API}/locations", json={**OTHER, "id": "store-009"}, headers=store_key), 403)
    _problem(client.put(f"{API}/channels/web/stock-rule", json={}, headers=store_key), 403)


def test_idempotency_key_replays_and_rejects_another_body(client: TestClient, writer: dict[str, str]) -> None:
    headers = {**writer, "Idempotency-Key": "loc-1"}
    first = client.post(f"{API}/locations", json=DC, headers=headers)
    again = client.post(f"{API}/locations", json=DC, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    _problem(client.post(f"{API}/locations", json={**DC, "name": "Other"}, headers=headers), 422)
    _problem(client.post(f"{API}/locations", json=DC, headers=writer), 409)

    receipt = {"location_id": "dc-east", "lines": [{"sku": "new-sku", "quantity": 4}], "reference": "po-1"}
    headers = {**writer, "Idempotency-Key": "rcv-1"}
    one = client.post(f"{API}/stock/receipts", json=receipt, headers=headers)
    two = client.post(f"{API}/stock/receipts", json=receipt, headers=headers)
    assert one.json() == two.json()
    stock = client.get(f"{API}/stock?sku=new-sku", headers=writer).json()["items"]
    assert stock[0]["on_hand"] == 4  # received once


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/stock/receipts", {"location_id": "dc-east", "lines": [{"sku": "x", "quantity": 0}]}),
        ("/stock/receipts", {"location_id": "dc-east", "lines": []}),
        ("/stock/receipts", {"location_id": "dc-east", "lines": [{"sku": "x", "quantity": 1}] * 2}),
        ("/stock/receipts", {"location_id": "dc-east", "lines": [{"sku": "x", "quantity": 1}], "extra": 1}),
        ("/stock/adjustments", {"location_id": "dc-east", "sku": "x", "delta": 0, "reason": "r"}),
        ("/stock/transfers", {"from": "dc-east", "to": "dc-east", "lines": [{"sku": "x", "quantity": 1}]}),
        ("/stock/cycle-counts", {"location_id": "dc-east", "counts": [{"sku": "x", "counted": -1}]}),
        ("/locations", {**DC, "kind": "warehouse"}),
        ("/locations", {**DC, "capabilities": ["teleport"]}),
        ("/locations", {**DC, "id": "Not A Slug"}),
    ],
)
def test_bad_input_is_a_problem_not_a_500(
    client: TestClient, writer: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    _problem(client.post(API + path, json=body, headers=writer), 422)


@pytest.mark.usefixtures("stocked")
def test_unknown_locations_are_404(client: TestClient, writer: dict[str, str]) -> None:
    _problem(client.get(f"{API}/locations/nowhere", headers=writer), 404)
    _problem(
        client.post(
            f"{API}/stock/receipts",
            headers=writer,
            json={"location_id": "nowhere", "lines": [{"sku": "x", "quantity": 1}]},
        ),
        404,
    )
    _problem(
        client.put(f"{API}/channels/web/stock-rule", headers=writer, json={"visible_locations": ["nowhere"]}),
        404,
    )
    _problem(client.put(f"{API}/channels/nochannel/stock-rule", headers=writer, json={}), 404)


@pytest.mark.usefixtures("stocked")
def test_adjust_transfer_and_count(client: TestClient, db: Database, writer: dict[str, str]) -> None:
    res = client.post(
        f"{API}/stock/adjustments",
        headers=writer,
        json={"location_id": "dc-east", "sku": "sku-1", "delta": -9, "reason": "damaged"},
    )
    _problem(res, 422)
    res = client.post(
        f"{API}/stock/transfers",
        headers=writer,
        json={"from": "store-008", "to": "dc-east", "lines": [{"sku": "sku-1", "quantity": 3}]},
    )
    assert _problem(res, 409)["shortages"] == {"sku-1": 3}
    res = client.post(
        f"{API}/stock/transfers",
        headers=writer,
        json={"from": "dc-east", "to": "store-008", "lines": [{"sku": "sku-1", "quantity": 2}]},
    )
    assert {(p["location_id"], p["on_hand"]) for p in res.json()["positions"]} == {
        ("dc-east", 3),
        ("store-008", 4),
    }
    res = client.post(
        f"{API}/stock/cycle-counts",
        headers=writer,
        json={"location_id": "store-007", "counts": [{"sku": "sku-1", "counted": 1}]},
    )
    assert res.status_code == 201 and res.json()["positions"][0]["on_hand"] == 1
    ledger = client.get(f"{API}/stock/ledger?sku=sku-1&location_id=store-007", headers=writer).json()["items"]
    assert [(e["reason"], e["delta_on_hand"]) for e in ledger] == [("receive", 3), ("cycle_count", -2)]


@pytest.mark.usefixtures("stocked")
def test_count_below_reserved_is_recorded_and_flagged(
    client: TestClient, db: Database, writer: dict[str, str]
) -> None:
    from omnicommerce.inventory import service

    with db.uow() as uow:
        service.reserve(
            uow,
            owner_id="cart-1",
            channel="web",
            demand={"sku-1": 3},
            location_id="store-007",
            capability="pickup",
            ttl_seconds=60,
        )
        uow.commit()
    res = client.post(
        f"{API}/stock/cycle-counts",
        headers=writer,
        json={"location_id": "store-007", "counts": [{"sku": "sku-1", "counted": 1}]},
    )
    assert res.status_code == 201
    assert res.json()["positions"][0] | {"atp": 0} == {
        "sku": "sku-1",
        "location_id": "store-007",
        "on_hand": 1,
        "reserved": 3,
        "safety_stock": 0,
        "atp": 0,
    }
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.type, outbox.c.payload).where(outbox.c.type == "inventory.shortfall")
        )
        payloads = [orjson.loads(r.payload) for r in rows]
    assert [(p["location_id"], p["missing"]) for p in payloads] == [("store-007", 2)]


@pytest.mark.usefixtures("stocked")
def test_availability_applies_channel_rules_and_near(
    client: TestClient, writer: dict[str, str], admin_headers: dict[str, str]
) -> None:
    res = client.put(
        f"{API}/channels/app/stock-rule",
        headers=writer,
        json={"visible_locations": ["dc-east", "store-007"], "buffer": 1},
    )
    assert res.json() == {"channel": "app", "visible_locations": ["dc-east", "store-007"], "buffer": 1}
    res = client.get(f"{API}/availability?sku=sku-1&sku=none&channel=app&near=42.35,-71.05", headers=writer)
    assert res.status_code == 200, res.text
    none, sku1 = res.json()
    assert none == {"sku": "none", "total": 0, "locations": []}
    assert sku1["total"] == 4 + 2
    assert [x["location_id"] for x in sku1["locations"]] == ["store-007", "dc-east"]
    _problem(client.get(f"{API}/availability?sku=sku-1&channel=app&near=north", headers=writer), 422)
    _problem(client.get(f"{API}/availability?sku=sku-1&channel=app&near=100,0", headers=writer), 422)
    _problem(client.get(f"{API}/availability?sku=sku-1", headers=writer), 422)
    _problem(client.get(f"{API}/availability?channel=app", headers=writer), 422)
    _problem(client.get(f"{API}/availability?sku=sku-1&channel=mars", headers=writer), 404)


@pytest.mark.usefixtures("stocked")
def test_lists_page_by_cursor(client: TestClient, writer: dict[str, str]) -> None:
    first = client.get(f"{API}/locations?limit=2", headers=writer).json()
    second = client.get(f"{API}/locations?limit=2&cursor={first['next_cursor']}", headers=writer).json()
    assert [x["id"] for x in first["items"] + second["items"]] == ["dc-east", "store-007", "store-008"]
    assert second["next_cursor"] is None
    page = client.get(f"{API}/stock?limit=1", headers=writer).json()
    rest = client.get(f"{API}/stock?limit=5&cursor={page['next_cursor']}", headers=writer).json()
    assert len(page["items"] + rest["items"]) == 3
    ledger = client.get(f"{API}/stock/ledger?limit=2", headers=writer).json()
    more = client.get(f"{API}/stock/ledger?limit=2&cursor={ledger['next_cursor']}", headers=writer).json()
    assert len(ledger["items"]) == 2 and len(more["items"]) == 1
    _problem(client.get(f"{API}/stock?cursor=!!!", headers=writer), 422)
