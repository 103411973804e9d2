"""Segments over HTTP: create (with Idempotency-Key), preview, list, read, replace, delete,
members by cursor, 422 problems for bad rules, scopes; and membership kept current as events
arrive through the ingestion API and the relay."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

import omnicommerce.customers.segments.subscribers  # noqa: F401  (registers the incremental evaluation)
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

API = "/api/v1"
VIEWERS = {"event": "Product Viewed", "where": {"channel": "web"}}


def _ingest(client: TestClient, headers: dict[str, str], *events: dict[str, Any]) -> list[str]:
    res = client.post(f"{API}/events", json={"batch": list(events)}, headers=headers)
    assert res.status_code == 200, res.text
    return [r["customer_id"] for r in res.json()["results"]]


def _viewer(client: TestClient, headers: dict[str, str], user: str) -> str:
    return _ingest(
        client, headers, {"type": "track", "event": "Product Viewed", "userId": user, "channel": "web"}
    )[0]


def _visitor(client: TestClient, headers: dict[str, str], user: str) -> str:
    return _ingest(client, headers, {"type": "identify", "userId": user, "channel": "pos"})[0]


def _create(
    client: TestClient, headers: dict[str, str], name: str, rules: dict[str, Any], **extra: Any
) -> Any:
    return client.post(f"{API}/segments", json={"name": name, "rules": rules}, headers={**headers, **extra})


def test_create_evaluates_at_once_and_replays_with_the_same_key(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    viewers = {_viewer(client, admin_headers, f"v{i}") for i in range(3)}
    _visitor(client, admin_headers, "walk-in")
    key = {"Idempotency-Key": "seg-1"}
    first = _create(client, admin_headers, "Web viewers", VIEWERS, **key)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["size"], body["version"], body["windowed"]) == (3, 1, False)
    assert body["rules"] == VIEWERS and body["id"].startswith("seg_")
    again = _create(client, admin_headers, "Web viewers", VIEWERS, **key)
    assert again.status_code == 201 and again.json() == body
    assert again.headers["Idempotent-Replayed"] == "true"
    other = _create(client, admin_headers, "Other", VIEWERS, **key)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    taken = _create(client, admin_headers, "Web viewers", VIEWERS)
    assert taken.status_code == 409 and taken.json()["type"].endswith("segment-name-taken")
    members = client.get(f"{API}/segments/{body['id']}/members", headers=admin_headers).json()
    assert {m["customer_id"] for m in members["items"]} == viewers


def test_bad_rules_answer_422_problems_naming_each_field(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    rules = {"all": [{"trait": "shoe_size", "op": ">", "value": 1}, {"event": "x", "within_days": -1}]}
    for res in (
        _create(client, admin_headers, "Bad", rules),
        client.post(f"{API}/segments/preview", json={"rules": rules}, headers=admin_headers),
    ):
        assert res.status_code == 422
        assert res.headers["content-type"].startswith("application/problem+json")
        problem = res.json()
        assert problem["type"].endswith("invalid-segment-rule")
        assert {e["path"] for e in problem["errors"]} == {"rules.all[0].trait", "rules.all[1].within_days"}
        assert "shoe_size" in problem["detail"]
    missing = client.post(f"{API}/segments", json={"name": "No rules"}, headers=admin_headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "rules"
    assert client.get(f"{API}/segments", headers=admin_headers).json()["items"] == []


def test_preview_sizes_a_rule_without_saving_it(client: TestClient, admin_headers: dict[str, str]) -> None:
    viewers = sorted(_viewer(client, admin_headers, f"v{i}") for i in range(4))
    res = client.post(
        f"{API}/segments/preview", json={"rules": VIEWERS, "sample_size": 2}, headers=admin_headers
    )
    assert res.status_code == 200, res.text
    assert res.json() == {"size": 4, "sample": viewers[:2], "windowed": False}
    never = {"not": VIEWERS}
    assert (
        client.post(f"{API}/segments/preview", json={"rules": never}, headers=admin_headers).json()["size"]
        == 0
    )
    assert client.get(f"{API}/segments", headers=admin_headers).json()["items"] == []


def test_list_read_replace_delete_and_page_members(client: TestClient, admin_headers: dict[str, str]) -> None:
    viewers = sorted(_viewer(client, admin_headers, f"v{i}") for i in range(5))
    walk_in = _visitor(client, admin_headers, "walk-in")
    ids = [_create(client, admin_headers, f"Segment {i}", VIEWERS).json()["id"] for i in range(3)]
    page = client.get(f"{API}/segments?limit=2", headers=admin_headers).json()
    assert [s["id"] for s in page["items"]] == ids[:2] and page["items"][0]["size"] == 5
    rest = client.get(f"{API}/segments?cursor={page['next_cursor']}", headers=admin_headers).json()
    assert [s["id"] for s in rest["items"]] == ids[2:] and rest["next_cursor"] is None

    first = client.get(f"{API}/segments/{ids[0]}/members?limit=3", headers=admin_headers).json()
    second = client.get(
        f"{API}/segments/{ids[0]}/members?limit=3&cursor={first['next_cursor']}", headers=admin_headers
    ).json()
    assert [m["customer_id"] for m in first["items"] + second["items"]] == viewers
    assert second["next_cursor"] is None

    replaced = client.put(
        f"{API}/segments/{ids[0]}",
        json={
            "name": "Store visitors",
            "description": "seen at a till",
            "rules": {"event": "*", "where": {"channel": "pos"}},
        },
        headers=admin_headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["version"], replaced.json()["size"], replaced.json()["name"]) == (
        2,
        1,
        "Store visitors",
    )
    assert (
        client.get(f"{API}/segments/{ids[0]}", headers=admin_headers).json()["description"]
        == "seen at a till"
    )
    members = client.get(f"{API}/segments/{ids[0]}/members", headers=admin_headers).json()["items"]
    assert [m["customer_id"] for m in members] == [walk_in]
    clash = client.put(
        f"{API}/segments/{ids[0]}", json={"name": "Segment 1", "rules": VIEWERS}, headers=admin_headers
    )
    assert clash.status_code == 409

    assert client.delete(f"{API}/segments/{ids[0]}", headers=admin_headers).status_code == 204
    for res in (
        client.get(f"{API}/segments/{ids[0]}", headers=admin_headers),
        client.get(f"{API}/segments/{ids[0]}/members", headers=admin_headers),
        client.delete(f"{API}/segments/{ids[0]}", headers=admin_headers),
        client.put(f"{API}/segments/{ids[0]}", json={"name": "x", "rules": VIEWERS}, headers=admin_headers),
    ):
        assert res.status_code == 404 and res.json()["type"].endswith("segment-not-found")
    bad_cursor = client.get(f"{API}/segments/{ids[1]}/members?cursor=%%%", headers=admin_headers)
    assert bad_cursor.status_code == 422


def test_scopes(client: TestClient, db: Database) -> None:
    reader = bearer(make_key(db, Scope.SEGMENTS_READ))
    writer = bearer(make_key(db, Scope.SEGMENTS_WRITE, Scope.SEGMENTS_READ))
    customers_only = bearer(make_key(db, Scope.CUSTOMERS_READ, Scope.CUSTOMERS_WRITE))
    assert client.get(f"{API}/segments").status_code == 401
    assert client.get(f"{API}/segments", headers=customers_only).status_code == 403
    assert _create(client, reader, "Mine", VIEWERS).status_code == 403
    created = _create(client, writer, "Mine", VIEWERS)
    assert created.status_code == 201
    assert client.get(f"{API}/segments/{created.json()['id']}", headers=reader).status_code == 200
    assert client.delete(f"{API}/segments/{created.json()['id']}", headers=reader).status_code == 403
    preview = client.post(f"{API}/segments/preview", json={"rules": VIEWERS}, headers=reader)
    assert preview.status_code == 200


def test_membership_follows_ingested_events_through_the_relay(
    app: FastAPI, client: TestClient, admin_headers: dict[str, str]
) -> None:
    ada = _visitor(client, admin_headers, "ada")
    segment = _create(client, admin_headers, "Web viewers", VIEWERS).json()
    assert segment["size"] == 0
    app.state.relay.drain()
    _viewer(client, admin_headers, "ada")  # ada browses the web shop
    app.state.relay.drain()  # customer.events_ingested → re-evaluation of ada
    members = client.get(f"{API}/segments/{segment['id']}/members", headers=admin_headers).json()["items"]
    assert [m["customer_id"] for m in members] == [ada]
    assert client.get(f"{API}/segments/{segment['id']}", headers=admin_headers).json()["size"] == 1
