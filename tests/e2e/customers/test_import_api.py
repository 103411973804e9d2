"""Bulk import and the review queue over HTTP; the Segment API's write key in the body and
gzip bodies; control characters in an email."""

from __future__ import annotations

import base64
import gzip
import json

import orjson
import pytest
from fastapi.testclient import TestClient

from omnicommerce.customers import identity, importing, linkage
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.customers.people import MAPPING, people

API = "/api/v1"


@pytest.fixture(autouse=True)
def _fresh_models() -> None:
    linkage.forget_models()


def _multipart(csv_text: str, mapping: dict) -> tuple[bytes, str]:
    boundary = "omniboundary7"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="crm.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
        f"{csv_text}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="mapping"\r\n'
        "Content-Type: application/json\r\n\r\n"
        f"{json.dumps(mapping)}\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_import_multipart_then_review_accept_and_reject(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    data = people(200, duplicates=5, households=4)
    body, content_type = _multipart(data.csv(), MAPPING)
    headers = {**admin_headers, "Content-Type": content_type, "Idempotency-Key": "imp-1"}
    res = client.post(f"{API}/customers/import", params={"source": "crm"}, content=body, headers=headers)
    assert res.status_code == 200, res.text
    report = res.json()
    assert report["status"] == "done" and report["created"] == 209 and report["merged_probabilistic"] == 5
    again = client.post(f"{API}/customers/import", params={"source": "crm"}, content=body, headers=headers)
    assert again.json()["id"] == report["id"]  # the same key replays, nothing imported twice
    assert client.get(f"{API}/customers/imports/{report['id']}", headers=admin_headers).json() == report

    queue = client.get(f"{API}/identity/reviews", headers=admin_headers, params={"limit": 2})
    assert queue.status_code == 200
    page = queue.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    # The households (same address and phone, other people) wait for a person, never merged.
    assert report["queued_for_review"] >= 4
    everything = client.get(f"{API}/identity/reviews", headers=admin_headers, params={"limit": 200}).json()
    households = [
        r for r in everything["items"] if r["evidence"]["levels"]["given_name"] in ("fuzzy_low", "else")
    ]
    assert len(households) >= 4
    first, second = households[:2]

    accepted = client.post(f"{API}/identity/reviews/{first['id']}/accept", headers=admin_headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and accepted.json()["merge_id"]
    journal = client.get(f"{API}/customers/{first['right_id']}/merges", headers=admin_headers).json()
    assert journal[-1]["evidence"]["accepted_by"] and journal[-1]["evidence"]["review_id"] == first["id"]
    closed = client.post(f"{API}/identity/reviews/{first['id']}/reject", headers=admin_headers)
    assert closed.status_code == 409

    rejected = client.post(f"{API}/identity/reviews/{second['id']}/reject", headers=admin_headers)
    assert rejected.json()["status"] == "rejected"
    pending = client.get(f"{API}/identity/reviews", headers=admin_headers).json()["items"]
    assert {r["id"] for r in pending}.isdisjoint({first["id"], second["id"]})


def test_large_import_is_queued_and_run_by_the_worker(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "SYNC_MAX_ROWS", 50)
    lines = "\n".join(
        orjson.dumps({"email": f"row{i}@example.com", "first_name": "Ada", "last_name": f"L{i}"}).decode()
        for i in range(60)
    )
    res = client.post(
        f"{API}/customers/import",
        content=lines.encode(),
        headers={**admin_headers, "Content-Type": "application/x-ndjson"},
    )
    assert res.status_code == 202, res.text
    assert res.json()["status"] == "queued" and res.json()["rows"] == 60
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    report = client.get(f"{API}/customers/imports/{res.json()['id']}", headers=admin_headers).json()
    assert report["status"] == "done" and report["created"] == 60


def test_a_queued_import_that_fails_is_marked_failed_and_leaves_nothing(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "SYNC_MAX_ROWS", 1)
    lines = b'{"email": "a@example.com"}\n{"email": "b@example.com"}\n'
    headers = {**admin_headers, "Content-Type": "application/x-ndjson"}
    res = client.post(f"{API}/customers/import", content=lines, headers=headers)
    assert res.status_code == 202

    def contended(*args: object, **kwargs: object) -> None:
        raise identity.IdentityContention(
            "identifiers in this file were claimed concurrently; retry the import"
        )

    monkeypatch.setattr(importing, "import_rows", contended)
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    report = client.get(f"{API}/customers/imports/{res.json()['id']}", headers=admin_headers).json()
    assert report["status"] == "failed" and "claimed concurrently" in report["warnings"][0]["reasons"][0]
    found = client.get(f"{API}/customers", params={"email": "a@example.com"}, headers=admin_headers).json()
    assert found["items"] == []


def test_import_refuses_what_it_cannot_read(
    client: TestClient, admin_headers: dict[str, str], db: Database
) -> None:
    bad_mapping = client.post(
        f"{API}/customers/import",
        params={"mapping": json.dumps({"Email": "e-mail-address"})},
        content=b"Email\nada@example.com\n",
        headers={**admin_headers, "Content-Type": "text/csv"},
    )
    assert bad_mapping.status_code == 422 and bad_mapping.json()["type"].endswith("invalid-import-mapping")
    wrong_type = client.post(
        f"{API}/customers/import", content=b"{}", headers={**admin_headers, "Content-Type": "application/pdf"}
    )
    assert wrong_type.status_code == 422
    not_admin = bearer(make_key(db, Scope.CUSTOMERS_WRITE))
    assert client.post(f"{API}/customers/import", content=b"email\n", headers=not_admin).status_code == 403


def _basic(key: str) -> str:
    return base64.b64encode(f"{key}:".encode()).decode()


def test_segment_write_key_in_body_and_gzip_bodies(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    event = {"userId": "u-1", "event": "Viewed", "messageId": "m-1", "writeKey": key}
    res = client.post("/v1/track", json=event)
    assert res.status_code == 200, res.text
    assert client.post("/v1/track", json={**event, "writeKey": "omk_nope"}).status_code == 401
    packed = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u-2", "event": "X"}]}))
    res = client.post(
        "/v1/batch",
        content=packed,
        headers={
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
            "Authorization": "Basic " + _basic(key),
        },
    )
    assert res.status_code == 200 and res.json()["accepted"] == 1
    broken = client.post(
        "/v1/batch",
        content=b"not gzip",
        headers={"Content-Encoding": "gzip", "Authorization": "Basic " + _basic(key)},
    )
    assert broken.status_code == 400
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    res = client.post(
        "/v1/batch",
        content=bomb,
        headers={"Content-Encoding": "gzip", "Authorization": "Basic " + _basic(key)},
    )
    assert res.status_code == 413


def test_email_with_control_characters_is_a_clean_422(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    for email in ("ada\x00@example.com", "ada@exa\x07mple.com"):
        res = client.post(f"{API}/customers", json={"email": email, "channel": "web"}, headers=admin_headers)
        assert res.status_code == 422, res.text
        assert res.json()["type"].endswith("invalid-email")
