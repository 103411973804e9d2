"""Merges and unmerge through HTTP, with orders joining the timeline through the outbox, and
the identity rules admin API."""

from fastapi.testclient import TestClient

from omnicommerce.orders.events import OrderCancelled, OrderPlaced
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

API = "/api/v1"


def _send(client: TestClient, key: str, *events: dict) -> list[dict]:
    res = client.post(f"{API}/events", json={"batch": list(events)}, headers=bearer(key))
    assert res.status_code == 200, res.text
    return res.json()["results"]


def _place_order(client: TestClient, db: Database, customer_id: str, order_id: str, total: int) -> None:
    with db.uow() as uow:
        uow.emit(
            OrderPlaced(
                order_id=order_id,
                number=order_id[-4:],
                channel="pos",
                customer_id=customer_id,
                currency="USD",
                subtotal=total,
                discount_total=0,
                total=total,
                skus=["SKU-1"],
            )
        )
        uow.commit()
    client.app.state.relay.drain()  # type: ignore[attr-defined]


def _profile(client: TestClient, headers: dict[str, str], customer_id: str) -> dict:
    res = client.get(f"{API}/customers/{customer_id}/profile", headers=headers)
    assert res.status_code == 200, res.text
    return res.json()


def test_merge_then_unmerge_reattributes_events_orders_and_identities(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    [b_result] = _send(
        client,
        key,
        {"type": "identify", "messageId": "b1", "anonymousId": "anon-b", "traits": {"phone": "+14155550123"}},
    )
    b = b_result["customer_id"]
    _place_order(client, db, b, "ord_0001", 5000)  # a store sale to B's account
    [a_result] = _send(
        client,
        key,
        {"type": "identify", "messageId": "a1", "userId": "u-ada", "traits": {"email": "ada@example.com"}},
    )
    a = a_result["customer_id"]
    # The same person signs in on the browser B used: the email of A next to the anonymous id of B.
    _send(client, key, {"type": "identify", "messageId": "a2", "anonymousId": "anon-b", "userId": "u-ada"})
    _place_order(client, db, b, "ord_0002", 2500)  # B's account buys again, after the merge
    merged = _profile(client, admin_headers, a)
    assert merged["merged_from"] == [b]
    assert merged["traits"]["order_count"] == 2 and merged["traits"]["lifetime_value"] == 7500
    assert merged["traits"]["average_order_value"] == 3750
    assert {i["type"] for i in merged["identities"]} == {"user_id", "email", "phone", "anonymous_id"}
    assert (
        _profile(client, admin_headers, b)["customer"]["id"] == a
    )  # a merged profile answers as the survivor
    journal = client.get(f"{API}/customers/{a}/merges", headers=admin_headers).json()
    assert [(m["survivor_id"], m["merged_id"]) for m in journal] == [(a, b)]
    assert journal[0]["evidence"]["merged_matched_by"] == ["anonymous_id"]

    reader = bearer(make_key(db, Scope.CUSTOMERS_READ))
    assert client.post(f"{API}/customers/{b}/unmerge", headers=reader).status_code == 403
    res = client.post(f"{API}/customers/{b}/unmerge", headers=admin_headers)
    assert res.status_code == 200, res.text
    assert res.json()["survivor_id"] == a and res.json()["identities_moved"] == 2
    again = client.post(f"{API}/customers/{b}/unmerge", headers=admin_headers)
    assert again.status_code == 404 and again.json()["type"].endswith("/merge-not-found")

    split_a, split_b = _profile(client, admin_headers, a), _profile(client, admin_headers, b)
    assert split_a["traits"]["order_count"] == 0 and split_a["merged_from"] == []
    assert {i["type"] for i in split_a["identities"]} == {"user_id", "email"}
    assert split_b["customer"]["id"] == b
    placed = [e["properties"]["order_id"] for e in split_b["timeline"] if e["name"] == "Order Placed"]
    assert sorted(placed) == ["ord_0001", "ord_0002"] and split_b["traits"]["order_count"] == 2
    assert split_b["traits"]["lifetime_value"] == 7500
    assert {i["type"] for i in split_b["identities"]} == {"phone", "anonymous_id"}
    assert {e["message_id"] for e in split_b["timeline"]} >= {"b1"}
    assert "a2" in {e["message_id"] for e in split_a["timeline"]}


def test_order_events_are_recorded_once_per_event(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    [r] = _send(
        client,
        key,
        {"type": "identify", "messageId": "o1", "userId": "u-o", "traits": {"email": "o@example.com"}},
    )
    _place_order(client, db, r["customer_id"], "ord_0003", 1000)
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    timeline = _profile(client, admin_headers, r["customer_id"])["timeline"]
    assert [e["name"] for e in timeline].count("Order Placed") == 1
    placed = next(e for e in timeline if e["name"] == "Order Placed")
    assert (
        placed["channel"] == "pos" and placed["source"] == "orders" and placed["properties"]["total"] == 1000
    )
    traits = _profile(client, admin_headers, r["customer_id"])["traits"]
    assert (traits["order_count"], traits["lifetime_value"], traits["currency"]) == (1, 1000, "USD")
    assert traits["last_purchase_at"] is not None and "pos" in traits["channels"]
    with db.uow() as uow:
        facts = {"order_id": "ord_0003", "number": "0003", "channel": "pos", "customer_id": r["customer_id"]}
        money = {"currency": "USD", "subtotal": 1000, "discount_total": 0, "total": 1000}
        uow.emit(OrderCancelled(**facts, **money, payment_status="voided"))
        uow.commit()
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    traits = _profile(client, admin_headers, r["customer_id"])["traits"]
    assert (traits["order_count"], traits["lifetime_value"]) == (0, 0)


def test_profile_is_reachable_only_as_allowed(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    [r] = _send(
        client,
        key,
        {"type": "identify", "messageId": "p1", "userId": "u-p", "traits": {"email": "p@example.com"}},
    )
    url = f"{API}/customers/{r['customer_id']}/profile"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=bearer(key)).status_code == 403
    assert (
        client.get(
            f"{API}/customers/cus_missing/profile", headers=bearer(make_key(db, Scope.CUSTOMERS_READ))
        ).status_code
        == 404
    )
    bad_cursor = client.get(
        url, headers=bearer(make_key(db, Scope.CUSTOMERS_READ)), params={"cursor": "bm90LWEtY3Vyc29y"}
    )
    assert bad_cursor.status_code == 422
    reader = bearer(make_key(db, Scope.CUSTOMERS_READ))
    for path in ("/customers/a%00b/profile", "/customers/a%00b/merges", "/customers/a%00b/consents"):
        assert client.get(API + path, headers=reader).status_code == 422


def test_identity_rules_are_data_an_admin_edits(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    reader = bearer(make_key(db, Scope.CUSTOMERS_READ))
    defaults = client.get(f"{API}/identity/rules", headers=reader).json()
    assert defaults["version"] == 0 and defaults["limits"]["device_id"] == 5
    assert (
        defaults["priority"][:2] == ["user_id", "email"] and "test@test.com" in defaults["blocked"]["email"]
    )
    assert (
        client.put(f"{API}/identity/rules", json={"limits": {"device_id": 3}}, headers=reader).status_code
        == 403
    )
    bad = client.put(f"{API}/identity/rules", json={"limits": {"device_id": 0}}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-identity-rules")
    bad = client.put(f"{API}/identity/rules", json={"priority": ["email"]}, headers=admin_headers)
    assert bad.status_code == 422
    res = client.put(
        f"{API}/identity/rules",
        json={
            "limits": {"device_id": 3},
            "sources": {"key_kiosk": "untrusted"},
            "blocked": {"email": ["x@y.zz"]},
        },
        headers=admin_headers,
    )
    assert res.status_code == 200, res.text
    assert res.json()["version"] == 1
    saved = client.get(f"{API}/identity/rules", headers=reader).json()
    assert saved["limits"]["device_id"] == 3 and saved["limits"]["email"] == 1
    assert saved["sources"] == {"key_kiosk": "untrusted"} and saved["blocked"] == {"email": ["x@y.zz"]}
    assert client.put(f"{API}/identity/rules", json={}, headers=admin_headers).json()["version"] == 2
