"""Routing, shipping and rejecting issue the same number of statements for 1 line and 10."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from omnicommerce.fulfillment import service as fulfillment
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.db import Database, transaction
from tests.integration.fulfillment.support import DC, NEAR, drift, place, seed, shopper
from tests.statements import count_statements

SKUS = [f"SKU-{i:02d}" for i in range(10)]
NEAR_KEY = Principal("api_key", "key_near", frozenset({Scope.FULFILLMENT_WRITE}), "pos", NEAR)


def _count(db: Database, work: Callable[[], object]) -> int:
    with count_statements(db) as seen:
        work()
    return len(seen)


def test_statement_counts_do_not_grow_with_lines(client: TestClient, db: Database) -> None:
    seed(db, {sku: {DC: 100, NEAR: 100} for sku in SKUS})
    headers = shopper(db)

    def flow(skus: list[str]) -> tuple[int, int, int]:
        order_id = place(client, headers, dict.fromkeys(skus, 3))

        def route() -> None:
            with transaction(db) as uow:
                fulfillment.route_paid_order(uow, order_id)

        routed = _count(db, route)
        with db.uow(readonly=True) as uow:
            [fo] = fulfillment.fos_of_order(uow, SYSTEM, order_id)

        def reject() -> None:
            with transaction(db) as uow:
                fulfillment.reject(uow, NEAR_KEY, fo.id, lines=dict.fromkeys(skus, 1), reason="missing")

        rejected = _count(db, reject)
        with transaction(db) as uow:
            for action in (fulfillment.Action.ACCEPT, fulfillment.Action.PICK, fulfillment.Action.PACK):
                fulfillment.advance(uow, NEAR_KEY, fo.id, action)

        def ship() -> None:
            with transaction(db) as uow:
                fulfillment.ship(uow, NEAR_KEY, fo.id, tracking_number="T", carrier=None)

        return routed, rejected, _count(db, ship)

    flow(SKUS[:1])  # warm caches (compiled statements, pool)
    one, ten = flow(SKUS[:1]), flow(SKUS)
    print(f"route/reject/ship statements on {db.dialect}: 1 line = {one}, 10 lines = {ten}")
    assert one == ten
    assert drift(db) == []
