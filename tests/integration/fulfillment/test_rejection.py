"""A store cannot find units: they are written off there and re-routed to the next best location."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from omnicommerce.fulfillment import service as fulfillment
from omnicommerce.fulfillment.domain import Action, BadRejection, IllegalTransition
from omnicommerce.inventory import service as inventory
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.db import Database, transaction
from tests.integration.fulfillment.support import (
    DC,
    NEAR,
    OTHER,
    allocations,
    drift,
    levels,
    place,
    route,
    seed,
    shopper,
)

NEAR_KEY = Principal("api_key", "key_near", frozenset({Scope.FULFILLMENT_WRITE}), "pos", NEAR)


def _ledger(db: Database, reason: str) -> list[tuple[str, str, int, int]]:
    with db.uow(readonly=True) as uow:
        rows = inventory.list_ledger(uow, SYSTEM, sku=None, location_id=None, after=None, limit=1000)
    return sorted(
        (r.sku, r.location_id, r.delta_on_hand, r.delta_reserved) for r in rows if r.reason == reason
    )


def test_full_rejection_writes_off_and_reroutes_to_the_next_best(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5, OTHER: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 2})
    [at_near] = route(db, order_id)
    assert at_near.location_id == NEAR

    with transaction(db) as uow:
        done = fulfillment.reject(uow, NEAR_KEY, at_near.id, lines={"SKU-A": 2}, reason="shelf empty")

    assert done.fulfillment_order.status == "rejected"
    assert [(f.location_id, f.units, f.rerouted_from) for f in done.rerouted_to] == [
        (OTHER, {"SKU-A": 2}, at_near.id)
    ]
    assert done.unfilled == {}
    assert _ledger(db, "not_found") == [("SKU-A", NEAR, -2, -2)]
    assert levels(db, "SKU-A") == {DC: (10, 0), NEAR: (3, 0), OTHER: (5, 2)}
    assert allocations(db, order_id) == {("SKU-A", OTHER): 2}
    with db.uow(readonly=True) as uow:
        decisions = fulfillment.routing_of(uow, SYSTEM, order_id)[1]
    assert [d["trigger"] for d in decisions] == ["order.paid", f"rejection:{at_near.id}"]
    reasons = {c["location_id"]: c["reason"] for c in decisions[1]["candidates"]}
    assert reasons[NEAR] == "excluded"
    assert drift(db) == []


def test_partial_rejection_keeps_the_rest_and_never_goes_back(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5, OTHER: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 3})
    [at_near] = route(db, order_id)
    with transaction(db) as uow:
        first = fulfillment.reject(uow, NEAR_KEY, at_near.id, lines={"SKU-A": 1}, reason="damaged")
    assert first.fulfillment_order.status == "pending"
    assert first.fulfillment_order.units == {"SKU-A": 2}
    [at_other] = first.rerouted_to
    assert at_other.location_id == OTHER

    other_key = Principal("api_key", "key_other", frozenset({Scope.FULFILLMENT_WRITE}), "pos", OTHER)
    with transaction(db) as uow:
        second = fulfillment.reject(uow, other_key, at_other.id, lines={"SKU-A": 1}, reason="not found")
    # Both stores that refused are out: the unit goes to the DC.
    assert [(f.location_id, f.units) for f in second.rerouted_to] == [(DC, {"SKU-A": 1})]
    assert allocations(db, order_id) == {("SKU-A", NEAR): 2, ("SKU-A", DC): 1}
    assert drift(db) == []


def test_rejection_with_nowhere_to_go_reports_the_units_unfilled(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 2}})
    order_id = place(client, shopper(db), {"SKU-A": 2})
    [at_near] = route(db, order_id)
    with transaction(db) as uow:
        done = fulfillment.reject(uow, NEAR_KEY, at_near.id, lines={"SKU-A": 2}, reason="gone")
    assert done.rerouted_to == [] and done.unfilled == {"SKU-A": 2}
    assert allocations(db, order_id) == {}
    assert drift(db) == []


def test_bad_rejections_are_refused_before_anything_changes(client: TestClient, db: Database) -> None:
    seed(db, {"SKU-A": {NEAR: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 2})
    [fo] = route(db, order_id)
    with db.uow() as uow, pytest.raises(BadRejection):
        fulfillment.reject(uow, NEAR_KEY, fo.id, lines={"SKU-A": 3}, reason="too many")
    with db.uow() as uow, pytest.raises(BadRejection):
        fulfillment.reject(uow, NEAR_KEY, fo.id, lines={"SKU-Z": 1}, reason="not ours")
    with transaction(db) as uow:
        fulfillment.advance(uow, NEAR_KEY, fo.id, Action.ACCEPT)
        fulfillment.advance(uow, NEAR_KEY, fo.id, Action.PICK)
        fulfillment.advance(uow, NEAR_KEY, fo.id, Action.PACK)
    with db.uow() as uow, pytest.raises(IllegalTransition):  # packed: too late to reject
        fulfillment.reject(uow, NEAR_KEY, fo.id, lines={"SKU-A": 1}, reason="late")
    assert levels(db, "SKU-A") == {NEAR: (5, 2)}
