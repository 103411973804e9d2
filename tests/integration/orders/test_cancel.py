"""Cancel: the order moves to cancelled and its allocations go back in one transaction, in a
number of statements that does not grow with the order's lines."""

from __future__ import annotations

from fastapi.testclient import TestClient

from omnicommerce.inventory import jobs
from omnicommerce.orders import service as orders
from omnicommerce.orders.checkout import cancel
from omnicommerce.orders.domain import Action, Status
from omnicommerce.orders.payments import TestPaymentProvider
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, new_cart, reserved, seed
from tests.integration.orders.test_checkout_statements import counting

SKUS = [f"SKU-{i:02d}" for i in range(10)]


def _order(client: TestClient, headers: dict[str, str], skus: list[str]) -> str:
    cart_id = new_cart(client, headers, dict.fromkeys(skus, 2))
    res = client.post(
        f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=headers
    )
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


def _total_reserved(db: Database) -> int:
    return sum(reserved(db, sku) for sku in SKUS)


def _drift(db: Database) -> list[jobs.Drift]:
    with db.uow(readonly=True) as uow:
        return jobs.reserved_drift(uow)


def test_stock_goes_back_only_with_the_cancel(client: TestClient, db: Database) -> None:
    seed(db, {sku: {DC: 10} for sku in SKUS})
    headers = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="web"))
    order_id = _order(client, headers, SKUS[:3])
    assert _total_reserved(db) == 6

    with db.uow() as uow:  # rolled back: neither the order nor the stock changes
        order = orders.check_action(uow, SYSTEM, order_id, Action.CANCEL)
        orders.cancel_order(uow, SYSTEM, order, payment_status="refunded")
        assert "allocation.released" in [e.type for e in uow.pending_events]
    assert _total_reserved(db) == 6
    with db.uow(readonly=True) as uow:
        assert orders.get_order(uow, SYSTEM, order_id).status == Status.PAID

    cancelled = cancel(db, TestPaymentProvider(db), SYSTEM, order_id)
    assert cancelled.status == Status.CANCELLED
    with db.uow(readonly=True) as uow:
        stored = orders.get_order(uow, SYSTEM, order_id)
    steps = [(h.seq, h.from_status, h.to_status, h.actor) for h in stored.history]
    assert steps == [
        (0, None, "placed", "checkout"),
        (1, "placed", "paid", "checkout"),
        (2, "paid", "cancelled", SYSTEM.id),
    ]
    assert stored.history == cancelled.history and stored.version == cancelled.version == 2
    assert _total_reserved(db) == 0
    assert _drift(db) == []


def test_cancel_statement_count_does_not_grow_with_lines(client: TestClient, db: Database) -> None:
    seed(db, {sku: {DC: 100} for sku in SKUS})
    headers = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="web"))
    writer = bearer(make_key(db, Scope.ORDERS_READ, Scope.ORDERS_WRITE, channel="web"))

    def statements(skus: list[str]) -> int:
        order_id = _order(client, headers, skus)
        with counting(db) as seen:
            res = client.post(f"/api/v1/orders/{order_id}/cancel", headers=writer)
        assert res.status_code == 200, res.text
        return len(seen)

    statements(SKUS[:1])  # warm caches (compiled statements, pool)
    one = statements(SKUS[:1])
    ten = statements(SKUS)
    print(f"cancel statements on {db.dialect}: 1 line = {one}, 10 lines = {ten}")
    assert one == ten
    assert _total_reserved(db) == 0
    assert _drift(db) == []
