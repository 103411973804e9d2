"""Column generation over shared rows: which options may matter once a row is shared, the
branch and bound that prices each order, and the Lagrangian bound (below a brute force)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from omnicommerce.fulfillment.routing import Candidate, CostModel, Line, OrderToRoute
from omnicommerce.fulfillment.routing.batch import _alloc_of
from omnicommerce.fulfillment.routing.columns import ColumnGeneration, kept_options, over_used
from omnicommerce.fulfillment.routing.exact import MilpSolver, branch_best, enumerate_best, exact_bound
from omnicommerce.fulfillment.routing.table import Option, build_table, dominance_prune, with_options
from tests.unit.fulfillment.test_routing_batch import batch_brute_force, tiny_batches
from tests.unit.fulfillment.test_routing_engine import cost_models, instances

COSTS = CostModel()


def store(name: str, lat: float, stock: dict[str, int], *, capacity: int = 5, cost: float = 6.0) -> Candidate:
    return Candidate(name, "store", lat, -73.9, stock, capacity, cost)


@settings(max_examples=80, deadline=None)
@given(instances(max_candidates=4, max_lines=4), cost_models)
def test_branch_and_bound_finds_the_enumeration_optimum(
    instance: tuple[OrderToRoute, list[Candidate]], costs: CostModel
) -> None:
    order, candidates = instance
    table = build_table(order, candidates, costs)
    everything = list(range(len(table.options)))
    found = branch_best(table, everything)
    assert found is not None
    assert math.isclose(found.cost, enumerate_best(table, everything).cost, abs_tol=1e-6)


@settings(max_examples=60, deadline=None)
@given(instances(max_candidates=4, max_lines=3), st.floats(0.0, 6.0))
def test_branch_and_bound_with_today_and_later_twins_opens_at_most_one_of_them(
    instance: tuple[OrderToRoute, list[Candidate]], price: float
) -> None:
    """A priced capacity row gives a location two options (today, dearer by the price; later,
    with the delay cost per unit): never both."""
    order, candidates = instance
    table = build_table(order, candidates, COSTS)
    options: list[Option] = []
    for option in table.options:
        if option.delayed:
            options.append(option)
            continue
        today = len(options)
        later = tuple(u + COSTS.delay_cost_per_unit for u in option.unit)
        options.append(
            Option(option.candidate, option.fixed + price, option.unit, option.avail, False, today + 1)
        )
        options.append(Option(option.candidate, option.fixed, later, option.avail, True, today))
    twinned = with_options(table, options)
    everything = list(range(len(options)))
    found = branch_best(twinned, everything)
    assert found is not None
    assert math.isclose(found.cost, enumerate_best(twinned, everything).cost, abs_tol=1e-6)
    locations = [twinned.options[k].candidate for k in found.chosen]
    assert len(locations) == len(set(locations))


def test_exact_bound_is_exact_on_orders_past_the_enumeration_limit() -> None:
    lines = tuple(Line(sku, 2, 1.0) for sku in "abcd")
    order = OrderToRoute("ord-1", lines, 40.7, -73.9)
    candidates = [
        store(f"s{i}", 40.7 + i / 50, {sku: 1 + (i + j) % 2 for j, sku in enumerate("abcd")})
        for i in range(7)
    ]
    table = build_table(order, candidates, COSTS)
    allowed = dominance_prune(table)
    solution, lower = exact_bound(MilpSolver(), table, allowed, 5.0)
    milp = MilpSolver().solve(table, allowed, time_limit_s=10)
    assert milp is not None
    assert math.isclose(solution.cost, milp.cost, abs_tol=1e-6) and math.isclose(lower, solution.cost)


def test_an_option_dominated_only_by_shared_stock_is_kept() -> None:
    """For the order alone, near store X dominates Y (same stock, cheaper). Once X's unit of 'a'
    is shared, another order may take it: Y must stay (single-order dominance is not valid in a
    batch), while an option a free one dominates still goes."""
    order = OrderToRoute("ord-1", (Line("a", 1, 1.0),), 40.7, -73.9)
    x, y = store("x", 40.7, {"a": 1}), store("y", 41.2, {"a": 1})
    z = store("z", 42.5, {"a": 1})  # farther than y: dominated by y, which nobody else wants
    table = build_table(order, [x, y, z], COSTS)
    assert [table.options[k].candidate for k in dominance_prune(table)] == [0]
    assert kept_options(table, set()) is None  # nothing shared: the order's own optimum stands
    kept = kept_options(table, {("a", 0)})
    assert kept is not None and sorted(table.options[k].candidate for k in kept) == [0, 1]


def test_the_bound_rises_above_each_order_alone_when_two_want_the_last_unit() -> None:
    near = store("near", 40.7, {"a": 1})
    far = store("far", 42.0, {"a": 5})
    orders = [OrderToRoute(f"ord-{i}", (Line("a", 1, 1.0),), 40.7, -73.9) for i in range(2)]
    tables = [build_table(o, [near, far], COSTS) for o in orders]
    alone = [exact_bound(MilpSolver(), t, dominance_prune(t), 1.0) for t in tables]
    allocs = [_alloc_of(t, s) for t, (s, _) in zip(tables, alone, strict=True)]
    generation = ColumnGeneration(tables, [near, far], COSTS, [b for _, b in alone], allocs)
    generation.add_rows(over_used(tables, allocs, [near, far]))
    bound = generation.relax(math.inf)
    optimum = batch_brute_force(orders, [near, far], COSTS)
    assert sum(b for _, b in alone) < bound <= optimum + 1e-6
    assert math.isclose(bound, optimum, abs_tol=1e-6)  # one order ships from far: the bound is exact


@settings(max_examples=120, deadline=None)
@given(tiny_batches())
def test_every_round_of_column_generation_bounds_the_true_optimum(
    batch: tuple[list[OrderToRoute], list[Candidate]],
) -> None:
    orders, candidates = batch
    optimum = batch_brute_force(orders, candidates, COSTS)
    tables = [build_table(o, candidates, COSTS) for o in orders]
    alone = [exact_bound(MilpSolver(), t, dominance_prune(t), 1.0) for t in tables]
    allocs = [_alloc_of(t, s) for t, (s, _) in zip(tables, alone, strict=True)]
    generation = ColumnGeneration(tables, candidates, COSTS, [b for _, b in alone], allocs)
    rows = over_used(tables, allocs, candidates)
    for _ in range(4):
        generation.add_rows(rows)
        assert generation.relax(math.inf) <= optimum + 1e-6
        plans = generation.plans(5.0, 0.0)
        assert plans is not None
        rows = over_used(tables, plans, candidates)
        if not rows:  # the master's plan is feasible: never below the optimum
            cost = sum(
                generation.columns[o][a] if o in generation.active else alone[o][0].cost
                for o, a in enumerate(plans)
            )
            assert cost >= optimum - 1e-6
            break
