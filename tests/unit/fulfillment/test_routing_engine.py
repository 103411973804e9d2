"""The per-order routing engine: exact (equal to a brute force written from the cost model),
never oversells, honours capacity, falls back to the greedy when the budget is gone, explains
every candidate."""

from __future__ import annotations

import itertools
import math

import highspy
from hypothesis import given, settings
from hypothesis import strategies as st

from omnicommerce.fulfillment.routing import Candidate, CostModel, Line, OrderToRoute, Plan, route_order
from omnicommerce.fulfillment.routing.exact import MilpSolver, enumerate_best
from omnicommerce.fulfillment.routing.table import build_table
from omnicommerce.inventory.domain import haversine_km

SKUS = ("a", "b", "c", "d")
WEIGHTS = {"a": 0.2, "b": 1.0, "c": 3.5, "d": 1.0}  # kg per unit (one SKU, one weight)
COSTS = CostModel()


def brute_force(order: OrderToRoute, candidates: list[Candidate], costs: CostModel) -> float:
    """Every way to split every line's units over the candidates (or leave them unfilled),
    priced straight from the cost model's definition."""
    per_line = []
    for line in order.lines:
        splits = [
            units
            for units in itertools.product(range(line.quantity + 1), repeat=len(candidates))
            if sum(units) <= line.quantity
        ]
        per_line.append(splits)
    best = math.inf
    for allocation in itertools.product(*per_line):
        taken: dict[tuple[str, int], int] = {}
        for line, units in zip(order.lines, allocation, strict=True):
            for c, u in enumerate(units):
                taken[(line.sku, c)] = taken.get((line.sku, c), 0) + u
        if any(u > candidates[c].stock.get(sku, 0) for (sku, c), u in taken.items()):
            continue
        best = min(best, price(order, candidates, costs, allocation))
    return best


def price(order: OrderToRoute, candidates: list[Candidate], costs: CostModel, allocation: tuple) -> float:
    used = {c for units in allocation for c, u in enumerate(units) if u > 0}
    total = costs.split_penalty * max(0, len(used) - 1)
    for c in used:
        cand = candidates[c]
        distance = haversine_km((order.lat, order.lon), (cand.lat, cand.lon))
        total += (
            costs.per_package
            + cand.pick_pack_cost
            + costs.per_km * distance
            + costs.capacity_balance_weight / (1 + cand.capacity_left)
        )
    for line, units in zip(order.lines, allocation, strict=True):
        for c, u in enumerate(units):
            delay = costs.delay_cost_per_unit if candidates[c].capacity_left <= 0 else 0.0
            bonus = costs.slow_stock_bonus.get((candidates[c].location_id, line.sku), 0.0)
            total += u * (costs.per_kg * line.weight_kg + delay - bonus)
        total += (line.quantity - sum(units)) * costs.lost_sale_cost_per_unit
    return total


@st.composite
def instances(
    draw: st.DrawFn, max_candidates: int = 3, max_lines: int = 3
) -> tuple[OrderToRoute, list[Candidate]]:
    n_lines = draw(st.integers(1, max_lines))
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=n_lines, max_size=n_lines))
    lines = tuple(Line(sku, draw(st.integers(1, 2)), WEIGHTS[sku]) for sku in skus)
    candidates = [
        Candidate(
            location_id=f"loc-{i}",
            kind=draw(st.sampled_from(["dc", "store"])),
            lat=draw(st.floats(40.0, 42.0)),
            lon=draw(st.floats(-75.0, -72.0)),
            stock={sku: draw(st.integers(0, 2)) for sku in SKUS},
            capacity_left=draw(st.integers(0, 2)),
            pick_pack_cost=draw(st.sampled_from([3.5, 6.0])),
        )
        for i in range(draw(st.integers(1, max_candidates)))
    ]
    return OrderToRoute("ord-1", lines, 41.0, -73.5), candidates


cost_models = st.builds(
    CostModel,
    per_package=st.sampled_from([0.0, 5.0]),
    per_km=st.sampled_from([0.002, 0.05]),
    split_penalty=st.sampled_from([0.0, 3.0, 12.0]),
    delay_cost_per_unit=st.sampled_from([0.5, 4.0]),
    capacity_balance_weight=st.sampled_from([0.0, 2.0]),
    lost_sale_cost_per_unit=st.sampled_from([5.0, 40.0]),
)


