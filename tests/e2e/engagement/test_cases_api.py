"""Service cases over HTTP: opening (by an agent, a store, the customer), notes, the state
machine with its 409s, reach, idempotency and the customer timeline."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.e2e.engagement.support import API, CASES, key, problem_code, sign_up
from tests.integration.orders.shop import DC, new_cart, seed


def _open(client: TestClient, headers: dict[str, str], **body: object) -> dict:
    res = client.post(f"{API}/cases", json={"subject": "Parcel damaged", **body}, headers=headers)
    assert res.status_code == 201, res.text
    return dict(res.json())


def _act(client: TestClient, headers: dict[str, str], case_id: str, action: str) -> object:
    return client.post(f"{API}/cases/{case_id}/{action}", headers=headers)


def test_an_agent_works_a_case_through_its_lifecycle(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    agent = key(db, *CASES, channel="call_center")

    case = _open(client, agent, customer_id=cid, priority="high", note="Box arrived crushed")
    assert (case["status"], case["channel"], case["priority"]) == ("open", "call_center", "high")
    assert [n["body"] for n in case["notes"]] == ["Box arrived crushed"]

    note = client.post(
        f"{API}/cases/{case['id']}/notes", json={"body": "Asked for photos", "internal": True}, headers=agent
    )
    assert note.status_code == 201 and note.json()["internal"] is True
    steps = [("wait", "pending"), ("resume", "open"), ("resolve", "resolved"), ("reopen", "open"),
             ("resolve", "resolved"), ("close", "closed")]  # fmt: skip
    for action, status in steps:
        res = _act(client, agent, case["id"], action)
        assert res.status_code == 200, res.text
        assert res.json()["status"] == status
    closed = client.get(f"{API}/cases/{case['id']}", headers=agent).json()
    assert closed["resolved_at"] is not None and closed["closed_at"] is not None
    assert closed["version"] == 1 + len(steps) and len(closed["notes"]) == 2


@pytest.mark.parametrize(
    ("path", "action"), [((), "close"), ((), "reopen"), (("wait",), "wait"), ((), "resume")]
)
def test_illegal_transitions_are_409_problems(
    client: TestClient, db: Database, path: tuple[str, ...], action: str
) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    agent = key(db, *CASES, channel="call_center")
    case = _open(client, agent, customer_id=cid)
    for step in path:
        assert _act(client, agent, case["id"], step).status_code == 200

    res = _act(client, agent, case["id"], action)

    assert res.status_code == 409 and problem_code(res) == "illegal-case-transition"
    assert (
        res.json()["action"] == action
        and res.json()["status_now"]
        == client.get(f"{API}/cases/{case['id']}", headers=agent).json()["status"]
    )


def test_a_closed_case_takes_no_notes_and_cannot_reopen(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    agent = key(db, *CASES, channel="call_center")
    case = _open(client, agent, customer_id=cid)
    for action in ("resolve", "close"):
        assert _act(client, agent, case["id"], action).status_code == 200

    note = client.post(f"{API}/cases/{case['id']}/notes", json={"body": "one more thing"}, headers=agent)
    reopen = _act(client, agent, case["id"], "reopen")

    assert note.status_code == 409 and problem_code(note) == "case-closed"
    assert reopen.status_code == 409
    assert _act(client, agent, case["id"], "escalate").status_code == 422  # not an action at all


def test_a_customer_opens_and_reads_its_own_cases_only(client: TestClient, db: Database) -> None:
    ada, ada_token = sign_up(client, "ada@example.com", channel="app")
    bob, bob_token = sign_up(client, "bob@example.com")
    agent = key(db, *CASES)

    mine = _open(client, ada_token, note="My parcel never came")
    assert (mine["customer_id"], mine["channel"]) == (ada, "app")  # the channel they signed in on
    client.post(
        f"{API}/cases/{mine['id']}/notes", json={"body": "fraud check", "internal": True}, headers=agent
    )
    client.post(f"{API}/cases/{mine['id']}/notes", json={"body": "We are on it"}, headers=agent)

    seen = client.get(f"{API}/cases/{mine['id']}", headers=ada_token).json()
    assert [n["body"] for n in seen["notes"]] == ["My parcel never came", "We are on it"]  # no internal note
    assert len(client.get(f"{API}/cases/{mine['id']}", headers=agent).json()["notes"]) == 3
    listed = client.get(f"{API}/customers/{ada}/cases", headers=ada_token).json()["items"]
    assert [c["id"] for c in listed] == [mine["id"]]
    # Someone else's: 404 whatever the route.
    assert client.get(f"{API}/cases/{mine['id']}", headers=bob_token).status_code == 404
    assert client.get(f"{API}/customers/{ada}/cases", headers=bob_token).status_code == 404
    other = client.post(f"{API}/cases", json={"subject": "x", "customer_id": ada}, headers=bob_token)
    assert other.status_code == 404
    # Customers neither add notes nor move cases, nor read the queue.
    assert (
        client.post(f"{API}/cases/{mine['id']}/notes", json={"body": "hi"}, headers=ada_token).status_code
        == 403
    )
    assert _act(client, ada_token, mine["id"], "resolve").status_code == 403
    assert client.get(f"{API}/cases", headers=ada_token).status_code == 403
    assert client.get(f"{API}/customers/{bob}/cases", headers=bob_token).json()["items"] == []


def test_channel_and_store_keys_reach_their_own_cases(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    web = key(db, *CASES, channel="web")
    pos = key(db, *CASES, channel="pos")
    store = key(db, *CASES, channel="pos", location="store-001")
    web_case = _open(client, web, customer_id=cid)
    store_case = _open(client, store, customer_id=cid)
    assert store_case["location_id"] == "store-001" and store_case["channel"] == "pos"

    assert client.get(f"{API}/cases/{web_case['id']}", headers=pos).status_code == 404
    assert _act(client, pos, web_case["id"], "resolve").status_code == 404
    assert (
        client.post(f"{API}/cases/{web_case['id']}/notes", json={"body": "x"}, headers=pos).status_code == 404
    )
    assert [c["id"] for c in client.get(f"{API}/customers/{cid}/cases", headers=pos).json()["items"]] == [
        store_case["id"]
    ]
    other_store = key(db, *CASES, channel="pos", location="store-002")
    assert client.get(f"{API}/cases/{store_case['id']}", headers=other_store).status_code == 404
    mismatch = client.post(
        f"{API}/cases", json={"subject": "x", "customer_id": cid, "channel": "web"}, headers=pos
    )
    assert mismatch.status_code == 403 and problem_code(mismatch) == "channel-mismatch"
    assert len(client.get(f"{API}/cases", headers=key(db, *CASES)).json()["items"]) == 2


def test_opening_checks_customer_channel_and_order(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 5}})
    ada, ada_token = sign_up(client, "ada@example.com")
    bob, _ = sign_up(client, "bob@example.com")
    cart = new_cart(client, ada_token, {"SKU-A": 1})
    order = client.post(f"{API}/carts/{cart}/checkout", json={"payment_token": "tok_visa"}, headers=ada_token)
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    agent = key(db, *CASES)

    about_order = _open(client, agent, customer_id=ada, channel="call_center", order_id=order_id)
    assert about_order["order_id"] == order_id
    assert _open(client, ada_token, order_id=order_id)["order_id"] == order_id

    wrong = client.post(
        f"{API}/cases",
        json={"subject": "x", "customer_id": bob, "channel": "web", "order_id": order_id},
        headers=agent,
    )
    assert wrong.status_code == 422 and problem_code(wrong) == "order-of-another-customer"
    unknown = client.post(
        f"{API}/cases",
        json={"subject": "x", "customer_id": ada, "channel": "web", "order_id": "ord_nope"},
        headers=agent,
    )
    assert unknown.status_code == 404
    nobody = client.post(
        f"{API}/cases", json={"subject": "x", "customer_id": "cus_nobody", "channel": "web"}, headers=agent
    )
    assert nobody.status_code == 404 and problem_code(nobody) == "customer-not-found"
    no_channel = client.post(f"{API}/cases", json={"subject": "x", "customer_id": ada}, headers=agent)
    assert no_channel.status_code == 422 and problem_code(no_channel) == "channel-required"
    no_customer = client.post(f"{API}/cases", json={"subject": "x", "channel": "web"}, headers=agent)
    assert no_customer.status_code == 422 and problem_code(no_customer) == "customer-required"
    read_only = client.post(
        f"{API}/cases",
        json={"subject": "x", "customer_id": ada, "channel": "web"},
        headers=key(db, Scope.CASES_READ),
    )
    assert read_only.status_code == 403


def test_opening_and_notes_honour_idempotency_key(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    agent = {**key(db, *CASES, channel="call_center"), "Idempotency-Key": "call-77"}

    first = client.post(f"{API}/cases", json={"subject": "Refund", "customer_id": cid}, headers=agent)
    again = client.post(f"{API}/cases", json={"subject": "Refund", "customer_id": cid}, headers=agent)
    other = client.post(f"{API}/cases", json={"subject": "Other", "customer_id": cid}, headers=agent)

    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert other.status_code == 422
    note_headers = {**agent, "Idempotency-Key": "note-1"}
    notes = [
        client.post(
            f"{API}/cases/{first.json()['id']}/notes", json={"body": "called back"}, headers=note_headers
        )
        for _ in range(2)
    ]
    assert notes[0].json() == notes[1].json()
    assert len(client.get(f"{API}/cases/{first.json()['id']}", headers=agent).json()["notes"]) == 1


def test_cases_appear_on_the_customer_timeline(client: TestClient, app: FastAPI, db: Database) -> None:
    cid, token = sign_up(client, "ada@example.com")
    agent = key(db, *CASES, channel="call_center")
    case = _open(client, agent, customer_id=cid, subject="Private matter")
    client.post(f"{API}/cases/{case['id']}/notes", json={"body": "Private note"}, headers=agent)
    for action in ("resolve", "reopen", "resolve", "close"):
        assert _act(client, agent, case["id"], action).status_code == 200

    app.state.relay.drain()
    timeline = client.get(f"{API}/customers/{cid}/profile", headers=token).json()["timeline"]

    names = [e["name"] for e in reversed(timeline) if e["source"] == "engagement"]
    assert names == [
        "Case Opened",
        "Case Note Added",
        "Case Resolved",
        "Case Reopened",
        "Case Resolved",
        "Case Closed",
    ]
    assert all(
        e["properties"]["case_id"] == case["id"] and e["channel"] == "call_center"
        for e in timeline
        if e["source"] == "engagement"
    )
    assert "Private" not in str(timeline)
