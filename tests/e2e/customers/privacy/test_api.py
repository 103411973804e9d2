"""The privacy routes over HTTP: who may call them, problems for bad requests, and an erasure
replayed by its Idempotency-Key."""

from __future__ import annotations

from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

EMAIL = "grace.privacy@example.com"


def _customer(client: TestClient, admin: dict[str, str]) -> str:
    res = client.post(
        "/api/v1/customers", json={"email": EMAIL, "first_name": "Grace", "channel": "web"}, headers=admin
    )
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


def test_only_an_unbound_privacy_key_may_call(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    customer_id = _customer(client, admin_headers)
    body = {"customer_id": customer_id}
    assert client.post("/api/v1/privacy/export", json=body).status_code == 401
    other = bearer(make_key(db, Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE))
    assert client.post("/api/v1/privacy/export", json=body, headers=other).status_code == 403
    store = bearer(make_key(db, Scope.PRIVACY_WRITE, channel="pos", location="store-1"))
    res = client.post("/api/v1/privacy/erasure", json=body, headers=store)
    assert res.status_code == 403 and res.headers["content-type"].startswith("application/problem+json")
    privacy = bearer(make_key(db, Scope.PRIVACY_WRITE))
    assert client.post("/api/v1/privacy/export", json=body, headers=privacy).status_code == 200
    assert client.get(f"/api/v1/privacy/requests/{customer_id}", headers=other).status_code == 403


def test_bad_requests_are_problems(client: TestClient, admin_headers: dict[str, str]) -> None:
    _customer(client, admin_headers)
    for body in ({}, {"customer_id": "cus_1", "email": EMAIL}, {"email": EMAIL, "extra": 1}):
        res = client.post("/api/v1/privacy/erasure", json=body, headers=admin_headers)
        assert res.status_code == 422, (body, res.text)
    for body in ({"customer_id": "cus_nobody"}, {"email": "nobody@example.com"}, {"email": "not-an-email"}):
        res = client.post("/api/v1/privacy/export", json=body, headers=admin_headers)
        assert res.status_code == 404, (body, res.text)
        assert res.json()["type"].endswith("/privacy-subject-not-found")


def test_an_erasure_is_replayed_by_its_idempotency_key(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    customer_id = _customer(client, admin_headers)
    headers = {**admin_headers, "Idempotency-Key": "erase-grace"}

    first = client.post("/api/v1/privacy/erasure", json={"email": EMAIL}, headers=headers)
    again = client.post("/api/v1/privacy/erasure", json={"email": EMAIL}, headers=headers)
    other = client.post("/api/v1/privacy/erasure", json={"customer_id": customer_id}, headers=headers)

    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422  # the same key for another request
    journal = client.get(f"/api/v1/privacy/requests/{customer_id}", headers=admin_headers).json()
    assert [j["kind"] for j in journal] == ["erasure"]  # erased once
    profile = client.get(f"/api/v1/customers/{customer_id}", headers=admin_headers).json()
    assert (profile["email"], profile["first_name"], profile["has_password"]) == (None, None, False)


def test_do_not_sell_denies_the_sale_of_data_everywhere(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    customer_id = _customer(client, admin_headers)
    granted = {
        "consents": [{"purpose": "sale_of_data", "channel": "web", "granted": True}],
        "source": "web-form",
    }
    res = client.put(f"/api/v1/customers/{customer_id}/consents", json=granted, headers=admin_headers)
    assert res.status_code == 200, res.text

    res = client.post(
        "/api/v1/privacy/do-not-sell", json={"email": EMAIL, "reason": "ccpa-7"}, headers=admin_headers
    )

    assert res.status_code == 200, res.text
    sale = {d["channel"]: d["granted"] for d in res.json() if d["purpose"] == "sale_of_data"}
    assert sale["web"] is False and sale["any"] is False  # the earlier per-channel grant is overruled
    journal = client.get(f"/api/v1/privacy/requests/{customer_id}", headers=admin_headers).json()
    assert [(j["kind"], j["reason"]) for j in journal] == [("do_not_sell", "ccpa-7")]
