"""Exchanges settle the price difference: the replacement is reserved first and priced with the
pricing quote (same channel, same customer); a dearer one is charged the difference before it
ships (a decline leaves no exchange and nothing held), a cheaper one refunds the surplus to the
original payment, an even one moves no money."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.fulfillment import jobs, service
from omnicommerce.fulfillment.domain import ReturnLine
from omnicommerce.fulfillment.service import ReturnCommand
from omnicommerce.orders import service as orders
from omnicommerce.orders.models import payment_test_charges
from omnicommerce.orders.payments import TestPaymentProvider
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.outbox import outbox
from omnicommerce.pricing import service as pricing
from omnicommerce.pricing.domain import PromotionKind, QuoteLine
from omnicommerce.pricing.schemas import PriceEntry, PromotionCreate
from tests.conftest import bearer, make_key
from tests.integration.fulfillment.support import (
    DC,
    NEAR,
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
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    order_id = place(client, shopper(db), lines)
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    [fo] = client.get(f"/api/v1/orders/{order_id}/fulfillment-orders", headers=ops).json()
    for step in ("accept", "pick", "pack"):
        assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/{step}", headers=ops).status_code == 200
    ship = {"tracking_number": "T1"}
    assert (
        client.post(f"/api/v1/fulfillment-orders/{fo['id']}/ship", json=ship, headers=ops).status_code == 200
    )
    assert client.post(f"/api/v1/fulfillment-orders/{fo['id']}/deliver", headers=ops).status_code == 200
    return order_id


def _price(db: Database, sku: str, amount: int) -> None:
    with transaction(db) as uow:
        pricing.set_prices(uow, [PriceEntry(sku=sku, currency="USD", amount=amount)])


def _exchange(
    client: TestClient,
    db: Database,
    order_id: str,
    swap: dict[str, str],
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """Return one unit of each key of ``swap`` at the near store for one of its value."""
    body: dict[str, Any] = {
        "location_id": NEAR,
        "lines": [{"sku": old, "quantity": 1} for old in swap],
        "replacement": [{"sku": new, "quantity": 1} for new in swap.values()],
    }
    if token is not None:
        body["payment_token"] = token
    store = headers or bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    return client.post(f"/api/v1/orders/{order_id}/returns", json=body, headers=store)


def _payments(db: Database, key_prefix: str) -> list[tuple[str, str, str, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(payment_test_charges).where(payment_test_charges.c.idempotency_key.startswith(key_prefix))
        )
        return [(r.idempotency_key, r.kind, r.status, r.amount) for r in rows]


def _events(db: Database, event_type: str) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.payload).where(outbox.c.type == event_type).order_by(outbox.c.seq)
        )
        return [orjson.loads(r.payload) for r in rows]


def test_a_dearer_replacement_is_charged_the_difference_before_it_ships(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-C": {DC: 2}})
    _price(db, "SKU-C", 2_499)
    with transaction(db) as uow:  # 7 % off the replacement: the quote decides, to the minor unit
        pricing.create_promotion(
            uow,
            SYSTEM,
            PromotionCreate(name="c", kind=PromotionKind.PERCENTAGE, basis_points=700, skus=["SKU-C"]),
        )
    order_id = _delivered(client, db, {"SKU-A": 2})
    customer = order(db, order_id).customer_id
    with db.uow(readonly=True) as uow:
        quoted = pricing.quote(
            uow, channel="web", currency="USD", lines=[QuoteLine("SKU-C", 1)], customer_id=customer
        ).total
    paid = next(ln.total for ln in order(db, order_id).lines) // 2

    store = {**bearer(make_key(db, *FULFIL, channel="pos", location=NEAR)), "Idempotency-Key": "ex-1"}
    res = _exchange(client, db, order_id, {"SKU-A": "SKU-C"}, token="tok_visa", headers=store)

    assert res.status_code == 201, res.text
    ret = res.json()
    assert ret["status"] == "exchanged" and ret["refund_amount"] == 0
    terms = ret["exchange"]
    assert (terms["returned_value"], terms["replacement_value"]) == (paid, quoted)
    assert terms["difference"] == quoted - paid > 0 and terms["charge_reference"]
    assert _payments(db, "exchange:") == [(f"exchange:{ret['id']}", "charge", "captured", quoted - paid)]
    assert allocations(db, order_id) == {("SKU-C", DC): 1}  # ships from where it was
    assert levels(db, "SKU-A") == {NEAR: (4, 0)}  # the returned unit is back on the shelf
    [settled] = _events(db, "exchange.settled")
    assert (settled["difference"], settled["charge_reference"]) == (quoted - paid, terms["charge_reference"])
    # The same request again answers the same and charges nothing more.
    again = _exchange(client, db, order_id, {"SKU-A": "SKU-C"}, token="tok_visa", headers=store)
    assert again.status_code == 201 and again.json()["id"] == ret["id"]
    assert len(_payments(db, "exchange:")) == 1
    assert drift(db) == []


def test_a_declined_charge_leaves_no_exchange_and_nothing_held(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-C": {DC: 2}})
    _price(db, "SKU-C", 2_499)
    order_id = _delivered(client, db, {"SKU-A": 2})

    res = _exchange(client, db, order_id, {"SKU-A": "SKU-C"}, token="tok_decline")

    assert res.status_code == 402 and res.json()["type"].endswith("/payment-declined")
    assert allocations(db, order_id) == {}
    assert levels(db, "SKU-C") == {DC: (2, 0)}  # the reserved replacement went back
    assert levels(db, "SKU-A") == {NEAR: (3, 0)}  # nothing was taken back
    assert [p[2] for p in _payments(db, "exchange:")] == ["declined"]
    assert _events(db, "exchange.settled") == [] and _events(db, "return.received") == []
    # The units are still the customer's: a plain return of them goes through.
    plain = client.post(
        f"/api/v1/orders/{order_id}/returns",
        json={"location_id": NEAR, "lines": [{"sku": "SKU-A", "quantity": 2}]},
        headers=bearer(make_key(db, *FULFIL, channel="pos", location=NEAR)),
    )
    assert plain.status_code == 201, plain.text
    assert drift(db) == []


def test_a_charge_without_an_answer_is_voided_and_nothing_is_exchanged(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-C": {DC: 2}})
    _price(db, "SKU-C", 2_499)
    order_id = _delivered(client, db, {"SKU-A": 2})

    res = _exchange(client, db, order_id, {"SKU-A": "SKU-C"}, token="tok_timeout")

    assert res.status_code == 504
    assert [p[2] for p in _payments(db, "exchange:")] == ["voided"]  # the gateway had charged: undone
    assert levels(db, "SKU-C") == {DC: (2, 0)} and allocations(db, order_id) == {}


def test_a_dearer_replacement_without_a_token_asks_for_the_difference(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-C": {DC: 2}})
    _price(db, "SKU-C", 2_499)
    order_id = _delivered(client, db, {"SKU-A": 2})

    res = _exchange(client, db, order_id, {"SKU-A": "SKU-C"})

    assert res.status_code == 402
    problem = res.json()
    assert problem["type"].endswith("/exchange-payment-required")
    assert (problem["amount_due"], problem["currency"]) == (500, "USD")
    assert levels(db, "SKU-C") == {DC: (2, 0)} and levels(db, "SKU-A") == {NEAR: (3, 0)}


def test_a_cheaper_replacement_refunds_the_surplus_to_the_original_payment(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-C": {DC: 2}})
    _price(db, "SKU-C", 1_499)
    order_id = _delivered(client, db, {"SKU-A": 2})

    res = _exchange(client, db, order_id, {"SKU-A": "SKU-C"})

    assert res.status_code == 201, res.text
    ret = res.json()
    assert (ret["status"], ret["refund_amount"], ret["exchange"]["difference"]) == ("refunded", 500, -500)
    assert ret["replacement_fulfillment_order_id"] and ret["refund_reference"]
    assert _payments(db, f"return:{ret['id']}") == [(f"return:{ret['id']}", "refund", "refunded", 500)]
    assert allocations(db, order_id) == {("SKU-C", DC): 1}
    assert drift(db) == []


def test_an_even_exchange_moves_no_money(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-B": {NEAR: 2}})
    order_id = _delivered(client, db, {"SKU-A": 2})

    res = _exchange(client, db, order_id, {"SKU-A": "SKU-B"})

    assert res.status_code == 201, res.text
    ret = res.json()
    assert (ret["status"], ret["refund_amount"], ret["exchange"]["difference"]) == ("exchanged", 0, 0)
    assert _payments(db, "exchange:") == [] and _payments(db, "return:") == []
    assert allocations(db, order_id) == {("SKU-B", NEAR): 1}
    assert drift(db) == []


def test_an_exchange_whose_charge_attempt_died_is_undone_by_the_sweeper(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-C": {DC: 2}})
    _price(db, "SKU-C", 2_499)
    order_id = _delivered(client, db, {"SKU-A": 2})
    store = Principal("api_key", "key_near", frozenset({Scope.FULFILLMENT_WRITE}), "pos", NEAR)
    swap = ReturnCommand(NEAR, "in_store", (ReturnLine("SKU-A", 1, "sellable"),), {"SKU-C": 1}, "tok_visa")
    with transaction(db) as uow:  # the request's first transaction committed...
        ret = service.receive_return(uow, store, order_id, swap)
    provider = TestPaymentProvider(db)  # ...the gateway charged, and the process died there
    provider.authorize(500, "USD", "tok_visa", f"exchange:{ret.id}", capture=True)
    assert ret.status == "charge_pending" and levels(db, "SKU-C") == {DC: (2, 1)}

    assert jobs.settle_stale_exchanges(db, provider) == 0  # a live attempt may still finish it
    later = clock.now() + timedelta(minutes=16)
    clock.set_clock(lambda: later)
    assert jobs.settle_stale_exchanges(db, provider) == 1

    assert [p[2] for p in _payments(db, "exchange:")] == ["voided"]
    assert levels(db, "SKU-C") == {DC: (2, 0)} and levels(db, "SKU-A") == {NEAR: (3, 0)}
    with db.uow(readonly=True) as uow:
        assert service.get_return(uow, SYSTEM, ret.id).status == "declined"
    assert jobs.settle_stale_exchanges(db, provider) == 0
    assert drift(db) == []


def test_a_refund_after_a_cheaper_exchange_gives_back_only_what_the_payment_still_holds(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 5}, "SKU-C": {DC: 2}})
    _price(db, "SKU-C", 1_499)
    order_id = _delivered(client, db, {"SKU-A": 2})
    ret = _exchange(client, db, order_id, {"SKU-A": "SKU-C"}).json()
    assert ret["status"] == "refunded" and ret["refund_amount"] == 500
    writer = bearer(make_key(db, Scope.ORDERS_READ, Scope.ORDERS_WRITE))

    res = client.post(f"/api/v1/orders/{order_id}/refund", headers=writer)

    assert res.status_code == 200, res.text
    total = order(db, order_id).total
    assert _payments(db, f"return:{ret['id']}") == [(f"return:{ret['id']}", "refund", "refunded", 500)]
    assert _payments(db, "balance:") == [(f"balance:{order_id}", "refund", "refunded", total - 500)]
    with db.uow(readonly=True) as uow:
        ledger = [(e.reason, e.amount) for e in orders.refunds_of(uow, order_id)]
    assert ledger == [("exchange", 500), ("refund", total - 500)]
    [refunded] = _events(db, "order.refunded")
    assert refunded["refunded_amount"] == total - 500
