"""Giving an order's allocations back (``release_allocations``) on real SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from omnicommerce.inventory import jobs, service
from omnicommerce.inventory.domain import Allocation, HoldState, InsufficientStock
from omnicommerce.inventory.models import stock_ledger
from omnicommerce.platform.db import Database, transaction
from tests.integration.inventory.support import hold_states, position, setup_stock, total_reserved
from tests.statements import counting as _counting


def _checkout(db: Database, owner: str, order: str, demand: dict[str, int]) -> list[Allocation]:
    """Reserve then commit, as a cart's checkout does."""
    with transaction(db) as uow:
        service.reserve(uow, owner_id=owner, channel="web", demand=demand, ttl_seconds=600)
    with transaction(db) as uow:
        return service.commit(
            uow,
            owner_id=owner,
            order_id=order,
            demand=demand,
            channel="web",
            location_id=None,
            capability="ship",
        )


def _release(db: Database, order: str) -> tuple[list[Allocation], list[str]]:
    with db.uow() as uow:
        given_back = service.release_allocations(uow, order_id=order, reason="order-cancelled")
        events = [e.type for e in uow.pending_events]
        uow.commit()
    return given_back, events


def _drift(db: Database) -> list[jobs.Drift]:
    with db.uow() as uow:
        return jobs.reserved_drift(uow)


def _ledger(db: Database, reason: str) -> list[tuple[str, str, int, str | None]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(
                stock_ledger.c.sku,
                stock_ledger.c.location_id,
                stock_ledger.c.delta_reserved,
                stock_ledger.c.reference,
            )
            .where(stock_ledger.c.reason == reason)
            .order_by(stock_ledger.c.sku, stock_ledger.c.location_id)
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_release_gives_the_orders_units_back_once(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 3), ("sku-1", "store-007", 4), ("sku-2", "dc-east", 5)])
    allocations = _checkout(db, "cart-1", "ord-1", {"sku-1": 6, "sku-2": 2})
    assert total_reserved(db, "sku-1") == 6 and total_reserved(db, "sku-2") == 2

    with db.uow() as uow:
        given_back = service.release_allocations(uow, order_id="ord-1", reason="order-cancelled")
        released = [e for e in uow.pending_events if e.type == "allocation.released"]
        assert [e.type for e in uow.pending_events] == ["allocation.released"]
        uow.commit()
    assert given_back == allocations
    assert released[0].model_dump(include={"order_id", "reason", "allocations"}) == {
        "order_id": "ord-1",
        "reason": "order-cancelled",
        "allocations": [
            {"sku": a.sku, "location_id": a.location_id, "quantity": a.quantity} for a in allocations
        ],
    }
    assert total_reserved(db, "sku-1") == 0 and total_reserved(db, "sku-2") == 0
    assert position(db, "sku-1", "store-007").on_hand == 4  # on hand never moved: nothing left
    assert {r.state for r in hold_states(db, "cart-1")} == {HoldState.RELEASED.value}
    assert sorted((s, loc, d, ref) for s, loc, d, ref in _ledger(db, "cancel")) == sorted(
        (a.sku, a.location_id, -a.quantity, "ord-1") for a in allocations
    )
    assert _drift(db) == []

    assert _release(db, "ord-1") == ([], [])  # a repeat finds nothing committed
    assert total_reserved(db, "sku-1") == 0 and total_reserved(db, "sku-2") == 0
    assert len(_ledger(db, "cancel")) == len(allocations)
    assert _drift(db) == []


def test_release_touches_only_that_order(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 10)])
    _checkout(db, "cart-1", "ord-1", {"sku-1": 3})
    _checkout(db, "cart-2", "ord-2", {"sku-1": 4})
    with transaction(db) as uow:
        service.reserve(uow, owner_id="cart-3", channel="web", demand={"sku-1": 2}, ttl_seconds=600)
    assert _release(db, "ord-1")[0] == [Allocation("sku-1", "dc-east", 3)]
    assert position(db, "sku-1", "dc-east").reserved == 6
    assert {r.state for r in hold_states(db, "cart-2")} == {HoldState.COMMITTED.value}
    assert {r.state for r in hold_states(db, "cart-3")} == {HoldState.HELD.value}
    assert _drift(db) == []


