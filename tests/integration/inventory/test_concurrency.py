"""Races on real databases: no oversell, no deadlock, no drift, no sweeper needed."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from omnicommerce.inventory import jobs, service
from omnicommerce.inventory.domain import InsufficientStock
from omnicommerce.inventory.models import stock_levels
from omnicommerce.platform import clock
from omnicommerce.platform.db import Database
from tests.integration.inventory.support import setup_stock, total_reserved

pytestmark = pytest.mark.slow


def _race(n: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return errors


def _try_reserve(db: Database, owner: str, demand: dict[str, int], ttl: int = 600) -> bool:
    with db.uow() as uow:
        try:
            service.reserve(uow, owner_id=owner, channel="web", demand=demand, ttl_seconds=ttl)
        except InsufficientStock:
            return False
        uow.commit()
        return True


def _rows(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(stock_levels)).all())


def _drift(db: Database) -> list[jobs.Drift]:
    with db.uow() as uow:
        return jobs.reserved_drift(uow)


def test_fifty_buyers_ten_units_three_locations(db: Database) -> None:
    setup_stock(db, [("hot", "dc-east", 4), ("hot", "store-007", 3), ("hot", "store-008", 3)])
    # store-008 only does pickup: let this channel see it for shipping too via capability per call
    wins: list[int] = []

    def buy(i: int) -> None:
        capability = "pickup" if i % 3 == 0 else "ship"
        location = "store-008" if i % 3 == 0 else None
        with db.uow() as uow:
            try:
                service.reserve(
                    uow,
                    owner_id=f"cart-{i}",
                    channel="web",
                    demand={"hot": 1},
                    location_id=location,
                    capability=capability,
                    ttl_seconds=600,
                )
            except InsufficientStock:
                return
            uow.commit()
            wins.append(i)

    assert _race(50, buy) == []
    assert len(wins) == 10
    rows = _rows(db)
    assert sum(r.reserved for r in rows) == 10
    assert all(r.reserved == r.on_hand for r in rows)
    assert all(r.on_hand - r.reserved - r.safety_stock >= 0 for r in rows)
    assert _drift(db) == []


def test_multi_line_reservations_in_opposite_orders_do_not_deadlock(db: Database) -> None:
    skus = ["a", "b", "c", "d"]
    setup_stock(db, [(s, loc, 30) for s in skus for loc in ("dc-east", "store-007")])

    def buy(i: int) -> None:
        order = skus if i % 2 else list(reversed(skus))
        demand = {s: 1 + (i % 3) for s in order}
        for round_ in range(3):
            _try_reserve(db, f"cart-{i}", demand if round_ != 1 else {s: 1 for s in reversed(order)})
        with db.uow() as uow:
            if i % 4 == 0:
                service.release(uow, owner_id=f"cart-{i}", reason="abandoned")
            else:
                try:
                    service.commit(
                        uow,
                        owner_id=f"cart-{i}",
                        order_id=f"ord-{i}",
                        demand=demand,
                        channel="web",
                        location_id=None,
                        capability="ship",
                    )
                except InsufficientStock:
                    return
            uow.commit()

    assert _race(24, buy) == []
    assert all(0 <= r.reserved <= r.on_hand for r in _rows(db))
    assert _drift(db) == []


def test_expired_holds_are_taken_back_by_racing_buyers_without_a_sweeper(db: Database) -> None:
    setup_stock(db, [("hot", "dc-east", 5), ("hot", "store-007", 5)])
    start = clock.now()
    assert _try_reserve(db, "early-bird", {"hot": 10}, ttl=60)
    clock.set_clock(lambda: start + timedelta(seconds=120))
    wins: list[int] = []

    def buy(i: int) -> None:
        if _try_reserve(db, f"cart-{i}", {"hot": 1}):
            wins.append(i)

    assert _race(30, buy) == []
    assert len(wins) == 10
    assert total_reserved(db, "hot") == 10
    assert _drift(db) == []


def test_random_workload_leaves_no_drift(db: Database) -> None:
    skus = ["a", "b", "c"]
    setup_stock(db, [(s, loc, 6) for s in skus for loc in ("dc-east", "store-007", "store-008")])
    start = clock.now()
    clock.set_clock(lambda: start)

    def work(i: int) -> None:
        rnd = random.Random(i)
        for step in range(8):
            owner = f"cart-{rnd.randrange(12)}"
            demand = {s: rnd.randrange(0, 4) for s in rnd.sample(skus, rnd.randrange(1, 4))}
            action = rnd.random()
            with db.uow() as uow:
                try:
                    if action < 0.55:
                        service.reserve(
                            uow,
                            owner_id=owner,
                            channel="web",
                            demand=demand,
                            ttl_seconds=rnd.choice([1, 600]),
                            location_id=rnd.choice([None, "store-008"]),
                            capability=rnd.choice(["ship", "pickup"]),
                        )
                    elif action < 0.7:
                        service.release(uow, owner_id=owner, reason="test")
                    elif action < 0.8:
                        service.commit(
                            uow,
                            owner_id=owner,
                            order_id=f"ord-{i}-{step}",
                            demand=demand,
                            channel="web",
                            location_id=None,
                            capability="ship",
                        )
                    elif action < 0.85:  # cancel one of this worker's orders (maybe again)
                        service.release_allocations(
                            uow, order_id=f"ord-{i}-{rnd.randrange(step + 1)}", reason="test"
                        )
                    elif action < 0.92:
                        jobs.expire_holds(uow, limit=3)
                    else:
                        service.record_sale(
                            uow,
                            location_id="store-007",
                            lines={rnd.choice(skus): 1},
                            order_id=f"pos-{i}-{step}",
                        )
                except InsufficientStock:
                    continue
                uow.commit()
            if step == 4 and i == 0:
                clock.set_clock(lambda: start + timedelta(seconds=30))

    assert _race(16, work) == []
    assert _drift(db) == []
    assert all(r.reserved >= 0 for r in _rows(db))
