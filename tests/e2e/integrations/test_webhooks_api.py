"""The webhooks admin API over HTTP, and a real checkout reaching a partner as a signed webhook."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from omnicommerce.api.app import create_app
from omnicommerce.integrations.jobs import WebhookDispatcher
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.integrations.receiver import webhook_receiver
from tests.integration.orders.shop import new_cart, seed

BASE = "/api/v1/webhooks"


@pytest.fixture
def hooks_app(db: Database, settings: Settings) -> FastAPI:
    dev = settings.model_copy(
        update={"webhook_allow_private_networks": True, "webhook_backoff_base_seconds": 0.001}
    )
    return create_app(dev, db=db, run_relay=False)


@pytest.fixture
def api(hooks_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(hooks_app, raise_server_exceptions=False) as c:
        yield c


def deliver(app: FastAPI) -> None:
    """What the relay and dispatcher threads do in `omni serve`, done now."""
    app.state.relay.drain()
    dispatcher: WebhookDispatcher = app.state.webhooks
    for _ in range(100):
        if dispatcher.drain() == 0:
            return
        time.sleep(0.01)


def test_create_shows_the_secret_once(api: TestClient, admin_headers: dict[str, str]) -> None:
    res = api.post(
        f"{BASE}/endpoints",
        headers=admin_headers,
        json={"url": "https://partner.example.com/h", "event_types": ["order.placed"], "description": "ERP"},
    )
    assert res.status_code == 201, res.text
    created = res.json()
    assert created["secret"].startswith("whsec_") and created["active"] is True
    listed = api.get(f"{BASE}/endpoints", headers=admin_headers).json()["items"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    one = api.get(f"{BASE}/endpoints/{created['id']}", headers=admin_headers).json()
    assert "secret" not in one and one["event_types"] == ["order.placed"]


def test_creation_honours_idempotency_key(api: TestClient, admin_headers: dict[str, str]) -> None:
    headers = {**admin_headers, "Idempotency-Key": "hook-1"}
    body = {"url": "https://partner.example.com/h", "event_types": ["*"]}
    first = api.post(f"{BASE}/endpoints", headers=headers, json=body)
    again = api.post(f"{BASE}/endpoints", headers=headers, json=body)
    other = api.post(f"{BASE}/endpoints", headers=headers, json={**body, "event_types": ["order.paid"]})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert len(api.get(f"{BASE}/endpoints", headers=admin_headers).json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://partner.example.com/h", "event_types": ["*"]}, "invalid-webhook-url"),
        ({"url": "https://u:p@partner.example.com/h", "event_types": ["*"]}, "invalid-webhook-url"),
        ({"url": "https://partner.example.com/h", "event_types": ["order.teleported"]}, "unknown-event-type"),
        ({"url": "https://partner.example.com/h", "event_types": []}, "validation-error"),
        ({"url": "https://partner.example.com/h", "event_types": ["a b"]}, "validation-error"),
    ],
)
def test_bad_endpoints_are_clean_422s(
    api: TestClient, admin_headers: dict[str, str], body: dict[str, object], code: str
) -> None:
    res = api.post(f"{BASE}/endpoints", headers=admin_headers, json=body)
    assert res.status_code == 422, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    assert res.json()["type"].endswith(code)


def test_private_urls_refused_by_default(client: TestClient, admin_headers: dict[str, str]) -> None:
    res = client.post(
        f"{BASE}/endpoints",
        headers=admin_headers,
        json={"url": "http://169.254.169.254/latest/meta-data", "event_types": ["*"]},
    )
    assert res.status_code == 422 and "private network" in res.json()["detail"]


def test_only_admins_manage_webhooks(api: TestClient, db: Database) -> None:
    orders_key = bearer(make_key(db, Scope.ORDERS_READ, Scope.ORDERS_WRITE))
    assert api.get(f"{BASE}/endpoints").status_code == 401
    assert api.get(f"{BASE}/endpoints", headers=orders_key).status_code == 403
    res = api.post(
        f"{BASE}/endpoints", headers=orders_key, json={"url": "https://x.example.com", "event_types": ["*"]}
    )
    assert res.status_code == 403


def test_unknown_ids_are_404(api: TestClient, admin_headers: dict[str, str]) -> None:
    assert api.get(f"{BASE}/endpoints/whe_nope", headers=admin_headers).status_code == 404
    assert api.get(f"{BASE}/endpoints/whe_nope/deliveries", headers=admin_headers).status_code == 404
    assert api.delete(f"{BASE}/endpoints/whe_nope", headers=admin_headers).status_code == 404
    res = api.post(f"{BASE}/deliveries/whd_nope/replay", headers=admin_headers)
    assert res.status_code == 404 and res.json()["type"].endswith("webhook-delivery-not-found")


def test_a_checkout_reaches_the_partner_signed_and_can_be_replayed(
    api: TestClient, hooks_app: FastAPI, db: Database, admin_headers: dict[str, str]
) -> None:
    seed(db, {"TEE-M": {"dc-east": 5}}, prices={"TEE-M": 2500})
    web = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.ORDERS_READ, channel="web"))
    with webhook_receiver(script=[500]) as rx:
        created = api.post(
            f"{BASE}/endpoints", headers=admin_headers, json={"url": rx.url, "event_types": ["order.placed"]}
        ).json()
        cart_id = new_cart(api, web, {"TEE-M": 2}, email="ada@example.com")
        order = api.post(f"/api/v1/carts/{cart_id}/checkout", headers=web, json={"payment_token": "tok_visa"})
        assert order.status_code == 201, order.text
        deliver(hooks_app)
        log = api.get(f"{BASE}/endpoints/{created['id']}/deliveries", headers=admin_headers).json()["items"]
        [delivery] = log
        assert delivery["status"] == "succeeded" and delivery["attempts"] == 2  # a 500, then a retry
        assert delivery["event_type"] == "order.placed"
        replay = api.post(f"{BASE}/deliveries/{delivery['id']}/replay", headers=admin_headers)
        assert replay.status_code == 202, replay.text
        assert replay.json()["replay_of"] == delivery["id"] and replay.json()["status"] == "pending"
        pending_again = api.post(f"{BASE}/deliveries/{replay.json()['id']}/replay", headers=admin_headers)
        assert pending_again.status_code == 409
        deliver(hooks_app)
    assert len(rx.requests) == 3
    docs = [Webhook(created["secret"]).verify(r.body, r.headers) for r in rx.requests]
    assert {d["data"]["order_id"] for d in docs} == {order.json()["id"]}
    assert {r.headers["webhook-id"] for r in rx.requests} == {delivery["event_id"]}
    succeeded = api.get(
        f"{BASE}/endpoints/{created['id']}/deliveries", headers=admin_headers, params={"status": "succeeded"}
    ).json()["items"]
    assert len(succeeded) == 2


def test_disable_endpoint(api: TestClient, admin_headers: dict[str, str]) -> None:
    created = api.post(
        f"{BASE}/endpoints",
        headers=admin_headers,
        json={"url": "https://p.example.com/h", "event_types": ["*"]},
    ).json()
    res = api.delete(f"{BASE}/endpoints/{created['id']}", headers=admin_headers)
    assert res.status_code == 200 and res.json()["active"] is False
    assert api.delete(f"{BASE}/endpoints/{created['id']}", headers=admin_headers).json()["active"] is False