def assert_valid(plan: Plan, order: OrderToRoute, candidates: list[Candidate]) -> None:
    """Every unit shipped or unfilled; no location ships more than its stock; capacity-less
    locations only ship later; one package per location."""
    where = {c.location_id: (i, c) for i, c in enumerate(candidates)}
    taken: dict[tuple[str, str], int] = {}
    units = [[0] * len(candidates) for _ in order.lines]
    for a in plan.assignments:
        sku = order.lines[a.line_index].sku
        taken[(sku, a.location_id)] = taken.get((sku, a.location_id), 0) + a.quantity
        index, candidate = where[a.location_id]
        units[a.line_index][index] += a.quantity
        assert a.delayed == (candidate.capacity_left <= 0)
    for (sku, location), n in taken.items():
        assert n <= where[location][1].stock.get(sku, 0)
    unfilled = dict(plan.unfilled)
    for i, line in enumerate(order.lines):
        assert sum(units[i]) + unfilled.get(i, 0) == line.quantity
    assert plan.packages == len({a.location_id for a in plan.assignments})


@settings(max_examples=80, deadline=None)
@given(instances(), cost_models)
def test_route_order_equals_the_brute_force_optimum(
    instance: tuple[OrderToRoute, list[Candidate]], costs: CostModel
) -> None:
    order, candidates = instance
    plan = route_order(order, candidates, costs, time_budget_ms=10_000)
    assert plan.method in {"enumeration", "milp", "none"}
    assert math.isclose(plan.cost, brute_force(order, candidates, costs), abs_tol=1e-6)
    assert_valid(plan, order, candidates)
    units = tuple(tuple(_units(plan, i, c.location_id) for c in candidates) for i in range(len(order.lines)))
    assert math.isclose(price(order, candidates, costs, units), plan.cost, abs_tol=1e-6)


def _units(plan: Plan, line_index: int, location_id: str) -> int:
    return sum(
        a.quantity for a in plan.assignments if a.line_index == line_index and a.location_id == location_id
    )


@settings(max_examples=60, deadline=None)
@given(instances(max_candidates=4, max_lines=4), cost_models)
def test_the_milp_finds_the_same_optimum_as_enumeration(
    instance: tuple[OrderToRoute, list[Candidate]], costs: CostModel
) -> None:
    order, candidates = instance
    table = build_table(order, candidates, costs)
    everything = list(range(len(table.options)))
    milp = MilpSolver().solve(table, everything, time_limit_s=10)
    assert milp is not None
    assert math.isclose(milp.cost, enumerate_best(table, everything).cost, abs_tol=1e-6)


@settings(max_examples=40, deadline=None)
@given(instances(max_candidates=4, max_lines=4))
def test_with_no_time_left_the_greedy_answers_with_a_valid_plan(
    instance: tuple[OrderToRoute, list[Candidate]],
) -> None:
    order, candidates = instance
    plan = route_order(order, candidates, COSTS, time_budget_ms=0)
    assert plan.method in {"greedy", "none"}
    assert_valid(plan, order, candidates)
    assert plan.cost >= brute_force(order, candidates, COSTS) - 1e-6


def store(name: str, lat: float, stock: dict[str, int], *, capacity: int = 5, cost: float = 6.0) -> Candidate:
    return Candidate(name, "store", lat, -73.9, stock, capacity, cost)


def test_one_package_beats_the_closest_locations_when_splitting_costs_more() -> None:
    order = OrderToRoute("ord-1", (Line("a", 1, 1.0), Line("b", 1, 1.0)), 40.7, -73.9)
    near_a = store("near-a", 40.71, {"a": 1})
    near_b = store("near-b", 40.72, {"b": 1})
    far_both = store("far-both", 41.5, {"a": 3, "b": 3})
    plan = route_order(order, [near_a, near_b, far_both], COSTS)
    assert {a.location_id for a in plan.assignments} == {"far-both"}
    assert plan.packages == 1
    assert plan.unfilled == ()


def test_a_location_without_capacity_ships_later_and_pays_the_delay() -> None:
    order = OrderToRoute("ord-1", (Line("a", 2, 1.0),), 40.7, -73.9)
    full = store("full", 40.7, {"a": 5}, capacity=0)
    plan = route_order(order, [full], COSTS)
    assert plan.assignments[0].delayed
    assert (
        plan.cost
        > route_order(order, [store("free", 40.7, {"a": 5})], COSTS).cost
        + 2 * COSTS.delay_cost_per_unit
        - 1e-6
    )


