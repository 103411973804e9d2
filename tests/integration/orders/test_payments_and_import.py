"""The test gateway's idempotency by key, and the bulk import of historical orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import HistoricalLine, HistoricalOrder
from omnicommerce.orders.payments import ProviderTimeout, TestPaymentProvider
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database, transaction
from tests.integration.orders.shop import order_count


def test_gateway_replays_by_key_and_voids_a_timed_out_charge(db: Database) -> None:
    gateway = TestPaymentProvider(db)
    first = gateway.authorize(1000, "USD", "tok_visa", "k1", capture=True)
    assert gateway.authorize(1000, "USD", "tok_visa", "k1", capture=True) == first
    assert first.status == "captured" and first.reference
    assert gateway.authorize(1000, "USD", "tok_decline", "k2", capture=True).status == "declined"
    with pytest.raises(ProviderTimeout):
        gateway.authorize(500, "USD", "tok_timeout", "k3", capture=True)
    assert gateway.void(None, "k3").status == "voided"
    assert gateway.authorize(500, "USD", "tok_timeout", "k3", capture=True).status == "voided"
    refund = gateway.refund(str(first.reference), 1000, "r1")
    assert refund.status == "refunded" and gateway.refund(str(first.reference), 1000, "r1") == refund


def test_import_orders_in_bulk(db: Database) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    history = [
        HistoricalOrder(
            channel=("web", "pos")[i % 2],
            currency="USD",
            placed_at=start + timedelta(hours=i),
            customer_id="cus_1" if i % 3 == 0 else None,
            lines=(HistoricalLine("A", "Thing A", 2, 1000, -200), HistoricalLine("B", "B", 1, 50)),
        )
        for i in range(1200)
    ]
    with transaction(db) as uow:
        assert orders.import_orders(uow, history) == 1200
    assert order_count(db) == 1200
    with db.uow(readonly=True) as uow:
        mine = orders.list_orders(uow, SYSTEM, customer_id="cus_1", limit=1000)
    assert len(mine) == 400
    assert {(o.status, o.subtotal, o.discount_total, o.total) for o in mine} == {
        ("completed", 2050, -200, 1850)
    }
