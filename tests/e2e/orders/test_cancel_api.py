"""Cancelling an order through HTTP gives its stock back, once; a store sale's stock stays put."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import ColumnElement, Table, func, select

from omnicommerce.inventory import jobs
from omnicommerce.inventory.models import stock_ledger
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from omnicommerce.platform.outbox import outbox
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, STORES, new_cart, seed, stock

SCOPES = (Scope.ORDERS_READ, Scope.ORDERS_WRITE, Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.INVENTORY_READ)


@pytest.fixture
def web(db: Database) -> dict[str, str]:
    # SOCKS: 3 at the DC + 4 at store-001 (both ship), so a big order splits across two rows.
    seed(db, {"SOCKS": {DC: 3, STORES[0]: 4}, "HAT": {DC: 10}}, prices={"SOCKS": 500, "HAT": 1500})
    return bearer(make_key(db, *SCOPES, channel="web"))


def _atp(client: TestClient, headers: dict[str, str], sku: str) -> int:
    res = client.get("/api/v1/availability", params={"sku": sku, "channel": "web"}, headers=headers)
    assert res.status_code == 200, res.text
    return int(res.json()[0]["total"])


def _checkout(client: TestClient, headers: dict[str, str], lines: dict[str, int]) -> dict[str, Any]:
    cart_id = new_cart(client, headers, lines)
    res = client.post(
        f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=headers
    )
    assert res.status_code == 201, res.text
    return dict(res.json())


def _count(db: Database, table: Table, *where: ColumnElement[bool]) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _drift(db: Database) -> list[jobs.Drift]:
    with db.uow(readonly=True) as uow:
        return jobs.reserved_drift(uow)


def test_cancel_gives_the_stock_back_once(client: TestClient, db: Database, web: dict[str, str]) -> None:
    other = new_cart(client, web, {"SOCKS": 1})  # someone else's cart keeps holding one unit
    assert other
    before = {sku: stock(db, sku) for sku in ("SOCKS", "HAT")}
    atp_before = {sku: _atp(client, web, sku) for sku in ("SOCKS", "HAT")}

    order = _checkout(client, web, {"SOCKS": 5, "HAT": 2})
    assert order["status"] == "paid"
    assert sum(r for _, r in stock(db, "SOCKS").values()) == 6  # 5 allocated + the other cart's 1
    assert _atp(client, web, "SOCKS") == atp_before["SOCKS"] - 5

    cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=web)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["payment"]["status"]) == ("cancelled", "refunded")
    assert {sku: stock(db, sku) for sku in ("SOCKS", "HAT")} == before
    assert {sku: _atp(client, web, sku) for sku in ("SOCKS", "HAT")} == atp_before
    assert _drift(db) == []
    given_back = _count(db, stock_ledger, stock_ledger.c.reason == "cancel")
    assert given_back == 3  # SOCKS at two locations, HAT at one
    assert _count(db, outbox, outbox.c.type == "allocation.released") == 1

    again = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=web)
    assert again.status_code == 409 and again.json()["type"].endswith("illegal-transition")
    assert {sku: stock(db, sku) for sku in ("SOCKS", "HAT")} == before
    assert _count(db, stock_ledger, stock_ledger.c.reason == "cancel") == given_back
    assert _count(db, outbox, outbox.c.type == "allocation.released") == 1
    assert _drift(db) == []

    # The units are promisable again: a new shopper can take all of them.
    assert _checkout(client, web, {"SOCKS": 6})["status"] == "paid"
    assert _drift(db) == []


def test_cancelling_one_order_leaves_another_alone(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    first = _checkout(client, web, {"HAT": 3})
    second = _checkout(client, web, {"HAT": 4})
    assert client.post(f"/api/v1/orders/{first['id']}/cancel", headers=web).status_code == 200
    assert stock(db, "HAT")[DC] == (10, 4)
    assert client.post(f"/api/v1/orders/{second['id']}/cancel", headers=web).status_code == 200
    assert stock(db, "HAT")[DC] == (10, 0)
    assert _drift(db) == []


def test_a_store_sale_cannot_be_cancelled_and_its_stock_stays(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    pos = bearer(make_key(db, *SCOPES, channel="pos", location=STORES[0]))
    sale = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "SOCKS", "quantity": 2}], "payment": {"method": "cash"}},
        headers=pos,
    )
    assert sale.status_code == 201, sale.text
    after_sale = stock(db, "SOCKS")
    assert after_sale[STORES[0]] == (2, 0)
    res = client.post(f"/api/v1/orders/{sale.json()['id']}/cancel", headers=pos)
    assert res.status_code == 409 and res.json()["type"].endswith("illegal-transition")
    assert stock(db, "SOCKS") == after_sale
    assert _count(db, stock_ledger, stock_ledger.c.reason == "cancel") == 0
    assert _drift(db) == []
