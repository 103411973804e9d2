"""The batch optimizer: feasible, never worse than routing one order at a time, never below its
own lower bound, and that bound is a true lower bound (checked against a brute force)."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from omnicommerce.fulfillment.routing import (
    Candidate,
    CostModel,
    Line,
    OrderToRoute,
    Plan,
    route_batch,
    route_order,
)
from omnicommerce.fulfillment.routing.baselines import cost_greedy, naive_greedy
from omnicommerce.fulfillment.routing.instance import InstanceParameters, generate
from omnicommerce.fulfillment.routing.sequence import route_in_sequence
from omnicommerce.inventory.domain import haversine_km

COSTS = CostModel()
SMALL = InstanceParameters(
    seed=7, orders=80, locations=14, skus=300, dcs=2, dark_stores=2, metros=3,
    dc_assortment=150, dark_assortment=60, store_assortment_head=15, store_capacity=(2, 6),
    dc_capacity=(15, 25), dark_capacity=(4, 8),
)  # fmt: skip


def check_feasible(orders: list[OrderToRoute], candidates: list[Candidate], plans: tuple[Plan, ...]) -> None:
    where = {c.location_id: c for c in candidates}
    taken: dict[tuple[str, str], int] = defaultdict(int)
    same_day: dict[str, set[str]] = defaultdict(set)
    for order, plan in zip(orders, plans, strict=True):
        served = [0] * len(order.lines)
        for a in plan.assignments:
            taken[(order.lines[a.line_index].sku, a.location_id)] += a.quantity
            served[a.line_index] += a.quantity
            if not a.delayed:
                same_day[a.location_id].add(order.order_id)
        for i, line in enumerate(order.lines):
            assert served[i] + dict(plan.unfilled).get(i, 0) == line.quantity
    for (sku, location), n in taken.items():
        assert n <= where[location].stock.get(sku, 0), (sku, location)
    for location, orders_today in same_day.items():
        assert len(orders_today) <= where[location].capacity_left, location


def test_batch_is_feasible_no_worse_than_per_order_and_above_its_bound() -> None:
    instance = generate(SMALL)
    orders, candidates = list(instance.orders), list(instance.candidates)
    result = route_batch(orders, candidates, COSTS, time_budget_s=5)
    check_feasible(orders, candidates, result.plans)
    per_order = route_in_sequence(orders, candidates, COSTS, route_order)
    check_feasible(orders, candidates, per_order.plans)
    assert result.bound_kind == "lagrangian"
    assert 0 < result.bound <= result.cost + 1e-6
    assert result.cost <= sum(p.cost for p in per_order.plans) + 1e-6
    assert math.isclose(result.cost, sum(p.cost for p in result.plans), abs_tol=1e-3)  # plans round to 1e-6
    for router in (naive_greedy, cost_greedy):
        baseline = route_in_sequence(orders, candidates, COSTS, router)
        check_feasible(orders, candidates, baseline.plans)
        assert sum(p.cost for p in baseline.plans) >= result.bound


def test_batch_leaves_the_last_units_to_the_order_that_needs_them() -> None:
    """Order 1 could take store A's only unit of 'a'; order 2 needs 'a' and 'b', and only A has 'b'.
    One at a time, order 1 takes it and order 2 ships in two packages; together, order 1 ships
    from the DC and order 2 in one package from A."""
    store = Candidate("store-a", "store", 40.70, -73.90, {"a": 1, "b": 1}, 5, 6.0)
    dc = Candidate("dc", "dc", 44.00, -74.60, {"a": 10}, 50, 6.0)  # farther, so dearer
    first = OrderToRoute("ord-1", (Line("a", 1, 1.0),), 40.70, -73.91)
    second = OrderToRoute("ord-2", (Line("a", 1, 1.0), Line("b", 1, 1.0)), 40.71, -73.90)
    one_at_a_time = route_in_sequence([first, second], [store, dc], COSTS, route_order).plans
    assert one_at_a_time[0].assignments[0].location_id == "store-a" and one_at_a_time[1].packages == 2
    result = route_batch([first, second], [store, dc], COSTS, time_budget_s=3)
    assert [a.location_id for a in result.plans[0].assignments] == ["dc"]
    assert {a.location_id for a in result.plans[1].assignments} == {"store-a"}
    assert result.cost < sum(p.cost for p in one_at_a_time)


def test_capacity_is_shared_the_busy_store_ships_the_rest_later() -> None:
    store = Candidate("store", "store", 40.70, -73.90, {"a": 5}, 1, 6.0)
    orders = [OrderToRoute(f"ord-{i}", (Line("a", 1, 1.0),), 40.70, -73.90) for i in range(3)]
    result = route_batch(orders, [store], COSTS, time_budget_s=3)
    delayed = [a.delayed for p in result.plans for a in p.assignments]
    assert sorted(delayed) == [False, True, True]
    assert result.bound <= result.cost + 1e-9


@st.composite
def tiny_batches(draw: st.DrawFn) -> tuple[list[OrderToRoute], list[Candidate]]:
    candidates = [
        Candidate(
            location_id=f"loc-{i}",
            kind="store",
            lat=draw(st.floats(40.0, 41.0)),
            lon=draw(st.floats(-74.0, -73.0)),
            stock={sku: draw(st.integers(0, 2)) for sku in "ab"},
            capacity_left=draw(st.integers(0, 2)),
            pick_pack_cost=draw(st.sampled_from([3.5, 6.0])),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    orders = []
    for n in range(draw(st.integers(1, 3))):
        skus = draw(st.lists(st.sampled_from("ab"), min_size=1, max_size=2, unique=True))
        lines = tuple(Line(sku, draw(st.integers(1, 2)), 1.0) for sku in skus)
        orders.append(
            OrderToRoute(f"ord-{n}", lines, draw(st.floats(40.0, 41.0)), draw(st.floats(-74.0, -73.0)))
        )
    return orders, candidates


def batch_brute_force(orders: list[OrderToRoute], candidates: list[Candidate], costs: CostModel) -> float:
    """Every joint allocation; where more packages leave a location than its capacity, the
    smallest ones ship later (the cheapest choice of which to delay)."""
    per_order = []
    for order in orders:
        per_line = [
            [
                u
                for u in itertools.product(range(line.quantity + 1), repeat=len(candidates))
                if sum(u) <= line.quantity
            ]
            for line in order.lines
        ]
        per_order.append(list(itertools.product(*per_line)))
    best = math.inf
    for joint in itertools.product(*per_order):
        taken: dict[tuple[str, int], int] = defaultdict(int)
        packages: dict[int, list[int]] = defaultdict(list)
        total = 0.0
        for order, allocation in zip(orders, joint, strict=True):
            per_location = defaultdict(int)
            for line, units in zip(order.lines, allocation, strict=True):
                total += (line.quantity - sum(units)) * costs.lost_sale_cost_per_unit
                for c, u in enumerate(units):
                    taken[(line.sku, c)] += u
                    per_location[c] += u
                    total += u * costs.per_kg * line.weight_kg
            used = [c for c, u in per_location.items() if u > 0]
            total += costs.split_penalty * max(0, len(used) - 1)
            for c in used:
                cand = candidates[c]
                total += (
                    costs.per_package
                    + cand.pick_pack_cost
                    + costs.per_km * haversine_km((order.lat, order.lon), (cand.lat, cand.lon))
                )
                packages[c].append(per_location[c])
        if any(u > candidates[c].stock.get(sku, 0) for (sku, c), u in taken.items()):
            continue
        for c, sizes in packages.items():
            late = sorted(sizes)[: max(0, len(sizes) - candidates[c].capacity_left)]
            total += costs.delay_cost_per_unit * sum(late)
        best = min(best, total)
    return best


@settings(max_examples=150, deadline=None)
@given(tiny_batches())
def test_bound_below_the_true_optimum_and_batch_finds_it(
    batch: tuple[list[OrderToRoute], list[Candidate]],
) -> None:
    orders, candidates = batch
    optimum = batch_brute_force(orders, candidates, COSTS)
    result = route_batch(orders, candidates, COSTS, time_budget_s=3, mip_rel_gap=0.0)
    check_feasible(orders, candidates, result.plans)
    assert result.bound <= optimum + 1e-6
    assert math.isclose(result.cost, optimum, abs_tol=1e-6)
