"""Two paid orders routed at the same moment, both wanting the last unit of the near store:
the conditional update lets exactly one have it; the other re-plans and keeps its DC units."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from omnicommerce.fulfillment import service as fulfillment
from omnicommerce.fulfillment.domain import FulfillmentOrder
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.schemas import ReceiptCreate, StockLine
from omnicommerce.orders.domain import OrderChanged
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database, transaction
from tests.integration.fulfillment.support import DC, NEAR, allocations, drift, levels, place, seed, shopper


def _route_together(
    db: Database, order_ids: list[str]
) -> tuple[list[list[FulfillmentOrder]], list[BaseException]]:
    start = threading.Barrier(len(order_ids))
    results: list[list[FulfillmentOrder]] = []
    errors: list[BaseException] = []

    def work(order_id: str) -> None:
        try:
            start.wait()
            with transaction(db) as uow:
                results.append(fulfillment.route_paid_order(uow, order_id))
        except BaseException as exc:  # surfaced by the caller
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(oid,)) for oid in order_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_two_orders_never_both_get_the_last_unit_of_a_store(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10}})
    headers = shopper(db)
    first, second = place(client, headers, {"SKU-A": 1}), place(client, headers, {"SKU-A": 1})
    with transaction(db) as uow:  # one unit arrives at the near store after both checkouts
        inventory.receive(
            uow, SYSTEM, ReceiptCreate(location_id=NEAR, lines=[StockLine(sku="SKU-A", quantity=1)])
        )

    results, errors = _route_together(db, [first, second])

    assert errors == []
    at_store = [fos[0].order_id for fos in results if fos[0].location_id == NEAR]
    at_dc = [fos[0].order_id for fos in results if fos[0].location_id == DC]
    assert len(at_store) == 1 and len(at_dc) == 1
    assert allocations(db, at_store[0]) == {("SKU-A", NEAR): 1}
    assert allocations(db, at_dc[0]) == {("SKU-A", DC): 1}
    assert levels(db, "SKU-A") == {DC: (10, 1), NEAR: (1, 1)}
    assert drift(db) == []


def test_a_move_the_stock_cannot_cover_changes_nothing(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 1}, "SKU-B": {DC: 10, NEAR: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 2, "SKU-B": 2})
    before = allocations(db, order_id)
    assert before == {("SKU-A", DC): 2, ("SKU-B", DC): 2}
    moves = {("SKU-A", DC): -2, ("SKU-A", NEAR): 2, ("SKU-B", DC): -2, ("SKU-B", NEAR): 2}
    with db.uow() as uow:
        try:
            inventory.move_allocations(uow, order_id=order_id, moves=moves, reason="route", actor="test")
        except inventory.InsufficientStock as short:
            assert short.shortages == {"SKU-A": 2}
        else:
            raise AssertionError("the near store has 1 unit of SKU-A, not 2")
        uow.commit()  # whatever was written before the refusal was undone in the transaction
    assert allocations(db, order_id) == before
    assert levels(db, "SKU-A") == {DC: (10, 2), NEAR: (1, 0)}
    assert levels(db, "SKU-B") == {DC: (10, 2), NEAR: (5, 0)}
    assert drift(db) == []


def test_the_same_order_routed_twice_at_once_is_routed_once(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 2})

    results, errors = _route_together(db, [order_id, order_id])

    # The loser either finds the order routed, or loses the compare-and-set on the order.
    assert all(isinstance(e, OrderChanged) for e in errors)
    assert len(results) + len(errors) == 2
    with db.uow(readonly=True) as uow:
        fos = fulfillment.fos_of_order(uow, SYSTEM, order_id)
    assert [(f.location_id, f.units) for f in fos] == [(NEAR, {"SKU-A": 2})]
    assert all([f.id for f in r] == [fos[0].id] for r in results)
    assert allocations(db, order_id) == {("SKU-A", NEAR): 2}
    assert drift(db) == []
