"""Injection attempts: SQL in query parameters, path segments and bodies changes nothing and never
answers 500; CR/LF in headers never reaches a response header."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from omnicommerce.platform.db import Database, metadata
from omnicommerce.platform.observability import api_routes
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import customer_token, new_cart, seed

SQL_PAYLOADS = (
    "' OR '1'='1",
    "x'; DROP TABLE orders; --",
    '" OR 1=1 --',
    "' UNION SELECT key_hash, id FROM api_keys --",
    "1) OR (1=1",
    "%' OR 1=1 --",
)


def row_counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


@pytest.fixture
def shop(client: TestClient, db: Database, settings: object) -> dict[str, str]:
    seed(db, {"TEE-M": {"dc-east": 5}})
    _, me = customer_token(db, settings, "victim@example.com", "web")  # type: ignore[arg-type]
    new_cart(client, me, {"TEE-M": 1})
    return me


def verdict(res: Response, filtered: bool) -> str | None:
    """What is wrong with the answer to an injection attempt, if anything."""
    if res.status_code >= 500:
        return f"{res.status_code}"
    if res.status_code >= 400 and not res.headers["content-type"].startswith("application/problem+json"):
        return f"{res.status_code} not a problem"
    body = res.json() if res.status_code == 200 else None
    # A filter that matches nothing must return nothing (not "everything", as OR 1=1 would).
    if filtered and isinstance(body, dict) and body.get("items"):
        return f"returned {len(body['items'])} rows"
    return None


def test_sql_in_every_get_parameter_changes_nothing_and_never_500s(
    client: TestClient, db: Database, shop: dict[str, str], admin_headers: dict[str, str]
) -> None:
    before = row_counts(db)
    failures = []
    for template, route in api_routes(client.app):  # type: ignore[arg-type]
        if "GET" not in route.methods or not route.include_in_schema:
            continue
        query_names = [p.alias for p in route.dependant.query_params]
        for payload in SQL_PAYLOADS:
            url = re.sub(r"\{[^}]+\}", quote(payload, safe=""), template)
            params = dict.fromkeys(query_names, payload)
            problem = verdict(client.get(url, params=params, headers=admin_headers), bool(params))
            if problem:
                failures.append(f"GET {template} {payload!r}: {problem}")
    assert failures == []
    assert row_counts(db) == before


def test_sql_in_bodies_is_stored_as_text_or_refused(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    before = row_counts(db)
    payload = "Robert'); DROP TABLE customers; --"
    created = client.post(
        "/api/v1/customers",
        json={"email": "bobby@example.com", "first_name": payload, "last_name": "Tables", "channel": "web"},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    assert (
        client.get(f"/api/v1/customers/{customer_id}", headers=admin_headers).json()["first_name"] == payload
    )
    for identifier in SQL_PAYLOADS[:2]:  # each unknown identifier costs a (dummy) argon2 check
        res = client.post(
            "/api/v1/auth/sign-in",
            json={"identifier": identifier, "password": "whatever12", "channel": "web"},
        )
        assert res.status_code in (401, 422), (identifier, res.status_code)
    after = row_counts(db)
    assert after["customers"] == before["customers"] + 1
    assert {k: v for k, v in after.items() if k not in ("customers", "outbox", "customer_identities")} == {
        k: v for k, v in before.items() if k not in ("customers", "outbox", "customer_identities")
    }


def test_crlf_in_request_id_never_reaches_a_response_header(client: TestClient) -> None:
    for hostile in ("abc\r\nSet-Cookie: pwned=1", "abc\nX-Evil: 1", "a" * 65, "<script>"):
        res = client.get("/healthz", headers={"X-Request-Id": hostile})
        assert res.status_code == 200
        assert "set-cookie" not in res.headers and "x-evil" not in res.headers
        assert re.fullmatch(r"[0-9a-f]{32}", res.headers["X-Request-Id"])  # replaced by a minted id


def test_crlf_in_idempotency_key_is_inert(client: TestClient, db: Database) -> None:
    seed(db, {"TEE-M": {"dc-east": 5}})
    web = bearer(make_key(db, "carts:write", "carts:read", channel="web"))
    key = "k1\r\nSet-Cookie: pwned=1"
    first = client.post(
        "/api/v1/carts", json={"email": "a@example.com"}, headers={**web, "Idempotency-Key": key}
    )
    again = client.post(
        "/api/v1/carts", json={"email": "a@example.com"}, headers={**web, "Idempotency-Key": key}
    )
    assert first.status_code in (200, 201, 422), first.text
    for res in (first, again):
        assert "set-cookie" not in res.headers
        assert all("pwned" not in value for value in res.headers.values())
    if first.status_code != 422:
        assert again.json()["id"] == first.json()["id"]  # still one cart: the key worked as a key
    too_long = client.post("/api/v1/carts", json={}, headers={**web, "Idempotency-Key": "k" * 201})
    assert too_long.status_code == 422
    assert too_long.json()["type"].endswith("bad-idempotency-key")