def test_units_nobody_has_are_unfilled_and_priced_as_lost_sales() -> None:
    order = OrderToRoute("ord-1", (Line("a", 3, 1.0), Line("z", 1, 1.0)), 40.7, -73.9)
    plan = route_order(order, [store("s", 40.7, {"a": 2})], COSTS)
    assert plan.unfilled == ((0, 1), (1, 1))
    assert sum(a.quantity for a in plan.assignments) == 2


def test_two_lines_of_one_sku_never_count_the_stock_twice() -> None:
    order = OrderToRoute("ord-1", (Line("a", 2, 1.0), Line("a", 2, 1.0)), 40.7, -73.9)
    plan = route_order(order, [store("s", 40.7, {"a": 3})], COSTS)
    assert sum(a.quantity for a in plan.assignments) == 3
    assert sum(q for _, q in plan.unfilled) == 1


def test_slow_stock_bonus_moves_units_to_the_location_clearing_them() -> None:
    order = OrderToRoute("ord-1", (Line("a", 1, 1.0),), 40.7, -73.9)
    near, far = store("near", 40.7, {"a": 1}), store("far", 40.9, {"a": 1})
    assert route_order(order, [near, far], COSTS).assignments[0].location_id == "near"
    clearing = CostModel(slow_stock_bonus={("far", "a"): 5.0})
    assert route_order(order, [near, far], clearing).assignments[0].location_id == "far"


def test_explanation_lists_every_candidate_with_a_reason() -> None:
    order = OrderToRoute("ord-1", (Line("a", 1, 1.0),), 40.7, -73.9)
    candidates = [
        store("cheap", 40.7, {"a": 1}),
        store("dear", 40.7, {"a": 1}, cost=9.0),
        store("empty", 40.7, {}),
    ]
    plan = route_order(order, candidates, COSTS)
    reports = {r.location_id: r for r in plan.candidates}
    assert list(reports) == ["cheap", "dear", "empty"]
    assert reports["cheap"].chosen and reports["cheap"].reason == "chosen"
    assert not reports["dear"].chosen and reports["dear"].reason == "dearer than cheap by 3.00 per package"
    assert reports["empty"].reason == "no stock for any line" and reports["empty"].units_available == 0
    assert reports["dear"].package_cost > reports["cheap"].package_cost


def test_an_order_nobody_can_serve_gets_an_empty_plan() -> None:
    order = OrderToRoute("ord-1", (Line("a", 1, 1.0),), 40.7, -73.9)
    plan = route_order(order, [store("s", 40.7, {"b": 4})], COSTS)
    assert plan.assignments == () and plan.unfilled == ((0, 1),) and plan.packages == 0
    assert plan.cost == COSTS.lost_sale_cost_per_unit


def test_with_stock_nowhere_the_milp_leaves_every_unit_unfilled() -> None:
    order = OrderToRoute("ord-1", (Line("a", 2, 0.5),), 41.0, -73.5)
    table = build_table(order, [store("empty", 40.7, {"a": 0}, capacity=0)], COSTS)
    solved = MilpSolver().solve(table, list(range(len(table.options))), time_limit_s=1)
    assert solved is not None
    assert math.isclose(solved.cost, enumerate_best(table, list(range(len(table.options)))).cost)
    assert route_order(order, [store("empty", 40.7, {"a": 0}, capacity=0)], COSTS).unfilled == ((0, 2),)


def test_the_milp_still_solves_after_another_highs_instance_ran_first() -> None:
    """HiGHS sizes one thread scheduler per process at its first run: an instance that asks for
    another size afterwards fails every solve (the batch optimiser's instances run first in a
    server that re-plans)."""
    order = OrderToRoute("ord-1", (Line("a", 1, 0.5), Line("b", 1, 0.5)), 41.0, -73.5)
    candidates = [store("s1", 40.7, {"a": 1}), store("s2", 40.8, {"a": 1, "b": 1})]
    first = highspy.Highs()
    first.setOptionValue("output_flag", False)
    first.passModel(highspy.HighsLp())
    first.run()
    table = build_table(order, candidates, COSTS)
    everything = list(range(len(table.options)))
    assert MilpSolver().solve(table, everything, time_limit_s=1) is not None
