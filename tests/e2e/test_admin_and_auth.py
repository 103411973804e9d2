"""API keys: scopes, binding, hashing, revocation; problem+json for auth failures."""

from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.platform.auth import api_keys, hash_key
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key


def test_missing_and_bad_credentials_are_401_problems(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("omk_nope"), bearer("not-a-jwt")):
        res = client.get("/api/v1/keys", headers=headers)
        assert res.status_code == 401, headers
        assert res.headers["content-type"].startswith("application/problem+json")
        assert res.json()["detail"]


def test_scope_is_enforced(client: TestClient, db: Database) -> None:
    res = client.get("/api/v1/keys", headers=bearer(make_key(db, "orders:read")))
    assert res.status_code == 403
    assert res.json()["required_scope"] == "admin"


def test_key_secret_is_shown_once_and_stored_hashed(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    res = client.post(
        "/api/v1/keys",
        headers=admin_headers,
        json={"name": "pos 7", "scopes": ["orders:write"], "channel": "pos", "location": "store-007"},
    )
    assert res.status_code == 201
    secret = res.json()["secret"]
    with db.engine.connect() as conn:
        stored = conn.execute(select(api_keys).where(api_keys.c.id == res.json()["id"])).one()
    assert stored.key_hash == hash_key(secret) and secret not in str(tuple(stored))
    listed = client.get("/api/v1/keys", headers=admin_headers).json()
    assert all("secret" not in k for k in listed)
    assert {"channel": "pos", "location": "store-007"}.items() <= next(
        k for k in listed if k["id"] == res.json()["id"]
    ).items()


def test_revoked_key_stops_working(client: TestClient, db: Database, admin_headers: dict[str, str]) -> None:
    created = client.post(
        "/api/v1/keys", headers=admin_headers, json={"name": "x", "scopes": ["admin"]}
    ).json()
    assert client.get("/api/v1/keys", headers=bearer(created["secret"])).status_code == 200
    assert client.delete(f"/api/v1/keys/{created['id']}", headers=admin_headers).status_code == 204
    assert client.get("/api/v1/keys", headers=bearer(created["secret"])).status_code == 401


def test_unknown_scope_and_channel_are_rejected(client: TestClient, admin_headers: dict[str, str]) -> None:
    res = client.post("/api/v1/keys", headers=admin_headers, json={"name": "x", "scopes": ["root"]})
    assert res.status_code == 422 and "root" in res.json()["detail"]
    res = client.post(
        "/api/v1/keys", headers=admin_headers, json={"name": "x", "scopes": ["admin"], "channel": "tiktok"}
    )
    assert res.status_code == 404


def test_idempotent_key_creation_replays(client: TestClient, admin_headers: dict[str, str]) -> None:
    headers = admin_headers | {"Idempotency-Key": "k-1"}
    body = {"name": "once", "scopes": ["orders:read"]}
    first = client.post("/api/v1/keys", headers=headers, json=body)
    again = client.post("/api/v1/keys", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/api/v1/keys", headers=headers, json={"name": "other", "scopes": ["orders:read"]})
    assert other.status_code == 422
    assert len(client.get("/api/v1/keys", headers=admin_headers).json()) == 2  # admin + one


def test_malformed_json_is_400_problem(client: TestClient, admin_headers: dict[str, str]) -> None:
    res = client.post(
        "/api/v1/keys", headers=admin_headers | {"Content-Type": "application/json"}, content=b"{not json"
    )
    assert res.status_code == 400
    assert res.json()["type"].endswith("malformed-json")
