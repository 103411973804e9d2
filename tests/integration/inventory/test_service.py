"""Inventory service on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from omnicommerce.inventory import jobs, service
from omnicommerce.inventory.domain import Allocation, HoldState, InsufficientStock, UnknownLocation
from omnicommerce.inventory.models import stock_ledger
from omnicommerce.platform import clock
from omnicommerce.platform.db import Database, transaction
from tests.integration.inventory.support import hold_states, position, setup_stock, total_reserved
from tests.statements import counting as _counting


def _reserve(db: Database, owner: str, demand: dict[str, int], **kw: object) -> list:  # type: ignore[type-arg]
    with transaction(db) as uow:
        return service.reserve(
            uow,
            owner_id=owner,
            channel=kw.pop("channel", "web"),
            demand=demand,  # type: ignore[arg-type]
            ttl_seconds=kw.pop("ttl_seconds", 600),
            **kw,
        )  # type: ignore[arg-type]


def _commit(db: Database, owner: str, order: str, demand: dict[str, int], **kw: object) -> list[Allocation]:
    with transaction(db) as uow:
        return service.commit(
            uow,
            owner_id=owner,
            order_id=order,
            demand=demand,
            channel="web",
            location_id=kw.get("location_id"),
            capability=str(kw.get("capability", "ship")),
        )  # type: ignore[arg-type]


def _drift(db: Database) -> list[jobs.Drift]:
    with db.uow() as uow:
        return jobs.reserved_drift(uow)


def test_reserve_splits_most_atp_first_and_writes_ledger_and_event(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-1", "store-007", 3), ("sku-1", "store-008", 9)])
    with db.uow() as uow:
        held = service.reserve(uow, owner_id="cart-1", channel="web", demand={"sku-1": 6}, ttl_seconds=60)
        events = [e.type for e in uow.pending_events]
        uow.commit()
    # store-008 cannot ship; dc-east has the most ATP
    assert [(h.location_id, h.quantity) for h in held] == [("dc-east", 5), ("store-007", 1)]
    assert events == ["stock.reserved"]
    assert position(db, "sku-1", "dc-east").reserved == 5
    with db.engine.connect() as conn:
        reasons = conn.execute(
            select(stock_ledger.c.reason, stock_ledger.c.delta_reserved).where(
                stock_ledger.c.reason == "reserve"
            )
        ).all()
    assert sorted(r.delta_reserved for r in reasons) == [1, 5]
    assert _drift(db) == []


def test_reserve_is_idempotent_and_moves_only_the_delta(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-2", "dc-east", 5)])
    first = _reserve(db, "cart-1", {"sku-1": 3, "sku-2": 2})
    again = _reserve(db, "cart-1", {"sku-1": 3, "sku-2": 2})
    assert {h.id for h in again} == {h.id for h in first}
    assert total_reserved(db, "sku-1") == 3
    _reserve(db, "cart-1", {"sku-1": 5, "sku-2": 1})  # own holds never block: 5 of 5 is fine
    assert total_reserved(db, "sku-1") == 5 and total_reserved(db, "sku-2") == 1
    _reserve(db, "cart-1", {"sku-1": 0})
    assert total_reserved(db, "sku-1") == 0 and total_reserved(db, "sku-2") == 0
    assert _drift(db) == []


def test_insufficient_stock_changes_nothing_even_if_the_caller_commits(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 4), ("sku-2", "dc-east", 1)])
    _reserve(db, "cart-1", {"sku-1": 2})
    with db.uow() as uow:
        with pytest.raises(InsufficientStock) as err:
            service.reserve(
                uow, owner_id="cart-1", channel="web", demand={"sku-1": 5, "sku-2": 3}, ttl_seconds=60
            )
        uow.commit()
    assert err.value.shortages == {"sku-1": 1, "sku-2": 2}
    assert total_reserved(db, "sku-1") == 2 and total_reserved(db, "sku-2") == 0
    assert [(r.quantity, r.state) for r in hold_states(db, "cart-1")] == [(2, "held")]


def test_switching_to_pickup_moves_the_holds(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-1", "store-007", 5)])
    _reserve(db, "cart-1", {"sku-1": 2})
    moved = _reserve(db, "cart-1", {"sku-1": 2}, location_id="store-007", capability="pickup")
    assert [(h.location_id, h.quantity) for h in moved] == [("store-007", 2)]
    assert position(db, "sku-1", "dc-east").reserved == 0
    assert position(db, "sku-1", "store-007").reserved == 2
    assert ("sku-1", "dc-east", 2, "released") in [tuple(r) for r in hold_states(db, "cart-1")]
    with pytest.raises(InsufficientStock):
        _reserve(db, "cart-1", {"sku-1": 1}, location_id="dc-east", capability="pickup")


def test_channel_rule_limits_locations_and_hides_a_buffer(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-1", "store-007", 3)])
    with transaction(db) as uow:
        service.set_channel_rule(uow, "app", ["dc-east"], 2)
    with db.uow() as uow:
        [avail] = service.availability(uow, skus=["sku-1"], channel="app")
    assert (avail.total, [(x.location_id, x.atp) for x in avail.locations]) == (3, [("dc-east", 3)])
    with pytest.raises(InsufficientStock):
        _reserve(db, "cart-1", {"sku-1": 4}, channel="app")
    _reserve(db, "cart-1", {"sku-1": 3}, channel="app")
    with db.uow() as uow:
        [avail] = service.availability(uow, skus=["sku-1"], channel="web")
    assert avail.total == 2 + 3


def test_availability_sorts_by_distance_when_near_is_given(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-1", "store-007", 1), ("sku-1", "store-008", 2)])
    with db.uow() as uow:
        [near] = service.availability(uow, skus=["sku-1"], channel="web", near=(42.35, -71.05))
        [none, far] = service.availability(uow, skus=["sku-1", "nope"], channel="web")
    assert [x.location_id for x in near.locations] == ["store-007", "store-008", "dc-east"]
    assert near.locations[0].distance_km is not None and near.locations[0].distance_km < 5
    assert [x.location_id for x in far.locations] == ["dc-east", "store-008", "store-007"]
    assert (none.total, none.locations) == (0, [])


def test_commit_converts_holds_even_expired_ones_and_is_repeatable(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5), ("sku-2", "dc-east", 5)])
    start = clock.now()
    _reserve(db, "cart-1", {"sku-1": 2, "sku-2": 1}, ttl_seconds=60)
    clock.set_clock(lambda: start + timedelta(minutes=5))  # expired but not released
    allocations = _commit(db, "cart-1", "ord-1", {"sku-1": 2, "sku-2": 2})
    assert allocations == [Allocation("sku-1", "dc-east", 2), Allocation("sku-2", "dc-east", 2)]
    assert _commit(db, "cart-1", "ord-1", {"sku-1": 2, "sku-2": 2}) == allocations
    assert {r.state for r in hold_states(db, "cart-1")} == {HoldState.COMMITTED.value}
    assert total_reserved(db, "sku-1") == 2 and total_reserved(db, "sku-2") == 2
    with db.uow() as uow:
        assert jobs.expire_holds(uow) == 0
    assert _drift(db) == []


def test_commit_re_reserves_units_whose_holds_were_released(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 3)])
    start = clock.now()
    _reserve(db, "cart-1", {"sku-1": 2}, ttl_seconds=60)
    clock.set_clock(lambda: start + timedelta(minutes=5))
    with transaction(db) as uow:
        assert jobs.expire_holds(uow) == 1
    _reserve(db, "cart-2", {"sku-1": 2})
    with pytest.raises(InsufficientStock) as err:
        _commit(db, "cart-1", "ord-1", {"sku-1": 2})
    assert err.value.shortages == {"sku-1": 1}
    assert _commit(db, "cart-1", "ord-1", {"sku-1": 1}) == [Allocation("sku-1", "dc-east", 1)]
    assert _drift(db) == []


def test_release_gives_everything_back(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 5)])
    _reserve(db, "cart-1", {"sku-1": 4})
    with db.uow() as uow:
        service.release(uow, owner_id="cart-1", reason="abandoned")
        assert [e.type for e in uow.pending_events] == ["hold.released"]
        uow.commit()
    assert total_reserved(db, "sku-1") == 0
    assert [r.state for r in hold_states(db, "cart-1")] == ["released"]


def test_expired_holds_are_released_by_a_competing_reserve(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 4), ("sku-1", "store-007", 6)])
    start = clock.now()
    _reserve(db, "cart-1", {"sku-1": 10}, ttl_seconds=60)
    with pytest.raises(InsufficientStock):
        _reserve(db, "cart-2", {"sku-1": 1})
    clock.set_clock(lambda: start + timedelta(seconds=61))
    with db.uow() as uow:
        service.reserve(uow, owner_id="cart-2", channel="web", demand={"sku-1": 10}, ttl_seconds=60)
        assert "hold.expired" in [e.type for e in uow.pending_events]
        uow.commit()
    assert {r.state for r in hold_states(db, "cart-1")} == {"expired"}
    assert total_reserved(db, "sku-1") == 10
    assert _drift(db) == []


def test_an_owner_with_expired_holds_reserves_afresh(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 2)])
    start = clock.now()
    _reserve(db, "cart-1", {"sku-1": 2}, ttl_seconds=60)
    clock.set_clock(lambda: start + timedelta(seconds=90))
    held = _reserve(db, "cart-1", {"sku-1": 2}, ttl_seconds=60)
    assert [h.quantity for h in held] == [2] and held[0].expires_at > clock.now()
    assert total_reserved(db, "sku-1") == 2
    assert _drift(db) == []


def test_sale_and_count_may_leave_a_shortfall_which_is_flagged(db: Database) -> None:
    setup_stock(db, [("sku-1", "store-007", 3)])
    _reserve(db, "cart-1", {"sku-1": 2})
    with db.uow() as uow:
        service.record_sale(uow, location_id="store-007", lines={"sku-1": 2}, order_id="ord-pos-1")
        types = [e.type for e in uow.pending_events]
        uow.commit()
    assert types == ["stock.adjusted", "inventory.shortfall"]
    p = position(db, "sku-1", "store-007")
    assert (p.on_hand, p.reserved) == (1, 2)
    with pytest.raises(UnknownLocation), transaction(db) as uow:
        service.record_sale(uow, location_id="store-999", lines={"sku-1": 1}, order_id="x")


def test_sweeper_expires_and_drift_stays_zero(db: Database) -> None:
    setup_stock(db, [("sku-1", "dc-east", 10)])
    start = clock.now()
    for i in range(5):
        _reserve(db, f"cart-{i}", {"sku-1": 1}, ttl_seconds=30 + i * 60)
    clock.set_clock(lambda: start + timedelta(seconds=100))
    with transaction(db) as uow:
        assert jobs.expire_holds(uow, limit=1) == 1
    with transaction(db) as uow:
        assert jobs.expire_holds(uow) == 1
    assert total_reserved(db, "sku-1") == 3
    assert _drift(db) == []


def _statements(db: Database, owner: str, skus: list[str]) -> tuple[int, int]:
    demand = dict.fromkeys(skus, 2)
    with db.uow() as uow:
        uow.conn  # noqa: B018  (BEGIN outside the count)
        with _counting(db) as reserve_stmts:
            service.reserve(uow, owner_id=owner, channel="web", demand=demand, ttl_seconds=60)
        with _counting(db) as commit_stmts:
            service.commit(
                uow,
                owner_id=owner,
                order_id=f"ord-{owner}",
                demand=demand,
                channel="web",
                location_id=None,
                capability="ship",
            )
        uow.commit()
    return len(reserve_stmts), len(commit_stmts)


def test_reserve_and_commit_cost_the_same_statements_for_1_and_10_lines(db: Database) -> None:
    skus = [f"sku-{i:02}" for i in range(10)]
    setup_stock(db, [(s, loc, 5) for s in skus for loc in ("dc-east", "store-007")])
    one = _statements(db, "cart-1", skus[:1])
    ten = _statements(db, "cart-10", skus)
    assert one == ten
    # reserve: lock rows + rule, read holds, then stock/holds/ledger (one statement on PostgreSQL);
    # commit: lock rows + rule, one conditional UPDATE of the holds (+ the ledger on SQLite)
    assert one == ((3, 2) if db.dialect == "postgresql" else (5, 3))
    assert _drift(db) == []


def test_transfer_like_split_reserve_costs_the_same(db: Database) -> None:
    skus = [f"sku-{i:02}" for i in range(10)]
    setup_stock(db, [(s, loc, 1) for s in skus for loc in ("dc-east", "store-007")])
    with db.uow() as uow:
        uow.conn  # noqa: B018
        with _counting(db) as one:
            service.reserve(uow, owner_id="a", channel="web", demand={skus[0]: 2}, ttl_seconds=60)
        with _counting(db) as ten:
            service.reserve(
                uow, owner_id="b", channel="web", demand=dict.fromkeys(skus[1:], 2), ttl_seconds=60
            )
    assert len(one) == len(ten)
