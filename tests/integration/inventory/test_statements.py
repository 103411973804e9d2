"""Statement economy of the hot paths (reserve, commit, availability) and the paths around them.

The happy paths are counted exactly per dialect so that a regression shows; the fallbacks are
checked for what they leave behind (holds, ``reserved``, ledger, drift)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from omnicommerce.inventory import jobs, repository, service
from omnicommerce.inventory.domain import Allocation, Hold, HoldState, InsufficientStock
from omnicommerce.inventory.models import holds, locations, stock_ledger
from omnicommerce.platform import clock
from omnicommerce.platform.db import Database, transaction
from tests.integration.inventory.support import hold_states, position, setup_stock, total_reserved
from tests.statements import counting as _counting

SKUS = [f"sku-{i:02}" for i in range(10)]


def _reserve(db: Database, owner: str, demand: dict[str, int], **kw: Any) -> list[Hold]:
    with transaction(db) as uow:
        return service.reserve(uow, owner_id=owner, channel="web", demand=demand, ttl_seconds=600, **kw)


def _commit(db: Database, owner: str, order: str, demand: dict[str, int], **kw: Any) -> list[Allocation]:
    with transaction(db) as uow:
        return service.commit(
            uow,
            owner_id=owner,
            order_id=order,
            demand=demand,
            channel="web",
            location_id=kw.get("location_id"),
            capability=kw.get("capability", "ship"),
        )


def _counted(db: Database, work: Any) -> int:
    with db.uow() as uow:
        uow.conn  # noqa: B018  (BEGIN outside the count)
        with _counting(db) as statements:
            work(uow)
        uow.commit()
    return len(statements)


def _ledger(db: Database, reason: str) -> list[Any]:
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                select(stock_ledger.c.sku, stock_ledger.c.location_id, stock_ledger.c.delta_reserved)
                .where(stock_ledger.c.reason == reason)
                .order_by(stock_ledger.c.sku, stock_ledger.c.location_id)
            ).all()
        )


def _no_drift(db: Database) -> bool:
    with db.uow() as uow:
        return jobs.reserved_drift(uow) == []


def test_reserve_new_units_costs_3_statements_on_postgresql_5_on_sqlite(db: Database) -> None:
    setup_stock(db, [(s, loc, 5) for s in SKUS for loc in ("dc-east", "store-007")])
    counts = [
        _counted(
            db,
            lambda uow, skus=skus, owner=owner: service.reserve(
                uow, owner_id=owner, channel="web", demand=dict.fromkeys(skus, 2), ttl_seconds=60
            ),
        )
        for owner, skus in (("one", SKUS[:1]), ("ten", SKUS))
    ]
    assert counts == [3, 3] if db.dialect == "postgresql" else [5, 5]
    assert total_reserved(db, SKUS[0]) == 4 and _no_drift(db)
    assert len(_ledger(db, "reserve")) == 11


def test_re_reserving_the_same_demand_costs_3_statements(db: Database) -> None:
    """A cart re-checked (fulfilment set, checkout): lock, read the holds, extend them."""
    setup_stock(db, [(s, "dc-east", 5) for s in SKUS])
    for owner, skus in (("one", SKUS[:1]), ("ten", SKUS)):
        first = _reserve(db, owner, dict.fromkeys(skus, 2))
        n = _counted(
            db,
            lambda uow, skus=skus, owner=owner: service.reserve(
                uow, owner_id=owner, channel="web", demand=dict.fromkeys(skus, 2), ttl_seconds=60
            ),
        )
        assert n == 3
        again = [(h.id, h.state) for h in _reserve(db, owner, dict.fromkeys(skus, 2))]
        assert again == [(h.id, h.state) for h in first]
    assert total_reserved(db, SKUS[0]) == 4 and _no_drift(db)


def test_rebalancing_writes_everything_in_one_statement_on_postgresql(db: Database) -> None:
    """Releasing, keeping, adding and logging at once: still one write statement on PostgreSQL."""
    setup_stock(db, [(s, "dc-east", 5) for s in SKUS[:3]])
    _reserve(db, "cart", {SKUS[0]: 2, SKUS[1]: 2})
    n = _counted(
        db,
        lambda uow: service.reserve(
            uow, owner_id="cart", channel="web", demand={SKUS[0]: 2, SKUS[2]: 3}, ttl_seconds=60
        ),
    )
    assert n == (3 if db.dialect == "postgresql" else 7)
    assert [(r.sku, r.quantity, r.state) for r in hold_states(db, "cart")] == [
        (SKUS[0], 2, "held"),
        (SKUS[1], 2, "released"),
        (SKUS[2], 3, "held"),
    ]
    assert [total_reserved(db, s) for s in SKUS[:3]] == [2, 0, 3]
    assert [r.delta_reserved for r in _ledger(db, "release")] == [-2]
    assert _no_drift(db)


def test_commit_happy_path_costs_2_statements_on_postgresql_3_on_sqlite(db: Database) -> None:
    setup_stock(db, [(s, loc, 1) for s in [*SKUS, "solo"] for loc in ("dc-east", "store-007")])
    counts = []
    for owner, skus in (("one", ["solo"]), ("ten", SKUS)):
        demand = dict.fromkeys(skus, 2)  # 2 units: one from each location, two holds per sku
        _reserve(db, owner, demand)
        counts.append(
            _counted(
                db,
                lambda uow, demand=demand, owner=owner: service.commit(
                    uow,
                    owner_id=owner,
                    order_id=f"ord-{owner}",
                    demand=demand,
                    channel="web",
                    location_id=None,
                    capability="ship",
                ),
            )
        )
        assert {r.state for r in hold_states(db, owner)} == {"committed"}
    assert counts == ([2, 2] if db.dialect == "postgresql" else [3, 3])
    commits = _ledger(db, "commit")
    assert len(commits) == 22 and {r.delta_reserved for r in commits} == {0}
    with db.engine.connect() as conn:
        ids = conn.execute(select(stock_ledger.c.id).where(stock_ledger.c.reason == "commit")).scalars().all()
    assert len(set(ids)) == 22 and all(i.startswith("led_") and len(i) == 30 for i in ids)
    assert _no_drift(db)


def test_commit_happy_path_events_and_allocations(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 1), ("sku-1", "store-007", 5)])
    _reserve(db, "cart", {"sku-1": 3})
    with db.uow() as uow:
        allocations = service.commit(
            uow,
            owner_id="cart",
            order_id="ord-1",
            demand={"sku-1": 3},
            channel="web",
            location_id=None,
            capability="ship",
        )
        events = uow.pending_events
        uow.commit()
    assert allocations == [Allocation("sku-1", "store-007", 3)]
    assert [e.type for e in events] == ["stock.committed"]
    with db.engine.connect() as conn:
        assert set(conn.execute(select(holds.c.order_id).where(holds.c.owner_id == "cart")).scalars()) == {
            "ord-1"
        }
    assert _commit(db, "cart", "ord-1", {"sku-1": 3}) == allocations  # a repeat
    assert len(_ledger(db, "commit")) == 1


def test_commit_releases_surplus_and_holds_of_skus_no_longer_wanted(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-2", "dc-east", 5)])
    _reserve(db, "cart", {"sku-1": 3, "sku-2": 2})
    assert _commit(db, "cart", "ord-1", {"sku-1": 2}) == [Allocation("sku-1", "dc-east", 2)]
    assert [(r.sku, r.quantity, r.state) for r in hold_states(db, "cart")] == [
        ("sku-1", 2, "committed"),
        ("sku-1", 3, "released"),
        ("sku-2", 2, "released"),
    ]
    assert total_reserved(db, "sku-1") == 2 and total_reserved(db, "sku-2") == 0
    assert _no_drift(db)


def test_commit_tops_up_missing_units(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5)])
    _reserve(db, "cart", {"sku-1": 2})
    assert _commit(db, "cart", "ord-1", {"sku-1": 4}) == [Allocation("sku-1", "dc-east", 4)]
    assert total_reserved(db, "sku-1") == 4 and _no_drift(db)
    with pytest.raises(InsufficientStock):
        _reserve(db, "other", {"sku-1": 2})


def test_commit_moves_holds_off_a_location_that_may_no_longer_serve(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-1", "store-007", 5)])
    _reserve(db, "a", {"sku-1": 2}, location_id="store-007")
    _reserve(db, "b", {"sku-1": 2}, location_id="store-007")
    _reserve(db, "c", {"sku-1": 1}, location_id="store-007")
    # another location asked for at checkout
    assert _commit(db, "a", "ord-a", {"sku-1": 2}, location_id="dc-east") == [
        Allocation("sku-1", "dc-east", 2)
    ]
    # the channel stops seeing store-007
    with transaction(db) as uow:
        service.set_channel_rule(uow, "web", ["dc-east"], 0)
    assert _commit(db, "b", "ord-b", {"sku-1": 2}) == [Allocation("sku-1", "dc-east", 2)]
    # store-007 closes
    with db.engine.begin() as conn:
        conn.execute(update(locations).where(locations.c.id == "store-007").values(active=False))
    with transaction(db) as uow:
        service.set_channel_rule(uow, "web", [], 0)
    assert _commit(db, "c", "ord-c", {"sku-1": 1}) == [Allocation("sku-1", "dc-east", 1)]
    assert position(db, "sku-1", "store-007").reserved == 0
    assert position(db, "sku-1", "dc-east").reserved == 5
    assert _no_drift(db)


def test_commit_of_expired_but_unreleased_holds_takes_the_happy_path(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 2)])
    start = clock.now()
    _reserve(db, "cart", {"sku-1": 2})
    clock.set_clock(lambda: start + timedelta(hours=1))
    n = _counted(
        db,
        lambda uow: service.commit(
            uow,
            owner_id="cart",
            order_id="o",
            demand={"sku-1": 2},
            channel="web",
            location_id=None,
            capability="ship",
        ),
    )
    assert n == (2 if db.dialect == "postgresql" else 3)
    with db.uow() as uow:
        assert jobs.expire_holds(uow) == 0  # committed: the sweeper has nothing to take back
    assert total_reserved(db, "sku-1") == 2 and _no_drift(db)


def test_settle_writes_nothing_but_the_moved_rows_when_one_row_refuses(db: Database) -> None:
    """The lost-race path of :func:`repository.settle`: holds and ledger are gated on every row
    having moved; the caller undoes the rows that did."""
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-2", "dc-east", 1)])
    now = clock.now()
    new = [
        Hold("hld_a", "cart", "sku-1", "dc-east", 2, HoldState.HELD, now),
        Hold("hld_b", "cart", "sku-2", "dc-east", 2, HoldState.HELD, now),
    ]
    writes = repository.HoldWrites(
        deltas={("sku-1", "dc-east"): 2, ("sku-2", "dc-east"): 2},
        new=new,
        ledger=service._hold_ledger(new, "reserve", "cart"),
    )
    with db.uow() as uow:
        settled = repository.settle(uow.conn, writes)
        assert not settled.complete(writes)
        assert settled.applied == {("sku-1", "dc-east")}
        assert (settled.released, settled.kept) == (set(), set())
        assert uow.conn.execute(select(holds.c.id)).all() == []
        assert (
            uow.conn.execute(select(stock_ledger.c.id).where(stock_ledger.c.reason == "reserve")).all() == []
        )
        repository.shift_reserved(uow.conn, {("sku-1", "dc-east"): -2})
        uow.commit()
    assert total_reserved(db, "sku-1") == 0 and total_reserved(db, "sku-2") == 0


def test_availability_costs_one_statement(db: Database) -> None:
    setup_stock(db, [(s, "dc-east", 3) for s in SKUS])
    with transaction(db) as uow:
        service.set_channel_rule(uow, "app", ["dc-east"], 1)
    for skus in (SKUS[:1], SKUS):
        out: list[Any] = []
        n = _counted(
            db,
            lambda uow, skus=skus, out=out: out.extend(service.availability(uow, skus=skus, channel="app")),
        )
        assert n == 1
        assert [a.total for a in out] == [2] * len(skus)
