"""Refunding and cancelling through HTTP give back only what the payment still holds, show what
went back (``refunded_total``), and answer a gateway refusal as a provider error (502)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import RefundReason
from omnicommerce.orders.payments import TestPaymentProvider
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.db import Database, transaction
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, new_cart, seed

SCOPES = (Scope.ORDERS_READ, Scope.ORDERS_WRITE, Scope.CARTS_READ, Scope.CARTS_WRITE)


@pytest.fixture
def web(db: Database) -> dict[str, str]:
    seed(db, {"HAT": {DC: 10}}, prices={"HAT": 1500})
    return bearer(make_key(db, *SCOPES, channel="web"))


def _paid(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    cart_id = new_cart(client, headers, {"HAT": 2})
    res = client.post(
        f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=headers
    )
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    assert body["refunded_total"] == 0
    return body


def _returned(db: Database, order: dict[str, Any], amount: int) -> None:
    """A return's refund, recorded and paid as the fulfillment context does."""
    with transaction(db) as uow:
        entry = orders.record_refund(
            uow, SYSTEM, order["id"], amount=amount, reason=RefundReason.RETURN, key="return:ret_x"
        )
    assert (
        TestPaymentProvider(db).refund(order["payment"]["reference"], entry.amount, entry.key).status
        == "refunded"
    )


def test_refund_and_cancel_show_what_went_back(client: TestClient, db: Database, web: dict[str, str]) -> None:
    refunded, cancelled = _paid(client, web), _paid(client, web)
    _returned(db, refunded, 1500)

    got = client.get(f"/api/v1/orders/{refunded['id']}", headers=web)
    assert got.status_code == 200 and got.json()["refunded_total"] == 1500

    res = client.post(f"/api/v1/orders/{refunded['id']}/refund", headers=web)
    gone = client.post(f"/api/v1/orders/{cancelled['id']}/cancel", headers=web)

    assert res.status_code == 200, res.text
    assert (res.json()["status"], res.json()["refunded_total"]) == ("refunded", 3000)
    assert gone.status_code == 200, gone.text
    assert (gone.json()["status"], gone.json()["refunded_total"]) == ("cancelled", 3000)
    assert client.post(f"/api/v1/orders/{refunded['id']}/refund", headers=web).status_code == 409


def test_a_refund_the_gateway_refuses_is_a_provider_error(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    order = _paid(client, web)
    # Money given back behind the ledger's back (e.g. in the gateway's dashboard): the gateway
    # refuses the balance rather than pay more than it captured.
    TestPaymentProvider(db).refund(order["payment"]["reference"], 1000, "dashboard")

    res = client.post(f"/api/v1/orders/{order['id']}/refund", headers=web)

    assert res.status_code == 502, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    assert res.json()["type"].endswith("/payment-provider-error")
    assert client.get(f"/api/v1/orders/{order['id']}", headers=web).json()["status"] == "paid"
