"""Messages over HTTP: sending through the provider, the consent and suppression rules, inbound
messages and delivery reports, pagination, idempotency, reach, and the customer timeline."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.engagement import providers
from omnicommerce.engagement.api import message_provider
from omnicommerce.engagement.providers import LogProvider
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from omnicommerce.platform.outbox import outbox
from tests.e2e.engagement.support import (
    API,
    MESSAGING,
    RefusingProvider,
    grant,
    key,
    problem_code,
    send,
    sign_up,
)


def _outbox_types(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(outbox.c.type).order_by(outbox.c.id)).scalars())


def test_a_transactional_email_goes_through_the_provider_and_is_logged(
    client: TestClient, app: FastAPI, db: Database
) -> None:
    log = LogProvider()
    app.dependency_overrides[message_provider] = lambda: log
    cid, _ = sign_up(client, "ada@example.com")
    staff = key(db, *MESSAGING)

    res = send(client, staff, cid, subject="Ready for pickup", body="Your order is ready at Main St.")

    assert res.status_code == 201, res.text
    sent = res.json()
    assert sent["status"] == "sent" and sent["direction"] == "outbound" and sent["purpose"] == "transactional"
    assert sent["address"] == "ada@example.com" and sent["provider"] == "log"
    assert sent["provider_message_id"] == f"log_{sent['id']}"
    [handed] = log.sent
    assert (handed.message_id, handed.address, handed.subject) == (
        sent["id"],
        "ada@example.com",
        "Ready for pickup",
    )
    assert client.get(f"{API}/messages/{sent['id']}", headers=staff).json() == sent
    assert "message.sent" in _outbox_types(db)


def test_the_default_provider_is_the_log_provider(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    res = send(client, key(db, *MESSAGING), cid, channel="in_app", body="Hello")
    assert res.status_code == 201, res.text
    assert res.json()["provider"] == "log" and res.json()["address"] == cid  # in-app: the customer id
    assert isinstance(providers.current(), LogProvider)


def test_marketing_needs_consent_for_that_channel(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com", phone="+1 415 555 0123")
    staff = key(db, *MESSAGING)

    refused = send(client, staff, cid, purpose="marketing", body="20% off this weekend")
    assert refused.status_code == 409
    assert problem_code(refused) == "consent-missing"
    assert refused.json()["consent_channel"] == "email" and "consent" in refused.json()["detail"]

    grant(client, db, cid, "sms")  # an SMS opt-in does not cover email, nor WhatsApp
    assert send(client, staff, cid, purpose="marketing").status_code == 409
    assert send(client, staff, cid, purpose="marketing", channel="sms").status_code == 201
    assert send(client, staff, cid, purpose="marketing", channel="whatsapp").status_code == 409

    grant(client, db, cid, "any")
    assert send(client, staff, cid, purpose="marketing").status_code == 201
    assert send(client, staff, cid, purpose="marketing", channel="whatsapp").status_code == 201

    grant(client, db, cid, "email", granted=False)  # the latest decision for email wins
    assert send(client, staff, cid, purpose="marketing").status_code == 409
    # Transactional messages do not need marketing consent.
    assert send(client, staff, cid, purpose="transactional").status_code == 201
    logged = client.get(f"{API}/customers/{cid}/messages", headers=staff).json()["items"]
    assert len(logged) == 4  # refused messages are not logged


def test_a_message_needs_a_reachable_address(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")  # no phone
    staff = key(db, *MESSAGING)

    res = send(client, staff, cid, channel="sms", body="Your code is 123456")

    assert res.status_code == 422 and problem_code(res) == "recipient-unreachable"
    assert (
        send(client, staff, cid, channel="sms", address="(415) 555-0123").json()["address"] == "+14155550123"
    )
    bad = send(client, staff, cid, channel="email", address="not-an-email")
    assert bad.status_code == 422
    unknown = send(client, staff, "cus_nobody")
    assert unknown.status_code == 404 and problem_code(unknown) == "customer-not-found"


def test_an_erased_persons_address_is_never_written_to_again(client: TestClient, db: Database) -> None:
    gone, _ = sign_up(client, "gone@example.com", phone="+1 415 555 0199")
    res = client.post(
        f"{API}/privacy/erasure", json={"customer_id": gone}, headers=key(db, Scope.PRIVACY_WRITE)
    )
    assert res.status_code == 201, res.text
    other, _ = sign_up(client, "other@example.com")
    staff = key(db, *MESSAGING)

    by_email = send(client, staff, other, address="Gone@Example.com")
    by_phone = send(client, staff, other, channel="sms", address="415-555-0199")

    assert by_email.status_code == by_phone.status_code == 409
    assert problem_code(by_email) == problem_code(by_phone) == "recipient-suppressed"
    assert send(client, staff, gone).status_code == 422  # the erased profile has no email left


def test_a_provider_refusal_is_logged_as_failed(client: TestClient, app: FastAPI, db: Database) -> None:
    app.dependency_overrides[message_provider] = RefusingProvider
    cid, _ = sign_up(client, "ada@example.com")

    res = send(client, key(db, *MESSAGING), cid)

    assert res.status_code == 201, res.text
    assert res.json()["status"] == "failed" and res.json()["error"] == "account suspended"
    assert res.json()["provider_message_id"] is None
    assert "message.failed" in _outbox_types(db)


def test_delivery_reports_follow_the_message_lifecycle(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    staff = key(db, *MESSAGING)
    first, second = (send(client, staff, cid).json()["id"] for _ in range(2))

    delivered = client.post(f"{API}/messages/{first}/receipts", json={"outcome": "delivered"}, headers=staff)
    assert delivered.status_code == 200 and delivered.json()["status"] == "delivered"
    again = client.post(f"{API}/messages/{first}/receipts", json={"outcome": "failed"}, headers=staff)
    assert again.status_code == 409 and problem_code(again) == "illegal-message-transition"
    bounced = client.post(
        f"{API}/messages/{second}/receipts",
        json={"outcome": "failed", "error": "mailbox full"},
        headers=staff,
    )
    assert bounced.json()["status"] == "failed" and bounced.json()["error"] == "mailbox full"
    missing = client.post(f"{API}/messages/msg_nope/receipts", json={"outcome": "delivered"}, headers=staff)
    assert missing.status_code == 404 and problem_code(missing) == "message-not-found"
    assert _outbox_types(db).count("message.delivered") == 1 and "message.failed" in _outbox_types(db)


def test_inbound_messages_are_logged_once_per_provider_id(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    staff = key(db, *MESSAGING)
    body = {
        "channel": "whatsapp",
        "body": "Where is my parcel?",
        "address": "+14155550123",
        "provider_message_id": "wamid.42",
    }

    first = client.post(f"{API}/customers/{cid}/messages/inbound", json=body, headers=staff)
    retried = client.post(f"{API}/customers/{cid}/messages/inbound", json=body, headers=staff)

    assert first.status_code == 201 and retried.status_code == 200, retried.text
    assert first.json() == retried.json()
    assert first.json()["status"] == "received" and first.json()["direction"] == "inbound"
    assert first.json()["purpose"] is None
    assert _outbox_types(db).count("message.received") == 1
    receipt = client.post(
        f"{API}/messages/{first.json()['id']}/receipts", json={"outcome": "delivered"}, headers=staff
    )
    assert receipt.status_code == 409  # inbound messages have no delivery


def test_sending_honours_idempotency_key(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com")
    staff = {**key(db, *MESSAGING), "Idempotency-Key": "receipt-1"}

    first = send(client, staff, cid, body="Receipt #1")
    again = send(client, staff, cid, body="Receipt #1")
    other = send(client, staff, cid, body="Receipt #2")

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert len(client.get(f"{API}/customers/{cid}/messages", headers=staff).json()["items"]) == 1


def test_messages_page_newest_first_and_filter(client: TestClient, db: Database) -> None:
    cid, _ = sign_up(client, "ada@example.com", phone="+1 415 555 0123")
    staff = key(db, *MESSAGING)
    ids = [
        send(client, staff, cid, channel=ch).json()["id"] for ch in ("email", "sms", "email", "push", "email")
    ]

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/customers/{cid}/messages", params=params, headers=staff).json()
        pages.append([m["id"] for m in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert [i for p in pages for i in p] == list(reversed(ids)) and len(pages) == 3
    emails = client.get(f"{API}/customers/{cid}/messages", params={"channel": "email"}, headers=staff).json()
    assert [m["id"] for m in emails["items"]] == [ids[4], ids[2], ids[0]]
    inbound = client.get(f"{API}/customers/{cid}/messages", params={"direction": "inbound"}, headers=staff)
    assert inbound.json()["items"] == []
    bad = client.get(f"{API}/customers/{cid}/messages", params={"cursor": "%%%"}, headers=staff)
    assert bad.status_code == 422


def test_reach_customers_read_their_own_and_keys_their_channels(client: TestClient, db: Database) -> None:
    ada, ada_token = sign_up(client, "ada@example.com")
    bob, bob_token = sign_up(client, "bob@example.com")
    web = key(db, *MESSAGING, channel="web")
    pos = key(db, *MESSAGING, channel="pos")
    message = send(client, web, ada).json()
    assert message["origin_channel"] == "web"

    own = client.get(f"{API}/customers/{ada}/messages", headers=ada_token)
    assert [m["id"] for m in own.json()["items"]] == [message["id"]]
    assert client.get(f"{API}/messages/{message['id']}", headers=ada_token).status_code == 200
    # Another customer's messages: 404, whether listed or read one by one.
    assert client.get(f"{API}/customers/{ada}/messages", headers=bob_token).status_code == 404
    assert client.get(f"{API}/messages/{message['id']}", headers=bob_token).status_code == 404
    # A customer token cannot send, nor log inbound messages.
    assert send(client, ada_token, ada).status_code == 403
    inbound = client.post(
        f"{API}/customers/{ada}/messages/inbound", json={"channel": "sms", "body": "hi"}, headers=ada_token
    )
    assert inbound.status_code == 403
    # Another channel's key does not see web's messages.
    assert client.get(f"{API}/messages/{message['id']}", headers=pos).status_code == 404
    assert client.get(f"{API}/customers/{ada}/messages", headers=pos).json()["items"] == []
    receipt = client.post(
        f"{API}/messages/{message['id']}/receipts", json={"outcome": "delivered"}, headers=pos
    )
    assert receipt.status_code == 404
    # Scopes: reading needs engagement:read, sending engagement:write.
    assert (
        client.get(f"{API}/customers/{bob}/messages", headers=key(db, Scope.CUSTOMERS_READ)).status_code
        == 403
    )
    assert send(client, key(db, Scope.ENGAGEMENT_READ), bob).status_code == 403
    assert client.get(f"{API}/customers/{bob}/messages").status_code == 401


def test_messages_appear_on_the_customer_timeline(client: TestClient, app: FastAPI, db: Database) -> None:
    cid, token = sign_up(client, "ada@example.com")
    staff = key(db, *MESSAGING)
    sent = send(client, staff, cid, body="Secret text not for the timeline").json()
    client.post(f"{API}/messages/{sent['id']}/receipts", json={"outcome": "delivered"}, headers=staff)
    client.post(
        f"{API}/customers/{cid}/messages/inbound", json={"channel": "email", "body": "Thanks!"}, headers=staff
    )

    app.state.relay.drain()
    timeline = client.get(f"{API}/customers/{cid}/profile", headers=token).json()["timeline"]

    names = [e["name"] for e in timeline if e["source"] == "engagement"]
    assert sorted(names) == ["Message Delivered", "Message Received", "Message Sent"]
    entry = next(e for e in timeline if e["name"] == "Message Sent")
    assert entry["properties"]["message_id"] == sent["id"] and entry["channel"] == "email"
    assert "Secret text" not in str(timeline)  # the text stays in the message log


def test_messages_sent_to_a_customer_are_not_their_activity(
    client: TestClient, app: FastAPI, db: Database
) -> None:
    cid, token = sign_up(client, "ada@example.com")
    staff = key(db, *MESSAGING)
    app.state.relay.drain()

    def traits() -> dict[str, object]:
        app.state.relay.drain()
        res = client.get(f"{API}/customers/{cid}/profile", headers=token).json()
        return {k: res["traits"].get(k) for k in ("last_seen", "channels")}

    signed_up = traits()
    later = clock.now() + timedelta(days=3)
    clock.set_clock(lambda: later)
    sent = send(client, staff, cid).json()
    client.post(f"{API}/messages/{sent['id']}/receipts", json={"outcome": "delivered"}, headers=staff)
    # On the timeline (previous test), but a newsletter does not make someone "seen".
    assert traits() == signed_up

    client.post(
        f"{API}/customers/{cid}/messages/inbound", json={"channel": "email", "body": "Thanks!"}, headers=staff
    )
    answered = traits()
    assert answered["last_seen"] != signed_up["last_seen"]  # the customer wrote back: seen now
