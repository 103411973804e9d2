"""A till sale's Idempotency-Key is claimed before the card is charged: a concurrent repeat never
charges, and a failing request voids only its own charge — never the charge of the sale another
request recorded — then gives the key back so a retry charges afresh."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from omnicommerce.orders import checkout as flows
from omnicommerce.orders import service as orders
from omnicommerce.orders.payments import PaymentResult, TestPaymentProvider
from omnicommerce.orders.schemas import StoreSaleCreate
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.db import Database
from omnicommerce.platform.idempotency import CLAIM_TIMEOUT, Idempotency, IdempotencyKeyInUse
from tests.integration.orders.shop import DC, STORES, order_count, seed, stock

BODY = {"lines": [{"sku": "SOCKS", "quantity": 1}], "payment": {"token": "tok_visa"}}


@pytest.fixture
def till(db: Database) -> Principal:
    seed(db, {"SOCKS": {DC: 10, STORES[0]: 10}}, prices={"SOCKS": 500})
    return Principal(
        kind="api_key",
        id="key_till",
        scopes=frozenset({Scope.ORDERS_WRITE, Scope.ORDERS_READ}),
        channel="pos",
        location=STORES[0],
    )


def _charges(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status FROM payment_test_charges WHERE kind = 'charge' ORDER BY created_at")
        )
        return [r.status for r in rows]


def _sale(db: Database, till: Principal, key: str | None = "till-9", provider: Any = None) -> Any:
    return flows.store_sale(
        db,
        provider or TestPaymentProvider(db),
        till,
        StoreSaleCreate.model_validate(BODY),
        Idempotency(key, f"{till.id} POST /api/v1/orders"),
    )


class _CountingGateway(TestPaymentProvider):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.authorizations = 0
        self.lock = threading.Lock()

    def authorize(self, amount: int, currency: str, token: str, key: str, capture: bool) -> PaymentResult:
        with self.lock:
            self.authorizations += 1
        return super().authorize(amount, currency, token, key, capture)


def test_concurrent_repeats_of_a_sale_charge_once_and_record_one_order(db: Database, till: Principal) -> None:
    n = 6
    barrier = threading.Barrier(n)
    answers: list[Any] = []
    gateway = _CountingGateway(db)

    def ring_up() -> None:
        barrier.wait()
        try:
            answers.append(orjson.loads(_sale(db, till, provider=gateway).body)["id"])
        except IdempotencyKeyInUse as exc:
            answers.append(exc)

    threads = [threading.Thread(target=ring_up) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    order_ids = {a for a in answers if isinstance(a, str)}
    assert len(order_ids) == 1 and order_count(db) == 1
    assert _charges(db) == ["captured"]  # one charge, and it stands
    # Only the request holding the key went to the gateway: a repeat that failed later could
    # otherwise void the very charge the recorded sale holds (the gateway replays it by key).
    assert gateway.authorizations == 1
    assert stock(db, "SOCKS")[STORES[0]] == (9, 0)
    assert orjson.loads(_sale(db, till).body)["id"] in order_ids  # a later repeat replays


def test_a_failed_sale_voids_its_own_charge_and_a_retry_charges_afresh(
    db: Database, till: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = orders.record_store_sale

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(orders, "record_store_sale", broken)
    with pytest.raises(RuntimeError):
        _sale(db, till)
    assert _charges(db) == ["voided"] and order_count(db) == 0

    monkeypatch.setattr(orders, "record_store_sale", real)
    res = _sale(db, till)
    assert res.status_code == 201
    assert _charges(db) == ["voided", "captured"] and order_count(db) == 1


def test_a_claim_left_by_a_crashed_request_is_taken_over_with_its_charge(
    db: Database, till: Principal
) -> None:
    idem = Idempotency("till-9", f"{till.id} POST /api/v1/orders")
    crashed = idem.claim(db, StoreSaleCreate.model_validate(BODY))
    assert isinstance(crashed, str)
    # The crashed request had charged under its attempt before it died.
    TestPaymentProvider(db).authorize(500, "USD", "tok_visa", f"store-sale:{till.id}:{crashed}", True)

    with pytest.raises(IdempotencyKeyInUse):  # still in flight as far as anyone can tell
        _sale(db, till)
    later = clock.now() + CLAIM_TIMEOUT + timedelta(seconds=1)
    clock.set_clock(lambda: later)
    assert _sale(db, till).status_code == 201
    assert _charges(db) == ["captured"] and order_count(db) == 1  # the gateway replayed that charge
