"""Returns anywhere and exchanges: an online order returned at another store or by mail, the
refund to the original payment, sellable units back on hand where received, damaged ones to the
damaged bucket; exchanges reserve the replacement first."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.inventory import service as inventory
from omnicommerce.orders.models import payment_test_charges
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.fulfillment.support import (
    DC,
    NEAR,
    OTHER,
    allocations,
    drift,
    levels,
    order,
    place,
    seed,
    shopper,
)

FULFIL = (Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE)


def _delivered(client: TestClient, db: Database, lines: dict[str, int]) -> str:
    """A web order shipped from the near store and delivered."""
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    order_id = place(client, shopper(db), lines)
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    [fo] = client.get(f"/api/v1/orders/{order_id}/fulfillment-orders", headers=ops).json()
    assert fo["location_id"] == NEAR
    for step in ("accept", "pick", "pack"):
        assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/{step}", headers=ops).status_code == 200
    res = client.post(
        f"/api/v1/fulfillment-orders/{fo['id']}/ship", json={"tracking_number": "T1"}, headers=ops
    )
    assert res.status_code == 200
    assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/deliver", headers=ops).status_code == 200
    return order_id


def _ledger(db: Database, reason: str) -> list[tuple[str, str, int]]:
    with db.uow(readonly=True) as uow:
        rows = inventory.list_ledger(uow, SYSTEM, sku=None, location_id=None, after=None, limit=1000)
    return [(r.sku, r.location_id, r.delta_on_hand) for r in rows if r.reason == reason]


def _return(client: TestClient, order_id: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/orders/{order_id}/returns", json=body, headers=headers)


def test_return_at_another_store_and_by_mail(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5, OTHER: 5}})
    order_id = _delivered(client, db, {"SKU-A": 2})
    other_store = {**bearer(make_key(db, *FULFIL, channel="pos", location=OTHER)), "Idempotency-Key": "r-1"}
    body = {"location_id": OTHER, "lines": [{"sku": "SKU-A", "quantity": 1}]}

    first = _return(client, order_id, other_store, body)
    again = _return(client, order_id, other_store, body)

    assert first.status_code == 201, first.text
    ret = first.json()
    assert (ret["status"], ret["refund_amount"], ret["currency"]) == ("refunded", 1999, "USD")
    assert ret["refund_reference"] is not None
    assert again.status_code == 201 and again.json()["id"] == ret["id"]  # replayed, not received twice
    assert levels(db, "SKU-A") == {DC: (10, 0), NEAR: (3, 0), OTHER: (6, 0)}
    assert _ledger(db, "return") == [("SKU-A", OTHER, 1)]

    ops = bearer(make_key(db, *FULFIL))
    mailed = {
        "location_id": DC,
        "method": "mail",
        "lines": [{"sku": "SKU-A", "quantity": 1, "condition": "damaged"}],
    }
    by_mail = _return(client, order_id, ops, mailed)
    assert by_mail.status_code == 201, by_mail.text
    assert (by_mail.json()["status"], by_mail.json()["refund_amount"]) == ("refunded", 1999)
    assert levels(db, "SKU-A")[DC] == (10, 0)  # damaged: not sellable
    assert _ledger(db, "return_damaged") == [("SKU-A", DC, 0)]

    nothing_left = _return(client, order_id, ops, body)
    assert nothing_left.status_code == 422 and nothing_left.json()["type"].endswith("/bad-return")
    near_store = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    assert _return(client, order_id, near_store, body).status_code == 404  # not its store
    got = client.get(f"/api/v1/returns/{ret['id']}", headers=other_store)
    assert got.status_code == 200 and got.json()["status"] == "refunded"
    assert client.get(f"/api/v1/returns/{ret['id']}", headers=near_store).status_code == 404
    assert order(db, order_id).status == "completed"
    assert drift(db) == []


def test_exchange_reserves_the_replacement_first(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-B": {DC: 1}})
    order_id = _delivered(client, db, {"SKU-A": 2})
    ops = bearer(make_key(db, *FULFIL))

    too_many = {
        "location_id": NEAR,
        "lines": [{"sku": "SKU-A", "quantity": 1}],
        "replacement": [{"sku": "SKU-B", "quantity": 2}],
    }
    refused = _return(client, order_id, ops, too_many)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/insufficient-stock")
    assert levels(db, "SKU-A") == {NEAR: (3, 0)}  # nothing was taken back

    swap = {**too_many, "replacement": [{"sku": "SKU-B", "quantity": 1}]}
    res = _return(client, order_id, ops, swap)
    assert res.status_code == 201, res.text
    ret = res.json()
    assert (ret["status"], ret["refund_amount"]) == ("exchanged", 0)
    fo = client.get(
        f"/api/v1/fulfillment-orders/{ret['replacement_fulfillment_order_id']}", headers=ops
    ).json()
    assert (fo["location_id"], fo["kind"], fo["status"], fo["lines"][0]["sku"]) == (
        DC,
        "ship",
        "pending",
        "SKU-B",
    )
    assert allocations(db, order_id) == {("SKU-B", DC): 1}
    assert levels(db, "SKU-A") == {NEAR: (4, 0)}
    assert levels(db, "SKU-B") == {DC: (1, 1)}
    assert drift(db) == []


def test_a_refund_after_a_return_pays_only_the_rest(client: TestClient, db: Database) -> None:
    """The order's refund gives back what the payment still holds: the returned unit is not paid
    twice, and the refunds together are exactly what was captured."""
    seed(db, {"SKU-A": {NEAR: 5}})
    order_id = _delivered(client, db, {"SKU-A": 3})
    store = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    returned = _return(
        client, order_id, store, {"location_id": NEAR, "lines": [{"sku": "SKU-A", "quantity": 1}]}
    )
    assert returned.status_code == 201 and returned.json()["status"] == "refunded", returned.text
    writer = bearer(make_key(db, Scope.ORDERS_READ, Scope.ORDERS_WRITE))

    res = client.post(f"/api/v1/orders/{order_id}/refund", headers=writer)

    assert res.status_code == 200, res.text
    placed = order(db, order_id)
    assert (res.json()["status"], res.json()["refunded_total"]) == ("refunded", placed.total)
    assert _gateway_refunds(db, order_id) == [
        (f"return:{returned.json()['id']}", 1999),
        (f"balance:{order_id}", placed.total - 1999),
    ]
    again = client.post(f"/api/v1/orders/{order_id}/refund", headers=writer)
    assert again.status_code == 409 and len(_gateway_refunds(db, order_id)) == 2
    late = _return(client, order_id, store, {"location_id": NEAR, "lines": [{"sku": "SKU-A", "quantity": 1}]})
    assert late.status_code == 422  # a refunded order takes no returns: its money went back


def _gateway_refunds(db: Database, order_id: str) -> list[tuple[str, int]]:
    """(idempotency key, amount) of the refunds the gateway made on the order's payment, oldest first."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(payment_test_charges.c.idempotency_key, payment_test_charges.c.amount)
            .where(
                payment_test_charges.c.parent_reference == order(db, order_id).payment.reference,
                payment_test_charges.c.kind == "refund",
            )
            .order_by(payment_test_charges.c.created_at)
        )
        return [(r.idempotency_key, int(r.amount)) for r in rows]
