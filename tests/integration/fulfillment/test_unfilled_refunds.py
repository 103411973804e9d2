"""Units no location can serve are cancelled on the order and their price — with their share of
the line's discounts, to the minor unit — goes back to the original payment, exactly once; the
whole-order refund that may follow gives back only what is left."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.fulfillment import jobs, unfilled
from omnicommerce.fulfillment import service as fulfillment
from omnicommerce.inventory import service as inventory
from omnicommerce.orders import service as orders
from omnicommerce.orders.models import payment_test_charges
from omnicommerce.orders.payments import TestPaymentProvider
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.outbox import outbox
from omnicommerce.pricing import service as pricing
from omnicommerce.pricing.domain import PromotionKind
from omnicommerce.pricing.schemas import PromotionCreate
from tests.conftest import bearer, make_key
from tests.integration.fulfillment.support import NEAR, allocations, drift, order, place, route, seed, shopper

FULFIL = (Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE)


def _discount(db: Database, sku: str, basis_points: int) -> None:
    with transaction(db) as uow:
        pricing.create_promotion(
            uow,
            SYSTEM,
            PromotionCreate(
                name="sale", kind=PromotionKind.PERCENTAGE, basis_points=basis_points, skus=[sku]
            ),
        )


def _reject(client: TestClient, db: Database, fo_id: str, lines: dict[str, int]) -> dict[str, Any]:
    near = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    body = {"lines": [{"sku": s, "quantity": n} for s, n in lines.items()], "reason": "not on the shelf"}
    res = client.post(f"/api/v1/fulfillment-orders/{fo_id}/reject", json=body, headers=near)
    assert res.status_code == 200, res.text
    return dict(res.json())


def _refunds(db: Database, order_id: str) -> list[tuple[str, int]]:
    """(idempotency key, amount) of every refund the provider made on the order's payment."""
    reference = order(db, order_id).payment.reference
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(payment_test_charges.c.idempotency_key, payment_test_charges.c.amount)
            .where(
                payment_test_charges.c.parent_reference == reference, payment_test_charges.c.kind == "refund"
            )
            .order_by(payment_test_charges.c.created_at)
        )
        return [(r.idempotency_key, r.amount) for r in rows]


def _events(db: Database, event_type: str) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.payload).where(outbox.c.type == event_type).order_by(outbox.c.seq)
        )
        return [orjson.loads(r.payload) for r in rows]


def _line_total(db: Database, order_id: str, sku: str) -> int:
    return next(ln.total for ln in order(db, order_id).lines if ln.sku == sku)


