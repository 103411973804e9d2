"""Event ingestion over HTTP: the own schema and the Segment spec, per-event validation,
de-duplication, out-of-order timestamps, and identity resolution on the way in."""

import base64

from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

API = "/api/v1"


def _basic(write_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


def _ingest(client: TestClient, key: str, *events: dict) -> dict:
    res = client.post(f"{API}/events", json={"batch": list(events)}, headers=bearer(key))
    assert res.status_code == 200, res.text
    return res.json()


def _profile(client: TestClient, headers: dict[str, str], customer_id: str, **params) -> dict:
    res = client.get(f"{API}/customers/{customer_id}/profile", headers=headers, params=params)
    assert res.status_code == 200, res.text
    return res.json()


def test_batch_reports_each_event_and_one_bad_event_drops_nothing(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    body = _ingest(
        client,
        key,
        {"type": "track", "messageId": "m1", "anonymousId": "a1", "event": "Product Viewed"},
        {"type": "track", "messageId": "m2", "anonymousId": "a1"},  # no event name
        {"type": "page", "messageId": "m3", "name": "Home"},  # neither userId nor anonymousId
        {"type": "teleport", "messageId": "m4", "anonymousId": "a1"},
        {"type": "page", "messageId": "m5", "anonymousId": "a1", "timestamp": "not a time"},
        {"type": "page", "messageId": "m6", "anonymousId": "a1", "name": "Home"},
    )
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "rejected", "rejected", "rejected", "rejected", "accepted"]
    assert (body["accepted"], body["rejected"], body["duplicates"]) == (2, 4, 0)
    assert body["results"][1]["errors"][0]["field"] == "event"
    assert "userId or anonymousId" in body["results"][2]["errors"][0]["message"]
    assert body["results"][3]["errors"][0]["field"] == "type"
    assert body["results"][4]["errors"][0]["field"] == "timestamp"


def test_message_id_deduplicates_across_requests_and_within_one(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    event = {"type": "track", "messageId": "dup-1", "anonymousId": "a1", "event": "Clicked"}
    first = _ingest(client, key, event, event)
    assert [r["status"] for r in first["results"]] == ["accepted", "duplicate"]
    again = _ingest(client, key, event)
    assert again["results"][0]["status"] == "duplicate" and again["accepted"] == 0


def test_identify_links_earlier_anonymous_events_and_timeline_orders_by_event_time(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    _ingest(
        client,
        key,
        {
            "type": "page",
            "messageId": "p2",
            "anonymousId": "v1",
            "name": "B",
            "timestamp": "2026-01-02T10:00:00Z",
            "context": {"channel": "browser"},
        },
    )
    # A late event (sent later, happened earlier) and the identify that names the visitor.
    body = _ingest(
        client,
        key,
        {
            "type": "page",
            "messageId": "p1",
            "anonymousId": "v1",
            "name": "A",
            "timestamp": "2026-01-01T10:00:00Z",
        },
        {
            "type": "identify",
            "messageId": "i1",
            "anonymousId": "v1",
            "traits": {"email": " Ada@Example.com ", "firstName": "Ada", "last_name": "Lovelace"},
            "timestamp": "2026-01-03T10:00:00Z",
        },
    )
    customer_id = body["results"][1]["customer_id"]
    assert customer_id and customer_id.startswith("cus_")
    assert body["results"][0]["customer_id"] == customer_id  # attributed in the same request
    profile = _profile(client, admin_headers, customer_id)
    assert [e["message_id"] for e in profile["timeline"]] == ["i1", "p2", "p1"]  # newest first, by event time
    assert {(i["type"], i["value"]) for i in profile["identities"]} == {
        ("email", "ada@example.com"),
        ("anonymous_id", "v1"),
    }
    assert profile["customer"]["email"] == "ada@example.com"
    assert (profile["customer"]["first_name"], profile["customer"]["last_name"]) == ("Ada", "Lovelace")
    traits = profile["traits"]  # kept incrementally, including the events sent before the identify
    assert traits["event_count"] == 3 and traits["channels"] == ["web"]
    assert traits["first_seen"].startswith("2026-01-01T10:00")
    assert traits["last_seen"].startswith("2026-01-03T10:00")
    page = _profile(client, admin_headers, customer_id, limit=2)
    assert [e["message_id"] for e in page["timeline"]] == ["i1", "p2"]
    rest = _profile(client, admin_headers, customer_id, limit=2, cursor=page["next_cursor"])
    assert [e["message_id"] for e in rest["timeline"]] == ["p1"] and rest["next_cursor"] is None


def test_sent_at_corrects_device_clock_skew(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    # The device's clock is a year ahead: it stamped and sent the event "in 2027".
    res = client.post(
        f"{API}/events",
        json={
            "sentAt": "2027-06-01T12:00:05Z",
            "batch": [
                {
                    "type": "identify",
                    "messageId": "skew",
                    "userId": "u-skew",
                    "timestamp": "2027-06-01T12:00:00Z",
                }
            ],
        },
        headers=bearer(key),
    )
    customer_id = res.json()["results"][0]["customer_id"]
    event = _profile(client, admin_headers, customer_id)["timeline"][0]
    skew = (
        __import__("datetime").datetime.fromisoformat(event["received_at"])
        - __import__("datetime").datetime.fromisoformat(event["timestamp"])
    ).total_seconds()
    assert 4 <= skew <= 6  # happened five seconds before it arrived, whatever the device's clock said


def test_segment_endpoints_take_the_write_key_as_basic_auth(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    res = client.post(
        "/v1/track",
        json={"messageId": "s1", "anonymousId": "a9", "event": "Signed Up", "properties": {"plan": "pro"}},
        headers=_basic(key),
    )
    assert res.status_code == 200, res.text
    assert res.json()["success"] is True
    res = client.post(
        "/v1/batch",
        json={
            "batch": [
                {
                    "type": "identify",
                    "messageId": "s2",
                    "anonymousId": "a9",
                    "traits": {"phone": "+1 415 555 0123"},
                },
                {"type": "screen", "messageId": "s3", "anonymousId": "a9", "name": "Cart"},
                {"type": "alias", "messageId": "s4", "previousId": "a9", "userId": "u-9"},
                {"type": "group", "messageId": "s5", "userId": "u-9", "groupId": "acme"},
                {"type": "group", "messageId": "s6", "userId": "u-9"},
            ]
        },
        headers=_basic(key),
    )
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    assert [r["status"] for r in results] == ["accepted"] * 4 + ["rejected"]
    assert len({r["customer_id"] for r in results[:4]}) == 1 and results[0]["customer_id"]
    bad = client.post("/v1/track", json={"messageId": "s7", "anonymousId": "a9"}, headers=_basic(key))
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-event")
    assert "event" in bad.json()["detail"]


def test_segment_write_key_must_be_valid_and_carry_events_write(client: TestClient, db: Database) -> None:
    event = {"messageId": "x", "anonymousId": "a", "event": "E"}
    assert client.post("/v1/track", json=event).status_code == 401
    assert client.post("/v1/track", json=event, headers=_basic("omk_nope")).status_code == 401
    assert client.post("/v1/track", json=event, headers={"Authorization": "Basic !!!"}).status_code == 401
    reader = make_key(db, Scope.CUSTOMERS_READ)
    assert client.post("/v1/track", json=event, headers=_basic(reader)).status_code == 403
    assert client.post(f"{API}/events", json={"batch": [event]}, headers=bearer(reader)).status_code == 403


def test_batch_larger_than_the_limit_is_refused(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    events = [{"type": "track", "anonymousId": "a", "event": "E"}] * 1001
    res = client.post(f"{API}/events", json={"batch": events}, headers=bearer(key))
    assert res.status_code == 422 and res.json()["type"].endswith("/batch-too-large")


def test_unstorable_and_malformed_events_are_rejected_one_by_one(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    body = (
        '{"batch": ['
        '"not an object", '
        '{"type": "track", "messageId": "nul", "anonymousId": "a\\u0000b", "event": "E"}, '
        '{"type": "track", "messageId": "sur", "anonymousId": "a", "event": "E", '
        '"properties": {"x": "\\ud800"}}, '
        '{"type": "track", "messageId": "far", "anonymousId": "a", "event": "E", '
        '"timestamp": "9999-12-31T00:00:00Z", "sentAt": "0001-01-01T00:00:00Z"}, '
        '{"type": "track", "messageId": "chan", "anonymousId": "a", "event": "E", '
        '"context": {"channel": "w\\u0000"}}, '
        '{"type": "track", "messageId": "ok", "anonymousId": "a", "event": "E"}'
        "]}"
    )
    res = client.post(
        f"{API}/events", content=body, headers=bearer(key) | {"Content-Type": "application/json"}
    )
    assert res.status_code == 200, res.text
    assert [r["status"] for r in res.json()["results"]] == ["rejected"] * 5 + ["accepted"]
