"""A till checkout with no fulfillment choice is carried out at once; units a pickup store cannot
find go to another pickup store nearby (the customer is told), and an order with nothing left
anywhere is refunded by itself."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.fulfillment import jobs, service
from omnicommerce.fulfillment.rules import RoutingRules
from omnicommerce.orders.api import get_provider
from omnicommerce.orders.payments import PaymentResult, ProviderError, TestPaymentProvider
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.outbox import outbox
from tests.conftest import bearer, make_key
from tests.integration.fulfillment.support import (
    DC,
    NEAR,
    OTHER,
    PICKUP_AT_NEAR,
    allocations,
    drift,
    levels,
    order,
    place,
    seed,
    shopper,
)
from tests.integration.orders.shop import new_cart

FULFIL = (Scope.FULFILLMENT_READ, Scope.FULFILLMENT_WRITE)
POS = (Scope.CARTS_READ, Scope.CARTS_WRITE)


def _events(db: Database, event_type: str) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.payload).where(outbox.c.type == event_type).order_by(outbox.c.seq)
        )
        return [orjson.loads(r.payload) for r in rows]


def _till_checkout(client: TestClient, till: dict[str, str], lines: dict[str, int], **kw: Any) -> str:
    cart_id = new_cart(client, till, lines, **kw)
    res = client.post(f"/api/v1/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=till)
    assert res.status_code == 201, res.text
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    return str(res.json()["id"])


def _fos(client: TestClient, order_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    res = client.get(f"/api/v1/orders/{order_id}/fulfillment-orders", headers=headers)
    assert res.status_code == 200, res.text
    return list(res.json())


def test_a_till_checkout_without_a_fulfillment_choice_is_carried_out_at_once(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 5}})
    till = bearer(make_key(db, *POS, channel="pos", location=NEAR))
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))

    order_id = _till_checkout(client, till, {"SKU-A": 2}, fulfillment=None)

    [fo] = _fos(client, order_id, ops)
    assert (fo["kind"], fo["location_id"], fo["status"]) == ("carry_out", NEAR, "picked_up")
    assert fo["handed_over_at"] is not None
    assert order(db, order_id).status == "completed"
    assert levels(db, "SKU-A") == {NEAR: (3, 0)}  # left the store: nothing waits on a shelf
    assert allocations(db, order_id) == {} and drift(db) == []
    [carried] = _events(db, "fulfillment.carried_out")
    assert carried["lines"] == [{"sku": "SKU-A", "quantity": 2}]
    # nothing more can happen to it at the store
    res = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/cancel", headers=ops)
    assert res.status_code == 409


def test_a_till_cart_that_chose_pickup_waits_for_the_hand_over(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 5}})
    till = bearer(make_key(db, *POS, channel="pos", location=NEAR))
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))

    order_id = _till_checkout(client, till, {"SKU-A": 2}, fulfillment=PICKUP_AT_NEAR)

    [fo] = _fos(client, order_id, ops)
    assert (fo["kind"], fo["status"]) == ("pickup", "pending")
    assert order(db, order_id).status == "fulfilling"
    assert levels(db, "SKU-A") == {NEAR: (5, 2)}


def _routed_pickup(client: TestClient, db: Database, lines: dict[str, int]) -> tuple[str, dict[str, Any]]:
    order_id = place(client, shopper(db), lines, fulfillment=PICKUP_AT_NEAR)
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    ops = bearer(make_key(db, *FULFIL, Scope.ORDERS_READ))
    [fo] = _fos(client, order_id, ops)
    return order_id, fo


def _reject(client: TestClient, db: Database, fo: dict[str, Any], lines: dict[str, int]) -> dict[str, Any]:
    near = bearer(make_key(db, *FULFIL, channel="pos", location=NEAR))
    body = {"lines": [{"sku": s, "quantity": n} for s, n in lines.items()], "reason": "not on the shelf"}
    res = client.post(f"/api/v1/fulfillment-orders/{fo['id']}/reject", json=body, headers=near)
    assert res.status_code == 200, res.text
    return dict(res.json())


def test_rejected_pickup_units_wait_at_the_nearest_store_holding_them(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 2, OTHER: 3, DC: 50}})
    order_id, fo = _routed_pickup(client, db, {"SKU-A": 2})

    done = _reject(client, db, fo, {"SKU-A": 2})

    assert done["fulfillment_order"]["status"] == "rejected" and done["unfilled"] == {}
    [moved] = done["rerouted_to"]
    assert (moved["kind"], moved["location_id"], moved["status"]) == ("pickup", OTHER, "pending")
    assert moved["rerouted_from"] == fo["id"]
    assert levels(db, "SKU-A") == {NEAR: (0, 0), OTHER: (3, 2), DC: (50, 0)}  # not shipped from the DC
    [told] = _events(db, "pickup.rerouted")
    assert (told["location_id"], told["from_location_id"], told["order_id"]) == (OTHER, NEAR, order_id)
    assert 5 < told["distance_km"] < 20 and told["lines"] == [{"sku": "SKU-A", "quantity": 2}]
    assert order(db, order_id).status == "fulfilling" and drift(db) == []


def test_no_store_near_enough_leaves_the_units_unfilled(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 2, OTHER: 3}})
    with transaction(db) as uow:
        service.put_rules(uow, service.SYSTEM, "web", RoutingRules(pickup_reroute_km=5))
    order_id, fo = _routed_pickup(client, db, {"SKU-A": 2})

    done = _reject(client, db, fo, {"SKU-A": 1})

    assert done["rerouted_to"] == [] and done["unfilled"] == {"SKU-A": 1}
    assert done["fulfillment_order"]["status"] == "pending"  # one unit still to collect
    assert _events(db, "pickup.rerouted") == []
    assert order(db, order_id).status == "fulfilling"  # not refunded: part of it is still coming


def test_an_order_with_nothing_left_anywhere_is_refunded_by_itself(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 2}})
    order_id, fo = _routed_pickup(client, db, {"SKU-A": 2})

    done = _reject(client, db, fo, {"SKU-A": 2})

    assert done["rerouted_to"] == [] and done["unfilled"] == {"SKU-A": 2}
    assert order(db, order_id).status == "refunded"
    with db.uow(readonly=True) as uow:
        assert service.refunds_due(uow) == []  # settled: the sweeper has nothing to retry
    assert levels(db, "SKU-A") == {NEAR: (0, 0)} and drift(db) == []


def test_a_shipment_rejected_with_no_stock_elsewhere_is_refunded_too(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 2}})
    order_id = place(client, shopper(db), {"SKU-A": 2})
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    [fo] = _fos(client, order_id, bearer(make_key(db, *FULFIL, Scope.ORDERS_READ)))
    assert (fo["kind"], fo["location_id"]) == ("ship", NEAR)

    done = _reject(client, db, fo, {"SKU-A": 2})

    assert done["unfilled"] == {"SKU-A": 2}
    assert order(db, order_id).status == "refunded"


class _RefundsDown(TestPaymentProvider):
    __test__ = False

    def refund(self, reference: str, amount: int, idempotency_key: str) -> PaymentResult:
        raise ProviderError("gateway down")


def test_a_refund_that_fails_after_the_rejection_is_retried_by_the_sweeper(
    client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {NEAR: 2}})
    order_id, fo = _routed_pickup(client, db, {"SKU-A": 2})
    client.app.dependency_overrides[get_provider] = lambda: _RefundsDown(db)  # type: ignore[attr-defined]

    done = _reject(client, db, fo, {"SKU-A": 2})

    assert done["fulfillment_order"]["status"] == "rejected"  # the rejection itself stands
    assert order(db, order_id).status == "fulfilling"
    with db.uow(readonly=True) as uow:
        assert service.refunds_due(uow) == [(fo["id"], order_id)]
    assert jobs.refund_expired(db, TestPaymentProvider(db)) == (1, 0)  # the scheduled sweep, later
    assert order(db, order_id).status == "refunded"
    assert jobs.refund_expired(db, TestPaymentProvider(db)) == (0, 0)  # once