def test_units_nobody_can_serve_are_refunded_once_and_to_the_minor_unit(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 3}, "SKU-B": {NEAR: 1}})  # nowhere else holds them
    _discount(db, "SKU-A", 1_333)  # 13.33 % off: the line total does not split evenly in three
    order_id = place(client, shopper(db), {"SKU-A": 3, "SKU-B": 1})
    [fo] = route(db, order_id)
    line_a = _line_total(db, order_id, "SKU-A")
    assert line_a % 3 != 0  # the case worth testing

    first = _reject(client, db, fo.id, {"SKU-A": 1})

    assert first["unfilled"] == {"SKU-A": 1} and first["rerouted_to"] == []
    [told] = _events(db, "order.units_cancelled")
    assert told["lines"] == [{"sku": "SKU-A", "quantity": 1}]
    assert told["refund_amount"] == line_a // 3 and told["customer_id"] == order(db, order_id).customer_id
    [cancelled] = _cancellations(db, order_id)
    assert (cancelled.status, cancelled.refund_amount) == ("refunded", line_a // 3)  # right after commit
    assert _refunds(db, order_id) == [(f"unfilled:{cancelled.id}", line_a // 3)]
    assert order(db, order_id).status == "fulfilling"  # the rest carries on
    # A retried job, or the sweeper running again, pays nothing more.
    provider = TestPaymentProvider(db)
    assert jobs.refund_cancellation(db, provider, cancelled.id) is True
    assert jobs.refund_cancellations(db, provider) == (0, 0)
    assert len(_refunds(db, order_id)) == 1
    assert len(_events(db, "unfilled.refunded")) == 1

    _reject(client, db, fo.id, {"SKU-A": 2})

    # Split in two, the line's refunds still add up to its total exactly.
    assert [a for _, a in _refunds(db, order_id)] == [line_a // 3, line_a - line_a // 3]

    last = _reject(client, db, fo.id, {"SKU-B": 1})  # nothing left anywhere: the whole order

    assert last["fulfillment_order"]["status"] == "rejected"
    placed = order(db, order_id)
    assert placed.status == "refunded"
    # Only what the payment still held went back: the whole never exceeds what was captured.
    amounts = [a for _, a in _refunds(db, order_id)]
    assert amounts[-1] == _line_total(db, order_id, "SKU-B")
    assert sum(amounts) == placed.total
    [refunded] = _events(db, "order.refunded")
    assert refunded["refunded_amount"] == _line_total(db, order_id, "SKU-B")
    assert len(_cancellations(db, order_id)) == 2  # the last rejection was the whole-order refund
    assert drift(db) == []


def _cancellations(db: Database, order_id: str) -> list[Any]:
    with db.uow(readonly=True) as uow:
        return fulfillment.cancellations_of(uow, order_id)


def _lose_one_unit_before_routing(db: Database, order_id: str) -> None:
    """A cycle count finds one unit fewer at the store, and the order's allocation of it lapses:
    routing then finds nowhere for that unit."""
    with transaction(db) as uow:
        inventory.move_allocations(
            uow, order_id=order_id, moves={("SKU-A", NEAR): -1}, reason="test", actor="test"
        )
        inventory.set_stock_bulk(uow, [("SKU-A", NEAR, 2)])


def test_units_unfilled_at_payment_are_cancelled_once_whatever_the_retries(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 3}})
    order_id = place(client, shopper(db), {"SKU-A": 3})
    _lose_one_unit_before_routing(db, order_id)

    [fo] = route(db, order_id)
    assert route(db, order_id) == [fo]  # a duplicate order.paid: what the first routing made
    client.app.state.relay.drain()  # type: ignore[attr-defined]  # and the subscriber itself

    assert fo.units == {"SKU-A": 2}
    [cancelled] = _cancellations(db, order_id)
    assert cancelled.units == {"SKU-A": 1} and cancelled.status == "refund_pending"
    assert cancelled.refund_amount == _line_total(db, order_id, "SKU-A") // 3
    assert len(_events(db, "order.units_cancelled")) == 1
    # Routing ran inside the subscriber's transaction: the sweeper pays, once.
    assert jobs.refund_cancellations(db, TestPaymentProvider(db)) == (1, 0)
    assert jobs.refund_cancellations(db, TestPaymentProvider(db)) == (0, 0)
    assert _refunds(db, order_id) == [(f"unfilled:{cancelled.id}", cancelled.refund_amount)]
    # The routing explanation shows them.
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    shown = client.get(f"/api/v1/orders/{order_id}/routing", headers=ops).json()["cancelled_units"]
    assert [(c["status"], c["lines"]) for c in shown] == [("refunded", [{"sku": "SKU-A", "quantity": 1}])]
    assert allocations(db, order_id) == {("SKU-A", NEAR): 2} and drift(db) == []


def test_batch_replanning_does_not_bring_cancelled_units_back(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 3}})
    order_id = place(client, shopper(db), {"SKU-A": 3})
    _lose_one_unit_before_routing(db, order_id)
    route(db, order_id)
    with transaction(db) as uow:
        inventory.set_stock_bulk(uow, [("SKU-A", NEAR, 10)])  # stock is back meanwhile

    with transaction(db) as uow:
        fulfillment.reoptimize_open_orders(uow, channel="web", time_budget_s=2)

    # The customer was refunded for the third unit: it is not planned (nor shipped) again.
    assert sum(allocations(db, order_id).values()) == 2
    assert drift(db) == []


def test_a_cancel_after_cancelled_units_were_refunded_gives_back_only_the_rest(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 3}, "SKU-B": {NEAR: 1}})
    _discount(db, "SKU-A", 1_333)
    order_id = place(client, shopper(db), {"SKU-A": 3, "SKU-B": 1})  # paid, not routed yet
    with transaction(db) as uow:  # one unit nobody can serve (as a routing would find)
        cancelled = unfilled.cancel_unfilled(
            uow, order(db, order_id), {"SKU-A": 1}, decision_id="rtd_test", reason=unfilled.NOWHERE
        )
    assert cancelled is not None
    assert jobs.refund_cancellations(db, TestPaymentProvider(db)) == (1, 0)
    writer = bearer(make_key(db, Scope.ORDERS_READ, Scope.ORDERS_WRITE))

    res = client.post(f"/api/v1/orders/{order_id}/cancel", headers=writer)

    assert res.status_code == 200, res.text
    placed = order(db, order_id)
    assert res.json()["status"] == "cancelled" and res.json()["refunded_total"] == placed.total
    assert _refunds(db, order_id) == [
        (f"unfilled:{cancelled.id}", cancelled.refund_amount),
        (f"balance:{order_id}", placed.total - cancelled.refund_amount),
    ]
    assert client.post(f"/api/v1/orders/{order_id}/cancel", headers=writer).status_code == 409
    assert len(_refunds(db, order_id)) == 2


def test_cancelled_units_are_recorded_in_the_orders_ledger(client: TestClient, db: Database) -> None:
    """Fulfillment records what it owes through the orders context: an order refunded in full
    first leaves nothing for units cancelled afterwards (and nothing is paid twice)."""
    seed(db, {"SKU-A": {NEAR: 3}})
    order_id = place(client, shopper(db), {"SKU-A": 3})
    placed = order(db, order_id)
    with transaction(db) as uow:
        cancelled = unfilled.cancel_unfilled(
            uow, placed, {"SKU-A": 1}, decision_id="rtd_one", reason=unfilled.NOWHERE
        )
        assert cancelled is not None
        [entry] = orders.refunds_of(uow, order_id)
    assert (entry.key, entry.amount, entry.reason) == (
        f"unfilled:{cancelled.id}",
        cancelled.refund_amount,
        "unfilled",
    )
    assert order(db, order_id).refunded_total == cancelled.refund_amount