def test_an_order_without_holds_is_left_alone(db: Database) -> None:
    """A POS sale took its units off ``on_hand``; there is nothing reserved to give back."""
    setup_stock(db, [("sku-1", "store-007", 5)])
    with transaction(db) as uow:
        service.record_sale(uow, location_id="store-007", lines={"sku-1": 2}, order_id="ord-pos")
    assert _release(db, "ord-pos") == ([], [])
    assert _release(db, "ord-unknown") == ([], [])
    p = position(db, "sku-1", "store-007")
    assert (p.on_hand, p.reserved) == (3, 0)
    assert _ledger(db, "cancel") == []


def test_released_allocations_can_be_reserved_again(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 2)])
    _checkout(db, "cart-1", "ord-1", {"sku-1": 2})
    with db.uow() as uow, pytest.raises(InsufficientStock):
        service.reserve(uow, owner_id="cart-2", channel="web", demand={"sku-1": 1}, ttl_seconds=600)
    _release(db, "ord-1")
    with db.uow(readonly=True) as uow:
        [available] = service.availability(uow, skus=["sku-1"], channel="web")
    assert available.total == 2
    assert _checkout(db, "cart-2", "ord-2", {"sku-1": 2}) == [Allocation("sku-1", "dc-east", 2)]
    assert _drift(db) == []


def _release_statements(db: Database, order: str) -> int:
    with db.uow() as uow:
        uow.conn  # noqa: B018  (BEGIN outside the count)
        with _counting(db) as statements:
            given_back = service.release_allocations(uow, order_id=order, reason="order-cancelled")
        uow.commit()
    assert given_back
    return len(statements)


def test_release_costs_the_same_statements_for_1_and_10_lines(db: Database) -> None:
    skus = [f"sku-{i:02}" for i in range(10)]
    # 3 units per sku at each of two locations, 4 wanted: every line of the 10 splits in two.
    setup_stock(db, [(s, loc, 3) for s in skus for loc in ("dc-east", "store-007")])
    _checkout(db, "cart-1", "ord-1", {skus[0]: 4})
    _checkout(db, "cart-10", "ord-10", dict.fromkeys(skus[1:], 4))
    one = _release_statements(db, "ord-1")
    ten = _release_statements(db, "ord-10")
    assert one == ten == 5  # read holds, lock rows, move holds, move reserved, ledger
    with db.uow() as uow:
        uow.conn  # noqa: B018
        with _counting(db) as again:
            assert service.release_allocations(uow, order_id="ord-10", reason="again") == []
    assert len(again) == 1
    assert _drift(db) == []


@pytest.mark.slow
def test_racing_releases_of_one_order_give_back_once(db: Database) -> None:
    skus = ["a", "b", "c"]
    setup_stock(db, [(s, loc, 5) for s in skus for loc in ("dc-east", "store-007")])
    _checkout(db, "cart-1", "ord-1", dict.fromkeys(skus, 7))
    barrier = threading.Barrier(6)
    results: list[list[Allocation]] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            if i % 2:
                results.append(_release(db, "ord-1")[0])
            else:  # others reserving on the same rows, lines in the opposite order
                with transaction(db) as uow:
                    service.reserve(
                        uow,
                        owner_id=f"cart-x{i}",
                        channel="web",
                        demand={s: 1 for s in reversed(skus)},
                        ttl_seconds=600,
                    )
        except BaseException as exc:  # asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    assert [e for e in errors if "not enough stock" not in str(e)] == []
    assert sum(1 for r in results if r) == 1
    assert len(_ledger(db, "cancel")) == 6  # 3 skus x 2 locations, written once
    assert _drift(db) == []
