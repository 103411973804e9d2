"""Catalog over HTTP through the real app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

PRODUCT = {
    "name": "Black Tee",
    "category_ids": ["tees"],
    "variants": [
        {"sku": "TEE-BLK-S", "name": "Small", "barcode": "4001", "attributes": {"size": "S"}},
        {"sku": "TEE-BLK-M", "name": "Medium", "weight_grams": 210},
    ],
}

ENDPOINTS: list[tuple[str, str, Any]] = [
    ("post", "/api/v1/categories", {"name": "X"}),
    ("get", "/api/v1/categories", None),
    ("post", "/api/v1/products", PRODUCT),
    ("get", "/api/v1/products", None),
    ("get", "/api/v1/products/prd_x", None),
    ("patch", "/api/v1/products/prd_x/listing", {"hidden_channels": []}),
    ("get", "/api/v1/variants/TEE-BLK-S", None),
]


def call(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, path, json=body, headers=headers)


@pytest.fixture
def writer(db: Database) -> dict[str, str]:
    return bearer(make_key(db, Scope.CATALOG_READ, Scope.CATALOG_WRITE))


@pytest.fixture
def tee(client: TestClient, writer: dict[str, str]) -> dict[str, Any]:
    assert (
        client.post("/api/v1/categories", json={"id": "tees", "name": "T-shirts"}, headers=writer).status_code
        == 201
    )
    res = client.post("/api/v1/products", json=PRODUCT, headers=writer)
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    return body


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_a_credential(client: TestClient, method: str, path: str, body: Any) -> None:
    res = call(client, method, path, body, {})
    assert res.status_code == 401
    assert res.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_its_scope(
    client: TestClient, db: Database, method: str, path: str, body: Any
) -> None:
    res = call(client, method, path, body, bearer(make_key(db, Scope.PRICES_READ)))
    assert res.status_code == 403
    assert res.json()["type"].endswith("/forbidden")


def test_create_and_read_a_product(client: TestClient, writer: dict[str, str], tee: dict[str, Any]) -> None:
    assert tee["id"].startswith("prd_")
    assert [v["sku"] for v in tee["variants"]] == ["TEE-BLK-S", "TEE-BLK-M"]
    got = client.get(f"/api/v1/products/{tee['id']}", headers=writer).json()
    assert got == tee
    variant = client.get("/api/v1/variants/TEE-BLK-M", headers=writer).json()
    assert (variant["product_id"], variant["weight_grams"]) == (tee["id"], 210)
    assert client.get("/api/v1/categories", headers=writer).json() == [
        {"id": "tees", "name": "T-shirts", "parent_id": None}
    ]


def test_idempotency_key_replays_the_first_response(client: TestClient, writer: dict[str, str]) -> None:
    body = {**PRODUCT, "category_ids": []}
    headers = {**writer, "Idempotency-Key": "k-1"}
    first = client.post("/api/v1/products", json=body, headers=headers)
    again = client.post("/api/v1/products", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(client.get("/api/v1/products", headers=writer).json()["items"]) == 1
    other = client.post("/api/v1/products", json={**body, "name": "Other"}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


def test_bad_input_is_a_clear_problem(
    client: TestClient, writer: dict[str, str], tee: dict[str, Any]
) -> None:
    dup = client.post("/api/v1/products", json=PRODUCT, headers=writer)
    assert dup.status_code == 409 and dup.json()["type"].endswith("/duplicate-sku")
    assert "TEE-BLK-M" in dup.json()["detail"]
    bad_sku = client.post(
        "/api/v1/products",
        json={"name": "x", "variants": [{"sku": "has space", "name": "x"}]},
        headers=writer,
    )
    assert bad_sku.status_code == 422 and "variants.0.sku" in bad_sku.json()["detail"]
    malformed = client.post(
        "/api/v1/products", content=b'{"name": ', headers={**writer, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.headers["content-type"] == "application/problem+json"
    no_cat = client.post(
        "/api/v1/products",
        json={**PRODUCT, "category_ids": ["nope"], "variants": [{"sku": "Z-1", "name": "z"}]},
        headers=writer,
    )
    assert no_cat.status_code == 422 and no_cat.json()["type"].endswith("/unknown-category")
    assert client.get("/api/v1/products/prd_nope", headers=writer).json()["status"] == 404
    unknown = client.get("/api/v1/variants/NOPE", headers=writer)
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/unknown-sku")


def test_listing_hides_a_product_from_a_channel(
    client: TestClient, db: Database, writer: dict[str, str], tee: dict[str, Any]
) -> None:
    res = client.patch(
        f"/api/v1/products/{tee['id']}/listing", json={"hidden_channels": ["pos"]}, headers=writer
    )
    assert res.status_code == 200 and res.json()["hidden_channels"] == ["pos"]
    assert client.get("/api/v1/products?channel=pos", headers=writer).json()["items"] == []
    assert len(client.get("/api/v1/products?channel=web&q=black", headers=writer).json()["items"]) == 1
    pos = bearer(make_key(db, Scope.CATALOG_READ, channel="pos"))
    assert client.get("/api/v1/products", headers=pos).json()["items"] == []
    assert client.get(f"/api/v1/products/{tee['id']}", headers=pos).status_code == 404
    assert client.get("/api/v1/products?channel=web", headers=pos).status_code == 403
    bad = client.patch(
        f"/api/v1/products/{tee['id']}/listing", json={"hidden_channels": ["mars"]}, headers=writer
    )
    assert bad.status_code == 422 and bad.json()["type"].endswith("/unknown-channel")


def test_product_pages_by_cursor(client: TestClient, writer: dict[str, str]) -> None:
    for i in range(3):
        body = {"name": f"P{i}", "variants": [{"sku": f"P-{i}", "name": "v"}]}
        assert client.post("/api/v1/products", json=body, headers=writer).status_code == 201
    first = client.get("/api/v1/products?limit=2", headers=writer).json()
    second = client.get(f"/api/v1/products?limit=2&cursor={first['next_cursor']}", headers=writer).json()
    assert [p["name"] for p in first["items"] + second["items"]] == ["P0", "P1", "P2"]
    assert second["next_cursor"] is None
