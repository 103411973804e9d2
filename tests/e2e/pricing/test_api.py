"""Pricing over HTTP through the real app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

QUOTE = "/api/v1/prices/quote"
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("get", f"{QUOTE}?channel=web&currency=USD&line=A-1:1", None),
    ("post", QUOTE, {"channel": "web", "currency": "USD", "lines": [{"sku": "A-1", "quantity": 1}]}),
    ("put", "/api/v1/prices", [{"sku": "A-1", "currency": "USD", "amount": 100}]),
    ("get", "/api/v1/prices/A-1", None),
    ("post", "/api/v1/promotions", {"name": "p", "kind": "percentage", "basis_points": 100}),
    ("get", "/api/v1/promotions", None),
    ("post", "/api/v1/coupons", {"code": "ABC", "promotion_id": "pro_x"}),
]


@pytest.fixture
def admin(admin_headers: dict[str, str]) -> dict[str, str]:
    return admin_headers


@pytest.fixture
def shop(client: TestClient, admin: dict[str, str]) -> None:
    """Two SKUs: A-1 at 10.00 (9.00 on pos), B-1 at 4.00, both USD."""
    for sku in ("A-1", "B-1"):
        body = {"name": f"Product {sku}", "variants": [{"sku": sku, "name": sku}]}
        assert client.post("/api/v1/products", json=body, headers=admin).status_code == 201
    prices = [
        {"sku": "A-1", "currency": "USD", "amount": 1000},
        {"sku": "B-1", "currency": "USD", "amount": 400},
        {"sku": "A-1", "currency": "USD", "amount": 900, "channel": "pos"},
    ]
    res = client.put("/api/v1/prices", json=prices, headers=admin)
    assert res.status_code == 200 and res.json() == {"updated": 3}


def problem_type(res: Any) -> str:
    assert res.headers["content-type"] == "application/problem+json", res.text
    return str(res.json()["type"].rsplit("/", 1)[1])


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_a_credential(client: TestClient, method: str, path: str, body: Any) -> None:
    res = client.request(method, path, json=body)
    assert res.status_code == 401 and problem_type(res) == "unauthorized"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_its_scope(
    client: TestClient, db: Database, method: str, path: str, body: Any
) -> None:
    res = client.request(method, path, json=body, headers=bearer(make_key(db, Scope.CATALOG_READ)))
    assert res.status_code == 403 and problem_type(res) == "forbidden"


@pytest.mark.usefixtures("shop")
def test_quote_by_get_and_post_agree(client: TestClient, admin: dict[str, str]) -> None:
    got = client.get(f"{QUOTE}?channel=pos&currency=USD&line=A-1:2&line=B-1:1", headers=admin)
    assert got.status_code == 200, got.text
    body = {
        "channel": "pos",
        "currency": "USD",
        "lines": [{"sku": "A-1", "quantity": 2}, {"sku": "B-1", "quantity": 1}],
    }
    posted = client.post(QUOTE, json=body, headers=admin)
    assert posted.json() == got.json()
    assert (got.json()["subtotal"], got.json()["total"]) == (2200, 2200)
    assert [ln["unit_price"] for ln in got.json()["lines"]] == [900, 400]


@pytest.mark.usefixtures("shop")
def test_promotion_and_coupon_show_up_as_adjustments(client: TestClient, admin: dict[str, str]) -> None:
    promo = {
        "name": "Half off A",
        "kind": "percentage",
        "basis_points": 5000,
        "skus": ["A-1"],
        "requires_coupon": True,
    }
    headers = {**admin, "Idempotency-Key": "promo-1"}
    created = client.post("/api/v1/promotions", json=promo, headers=headers)
    assert created.status_code == 201 and created.json()["id"].startswith("pro_")
    assert client.post("/api/v1/promotions", json=promo, headers=headers).json() == created.json()
    listed = client.get("/api/v1/promotions", headers=admin).json()["items"]
    assert [p["id"] for p in listed] == [created.json()["id"]]
    coupon = client.post(
        "/api/v1/coupons",
        json={"code": "half", "promotion_id": created.json()["id"], "max_uses": 5},
        headers=admin,
    )
    assert coupon.status_code == 201 and coupon.json()["code"] == "HALF"
    q = client.get(f"{QUOTE}?channel=web&currency=USD&line=A-1:1&coupon=Half", headers=admin).json()
    assert q["total"] == 500 and q["coupon_codes"] == ["HALF"]
    assert q["lines"][0]["adjustments"] == [
        {"reason": "Half off A", "amount": -500, "promotion_id": created.json()["id"], "coupon_code": "HALF"}
    ]
    again = client.post(
        "/api/v1/coupons", json={"code": "HALF", "promotion_id": created.json()["id"]}, headers=admin
    )
    assert again.status_code == 409 and problem_type(again) == "duplicate-coupon"


@pytest.mark.usefixtures("shop")
def test_bad_quotes_are_clear_problems(client: TestClient, admin: dict[str, str]) -> None:
    def get(query: str) -> Any:
        return client.get(f"{QUOTE}?{query}", headers=admin)

    cases = [
        ("channel=web&currency=USD&line=NOPE:1", 422, "unknown-sku"),
        ("channel=web&currency=USD&line=A-1:-2", 422, "invalid-quantity"),
        ("channel=web&currency=USD&line=A-1:0", 422, "invalid-quantity"),
        ("channel=web&currency=EUR&line=A-1:1", 422, "currency-mismatch"),
        ("channel=web&currency=USD&line=A-1", 422, "bad-line"),
        ("channel=web&currency=USD&line=A-1:1&coupon=NOPE", 422, "invalid-coupon"),
        ("currency=USD&line=A-1:1", 422, "channel-required"),
        ("channel=mars&currency=USD&line=A-1:1", 404, "unknown-channel"),
        ("channel=web&currency=usd&line=A-1:1", 422, "validation-error"),
    ]
    for query, status, kind in cases:
        res = get(query)
        assert (res.status_code, problem_type(res)) == (status, kind), query
        assert res.json()["detail"]
    malformed = client.post(QUOTE, content=b"{nope", headers={**admin, "Content-Type": "application/json"})
    assert malformed.status_code == 400 and problem_type(malformed) == "malformed-json"


@pytest.mark.usefixtures("shop")
def test_channel_bound_key_quotes_on_its_own_channel(client: TestClient, db: Database) -> None:
    pos = bearer(make_key(db, Scope.PRICES_READ, channel="pos"))
    assert client.get(f"{QUOTE}?currency=USD&line=A-1:1", headers=pos).json()["total"] == 900
    res = client.get(f"{QUOTE}?channel=web&currency=USD&line=A-1:1", headers=pos)
    assert res.status_code == 403 and problem_type(res) == "channel-mismatch"


@pytest.mark.usefixtures("shop")
def test_price_book_reads_and_bad_writes(client: TestClient, admin: dict[str, str]) -> None:
    prices = client.get("/api/v1/prices/A-1", headers=admin).json()["prices"]
    assert {(p["amount"], p["channel"]) for p in prices} == {(1000, None), (900, "pos")}
    assert problem_type(client.get("/api/v1/prices/NOPE", headers=admin)) == "unknown-sku"
    cases = [
        ([{"sku": "NOPE", "currency": "USD", "amount": 1}], 422, "unknown-sku"),
        ([{"sku": "A-1", "currency": "XXX", "amount": 1}], 422, "unsupported-currency"),
        ([{"sku": "A-1", "currency": "USD", "amount": -1}], 422, "validation-error"),
        ([{"sku": "A-1", "currency": "USD", "amount": 1, "channel": "mars"}], 422, "unknown-channel"),
    ]
    for body, status, kind in cases:
        res = client.put("/api/v1/prices", json=body, headers=admin)
        assert (res.status_code, problem_type(res)) == (status, kind), body


def test_bad_promotions_and_coupons_are_refused(client: TestClient, admin: dict[str, str]) -> None:
    res = client.post(
        "/api/v1/promotions", json={"name": "p", "kind": "fixed", "amount_off": 100}, headers=admin
    )
    assert res.status_code == 422 and "currency" in res.text
    res = client.post("/api/v1/coupons", json={"code": "ABC", "promotion_id": "pro_nope"}, headers=admin)
    assert res.status_code == 422 and problem_type(res) == "unknown-promotion"
