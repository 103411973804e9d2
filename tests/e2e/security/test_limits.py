"""Rate limits (429 + Retry-After, per API key / customer token / client IP) and the request body
size limit (413, enforced while the body streams in)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omnicommerce.api.app import create_app
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.limits import TokenBucket, credential_free_paths
from tests.conftest import bearer, make_key
from tests.e2e.security.staff_support import PASSWORD
from tests.integration.orders.shop import customer_token


@pytest.fixture
def limited(db: Database, settings: Settings) -> Iterator[TestClient]:
    """Three requests per bucket, then one per minute: no refill happens while a test runs."""
    tight = settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_per_minute": 1,
            "rate_limit_customer_per_minute": 1,
            "rate_limit_staff_per_minute": 1,
            "rate_limit_anonymous_per_minute": 1,
            "rate_limit_burst_seconds": 180.0,
        }
    )
    with TestClient(create_app(tight, db=db, run_relay=False)) as client:
        yield client


def assert_rate_limited(res: object) -> None:
    assert res.status_code == 429, res.text  # type: ignore[attr-defined]
    assert res.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    assert res.json()["type"].endswith("/rate-limited")  # type: ignore[attr-defined]
    assert 1 <= int(res.headers["Retry-After"]) <= 60  # type: ignore[attr-defined]


def test_each_api_key_has_its_own_bucket(limited: TestClient, db: Database) -> None:
    first, second = bearer(make_key(db, "orders:read")), bearer(make_key(db, "orders:read"))
    for _ in range(3):
        assert limited.get("/api/v1/orders", headers=first).status_code == 200
    assert_rate_limited(limited.get("/api/v1/orders", headers=first))
    assert limited.get("/api/v1/orders", headers=second).status_code == 200  # not drained by the first


def test_customer_tokens_and_anonymous_callers_are_limited(
    limited: TestClient, db: Database, settings: Settings
) -> None:
    _, me = customer_token(db, settings, "busy@example.com", "web")
    for _ in range(3):
        assert limited.get("/api/v1/me/carts", headers=me).status_code == 200
    assert_rate_limited(limited.get("/api/v1/me/carts", headers=me))

    bad_sign_in = {"identifier": "nobody@example.com"}  # refused by validation: no password hashing
    for _ in range(3):
        assert limited.post("/api/v1/auth/sign-in", json=bad_sign_in).status_code == 422
    assert_rate_limited(limited.post("/api/v1/auth/sign-in", json=bad_sign_in))
    # A made-up credential on a route that takes none buys no fresh bucket for more guesses.
    forged = {"Authorization": "Bearer made-up-token-1"}
    assert_rate_limited(limited.post("/api/v1/auth/sign-in", json=bad_sign_in, headers=forged))
    # Probes and scrapes are never limited.
    for _ in range(5):
        assert limited.get("/healthz").status_code == 200
    metrics = limited.get("/metrics")
    assert 'omni_http_rejected_requests_total{reason="rate_limit"} 3.0' in metrics.text


def test_staff_sign_in_is_limited_per_ip_and_each_staff_token_has_its_own_bucket(
    limited: TestClient, db: Database
) -> None:
    admin = bearer(make_key(db, "admin"))
    created = limited.post(
        "/api/v1/staff",
        json={"email": "kai@example.com", "name": "Kai", "role": "analyst", "password": PASSWORD},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    signed_in = limited.post("/api/v1/staff/sign-in", json={"email": "kai@example.com", "password": PASSWORD})
    assert signed_in.status_code == 200
    guess = {"email": "kai@example.com", "password": "guess number one"}
    assert [limited.post("/api/v1/staff/sign-in", json=guess).status_code for _ in range(2)] == [401, 401]
    assert_rate_limited(limited.post("/api/v1/staff/sign-in", json=guess))
    forged = {"Authorization": "Bearer oms_made-up"}  # no fresh bucket for more guesses either
    assert_rate_limited(limited.post("/api/v1/staff/sign-in", json=guess, headers=forged))
    staff = bearer(signed_in.json()["access_token"])
    for _ in range(3):
        assert limited.get("/api/v1/staff/me", headers=staff).status_code == 200
    assert_rate_limited(limited.get("/api/v1/staff/me", headers=staff))
    assert limited.get("/api/v1/staff", headers=admin).status_code == 200  # the key's bucket is its own


def test_rate_limiting_is_off_in_the_default_test_settings(client: TestClient, db: Database) -> None:
    key = bearer(make_key(db, "orders:read"))
    assert all(client.get("/api/v1/orders", headers=key).status_code == 200 for _ in range(30))


def test_token_bucket_refills_at_the_configured_rate() -> None:
    bucket = TokenBucket(per_minute=60, burst_seconds=2)  # one a second, two at once
    assert bucket.take(7, now=100.0) == 0.0
    assert bucket.take(7, now=100.0) == 0.0
    assert bucket.take(7, now=100.0) == pytest.approx(1.0)
    assert bucket.take(7, now=100.5) == pytest.approx(0.5)
    assert bucket.take(7, now=101.0) == 0.0  # refilled after a second
    assert bucket.take(8, now=101.0) == 0.0  # another key, another bucket


# --- body size --------------------------------------------------------------------------------

LIMIT = 2_000


@pytest.fixture
def small_bodies(db: Database, settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"max_body_bytes": LIMIT}), db=db, run_relay=False)


def test_a_declared_oversized_body_is_refused_before_it_is_read(
    small_bodies: FastAPI, admin_headers: dict[str, str]
) -> None:
    big = {"name": "x" * (LIMIT + 100)}
    with TestClient(small_bodies) as client:
        res = client.post("/api/v1/products", json=big, headers=admin_headers)
        assert res.status_code == 413
        assert res.headers["content-type"].startswith("application/problem+json")
        assert res.json()["status"] == 413 and str(LIMIT) in res.json()["detail"]
        small = client.post("/api/v1/products", json={"name": "x"}, headers=admin_headers)
        assert small.status_code == 422  # under the limit: on to validation as usual


def test_a_streamed_body_is_cut_off_once_it_passes_the_limit(
    small_bodies: FastAPI, admin_headers: dict[str, str]
) -> None:
    """No Content-Length (chunked): the app stops pulling chunks at the limit, and answers 413."""
    chunk = b" " * 500
    pulled = 0
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < 100}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in admin_headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/products",
        "raw_path": b"/api/v1/products",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    anyio.run(small_bodies, scope, receive, send)

    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]
    assert start["status"] == 413
    assert json.loads(body)["status"] == 413
    assert pulled == LIMIT // len(chunk) + 1  # 5 of the 100 chunks: stopped at the limit


def test_credential_free_routes_are_the_ways_to_get_a_credential(limited: TestClient) -> None:
    free = credential_free_paths(limited.app)  # type: ignore[arg-type]
    assert {"/api/v1/auth/sign-in", "/api/v1/auth/sign-up", "/api/v1/auth/refresh"} <= free
    assert "/api/v1/orders" not in free and "/api/v1/keys" not in free
