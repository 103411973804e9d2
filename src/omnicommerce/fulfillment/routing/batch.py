"""``route_batch``: re-optimise a set of open orders together, with a proven lower bound.

1. Each order alone, exactly, over every candidate (its own optimum). Rows (stock of a SKU at a
   location, same-day packages of a location) that these optima over-use are *generated*.
2. Column generation over the generated rows (``columns``): the master LP chooses a convex
   combination of plans per order; each order's problem priced with the master's duals is solved
   exactly, which adds plans and gives the Lagrangian bound
       L = sum_o min_plan_o [cost + lambda * use] - lambda * supply
   (prices of rows not generated are zero), a lower bound on the batch optimum for any prices.
3. The master with binary columns picks one plan per order; rows that plan over-uses are
   generated and 2-3 repeat, until the plan over-uses nothing (it is then feasible).
4. MILP polish (large-neighbourhood search) while the gap is above ``mip_rel_gap``: a
   neighbourhood of competing orders linked by stock they could share is re-solved by HiGHS with
   the restricted batch MILP, everyone else's plan taken off the supply.
If the time ends before a plan over-uses nothing, a repair keeps the plans in arrival order
while stock and capacity last and re-routes the rest one by one.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import highspy
import numpy as np

from omnicommerce.fulfillment.routing.columns import ColumnGeneration, over_used
from omnicommerce.fulfillment.routing.engine import _solver, route_order, to_plan
from omnicommerce.fulfillment.routing.exact import exact_bound, set_matrix
from omnicommerce.fulfillment.routing.model import BatchResult, Candidate, CostModel, OrderToRoute, Plan
from omnicommerce.fulfillment.routing.sequence import route_in_sequence
from omnicommerce.fulfillment.routing.table import (
    Option,
    Solution,
    Table,
    build_table,
    cap_options,
    dominance_prune,
    priced,
    with_options,
)

RESTRICTED_OPTIONS = 12
SUBPROBLEM_LIMIT_S = 0.5  # per order alone; if HiGHS stops early its dual bound is used
NEIGHBOURHOOD = 120  # competing orders re-optimised together in one MILP
NEIGHBOURHOOD_LIMIT_S = 2.0
# Budget shares: column generation with its plans (row generation) until COLUMNS_SHARE of the
# budget, then MILP neighbourhoods for the rest (on the benchmark they save almost nothing once
# the master's plans are in: the rounds of columns are worth more).
COLUMNS_SHARE = 0.95
MASTER_LIMIT_S = 12.0  # the master with binary columns, per round
StockKey = tuple[str, int]  # (sku, candidate index)
Progress = Callable[[str, float], None]


Alloc = tuple[tuple[int, bool, int, int], ...]  # (candidate, ships later, item, units)


@dataclass
class _Order:
    order: OrderToRoute
    table: Table  # every candidate holding one of its SKUs (residual stock); today where capacity > 0
    batch: Table  # table + later twins where capacity is contested (restricted MILP)
    allowed: list[int]  # restricted option indices into ``batch``
    incumbent: Solution  # on ``batch``


def route_batch(
    orders: Sequence[OrderToRoute],
    candidates: Sequence[Candidate],
    costs: CostModel,
    *,
    time_budget_s: float = 150,
    mip_rel_gap: float = 0.002,
    progress: Progress | None = None,
) -> BatchResult:
    """Plans for all ``orders`` together over the candidates' current stock and capacity."""
    started = time.perf_counter()
    deadline = started + time_budget_s
    report = progress or (lambda stage, share: None)
    report("each order alone", 0.0)
    tables = [build_table(order, candidates, costs) for order in orders]
    solver = _solver()
    alone = [exact_bound(solver, t, dominance_prune(t), SUBPROBLEM_LIMIT_S) for t in tables]
    alone_allocs = [_alloc_of(t, solution) for t, (solution, _) in zip(tables, alone, strict=True)]
    generation = ColumnGeneration(tables, candidates, costs, [lower for _, lower in alone], alone_allocs)
    allocs, rows = alone_allocs, over_used(tables, alone_allocs, candidates)
    incumbent: list[Alloc] | None = None if rows else alone_allocs  # the cheapest feasible plan
    if rows:  # rows the optima use up are where the orders they push out go: share them at once
        rows |= generation.used_up(alone_allocs)
    columns_deadline = started + COLUMNS_SHARE * time_budget_s
    while rows and time.perf_counter() < columns_deadline:
        generation.add_rows(rows)
        for o, alloc in enumerate(incumbent or ()):
            generation.add_column(o, alloc)  # a feasible plan keeps the master's prices sane
        report(f"columns: {len(generation.rows)} shared rows, {len(generation.active)} orders", 0.2)
        pricing_deadline = columns_deadline - min(
            MASTER_LIMIT_S / 2, (columns_deadline - time.perf_counter()) / 4
        )
        generation.relax(pricing_deadline, lambda message: report(message, 0.4))
        limit = min(MASTER_LIMIT_S, max(1.0, columns_deadline - time.perf_counter()))
        found = generation.plans(limit, mip_rel_gap / 4, incumbent)
        if found is None:
            break
        allocs, rows = found, over_used(tables, found, candidates)
        feasible = _repair(orders, tables, candidates, costs, found) if rows else found
        if incumbent is None or _batch_cost(tables, feasible, costs) < _batch_cost(tables, incumbent, costs):
            incumbent = feasible
        if rows:  # the next round shares the rows the orders' priced optima over-use, and those
            # the feasible plan uses up (where re-routing pushed the orders that lost a row)
            rows |= over_used(tables, generation.wanted, candidates) | generation.used_up(incumbent)
            rows -= generation.rows
        report(f"plan {_batch_cost(tables, incumbent, costs):,.1f}, {len(rows)} rows over-used", 0.5)
    allocs = incumbent if incumbent is not None else _repair(orders, tables, candidates, costs, allocs)
    cost = _batch_cost(tables, allocs, costs)
    status = "optimal" if cost - generation.best <= mip_rel_gap * abs(cost) else "time-limit"
    rounds = 0
    if status != "optimal" and time.perf_counter() < deadline:
        own = [lower for _, lower in alone]
        competing = _competing(tables, allocs, own, costs, sorted(generation.active))
        report(f"batch MILP over the {len(competing)} competing orders", 0.8)
        enough = cost - generation.best - mip_rel_gap * abs(cost)  # saving that reaches the target gap
        allocs, status, rounds = _polish(
            orders, candidates, costs, tables, allocs, competing, (mip_rel_gap, enough), deadline, report
        )
        cost = _batch_cost(tables, allocs, costs)
        if cost - generation.best <= mip_rel_gap * abs(cost):
            status = "optimal"
    plans = tuple(
        _plan(order, candidates, table, alloc, costs)
        for order, table, alloc in zip(orders, tables, allocs, strict=True)
    )
    report("done", 1.0)
    return BatchResult(
        plans=plans,
        cost=round(cost, 6),
        bound=round(min(generation.best, cost), 6),
        bound_kind="lagrangian",
        seconds=time.perf_counter() - started,
        components=1 + rounds + len(orders) - len(generation.active),
        status=status,
    )


def _batch_cost(tables: Sequence[Table], allocs: Sequence[Alloc], costs: CostModel) -> float:
    return float(sum(_alloc_cost(t, a, costs) for t, a in zip(tables, allocs, strict=True)))


def _competing(
    tables: Sequence[Table],
    allocs: Sequence[Alloc],
    alone: Sequence[float],
    costs: CostModel,
    active: Sequence[int],
) -> list[int]:
    """The orders the MILP may move: every order of a small batch (one exact MILP), else the
    orders on shared rows whose plan costs more than their own optimum."""
    if len(tables) <= NEIGHBOURHOOD:
        return list(range(len(tables)))
    return [o for o in active if _alloc_cost(tables[o], allocs[o], costs) > alone[o] + 1e-6]


def _repair(
    orders: Sequence[OrderToRoute],
    tables: Sequence[Table],
    candidates: Sequence[Candidate],
    costs: CostModel,
    allocs: Sequence[Alloc],
) -> list[Alloc]:
    """Keep each order's plan, in arrival order, while stock and capacity allow; route the rest
    one by one over what is left."""
    stock = [dict(c.stock) for c in candidates]
    capacity = [c.capacity_left for c in candidates]
    repaired: list[Alloc] = list(allocs)
    deferred: list[int] = []
    for o, alloc in enumerate(allocs):
        if _fits(alloc, stock, capacity, tables[o].skus):
            _consume(alloc, stock, capacity, tables[o].skus)
        else:
            deferred.append(o)
    live = [replace(c, stock=stock[i], capacity_left=capacity[i]) for i, c in enumerate(candidates)]
    rerouted = route_in_sequence([orders[o] for o in deferred], live, costs, route_order, time_budget_ms=20)
    index = {c.location_id: i for i, c in enumerate(candidates)}
    for o, plan in zip(deferred, rerouted.plans, strict=True):
        repaired[o] = _alloc_of_plan(tables[o], plan, index)
    return repaired


def _polish(
    orders: Sequence[OrderToRoute],
    candidates: Sequence[Candidate],
    costs: CostModel,
    tables: Sequence[Table],
    allocs: list[Alloc],
    conflicted: Sequence[int],
    gaps: tuple[float, float],
    deadline: float,
    report: Progress,
) -> tuple[list[Alloc], str, int]:
    """Large-neighbourhood search with the restricted MILP: free a neighbourhood of competing
    orders linked by the stock and capacity they share, keep everyone else's plan (their use
    comes off the supply), re-solve the neighbourhood exactly (HiGHS, warm-started from the
    current plans) and keep the result when it is cheaper. Small batches are one neighbourhood.
    ``gaps``: HiGHS's relative gap per neighbourhood, and the saving that brings the batch
    within its target gap of the bound (the search stops there)."""
    mip_rel_gap, enough = gaps
    allocs = list(allocs)
    neighbours = _neighbourhoods(tables, conflicted)
    status = "optimal" if not conflicted else "time-limit"
    rounds = 0
    improved = 0.0
    rng = random.Random(len(orders))
    while conflicted and time.perf_counter() < deadline and improved < enough:
        whole = len(conflicted) <= NEIGHBOURHOOD
        members = list(conflicted) if whole else _grow(rng.choice(conflicted), neighbours, NEIGHBOURHOOD)
        residual = _residual(candidates, tables, allocs, members)
        data = _prepare([orders[o] for o in members], residual, costs, [allocs[o] for o in members])
        model = _BatchModel(data, range(len(members)), residual)
        limit = min(NEIGHBOURHOOD_LIMIT_S, max(0.5, deadline - time.perf_counter()))
        found, proven = model.solve(limit, mip_rel_gap)
        if _total(found) < _total(d.incumbent for d in data) - 1e-9:
            improved += _total(d.incumbent for d in data) - _total(found)
            for o, d, solution in zip(members, data, found, strict=True):
                allocs[o] = _alloc_of(d.batch, solution)
        rounds += 1
        if whole:
            status = "optimal" if proven else "time-limit"
            break
    report(f"MILP neighbourhoods: {rounds}, cost down {improved:,.1f}", 0.8)
    return allocs, status, rounds


def _neighbourhoods(tables: Sequence[Table], conflicted: Sequence[int]) -> dict[int, list[int]]:
    """Competing order -> competing orders that can draw on one of the same (sku, location)."""
    users: dict[StockKey, list[int]] = defaultdict(list)
    for o in conflicted:
        table = tables[o]
        for option in table.options:
            for item, a in enumerate(option.avail):
                if a > 0:
                    users[(table.skus[item], option.candidate)].append(o)
    linked: dict[int, set[int]] = defaultdict(set)
    for group in users.values():
        if len(group) > 1:
            for o in group:
                linked[o].update(group)
    return {o: sorted(linked[o] - {o}) for o in conflicted}


def _grow(seed: int, neighbours: Mapping[int, list[int]], size: int) -> list[int]:
    """Breadth-first from ``seed`` until ``size`` orders."""
    chosen = [seed]
    seen = {seed}
    for o in chosen:
        for n in neighbours.get(o, []):
            if n not in seen:
                seen.add(n)
                chosen.append(n)
                if len(chosen) >= size:
                    return sorted(chosen)
    return sorted(chosen)


def _total(solutions: Iterable[Solution]) -> float:
    return float(sum(s.cost for s in solutions))


# ---- allocations: one order's plan as (candidate, later, item, units) ------------------------


def _alloc_of(table: Table, solution: Solution) -> Alloc:
    return tuple(
        (table.options[k].candidate, table.options[k].delayed, item, units)
        for k, item, units in solution.units
    )


def _alloc_table(table: Table, alloc: Alloc, costs: CostModel) -> Table:
    """The order's table plus a 'ships later' twin for each location the allocation delays
    although it has capacity (so the allocation is expressible on it)."""
    present = {(o.candidate, o.delayed) for o in table.options}
    options = list(table.options)
    for c, later, _, _ in alloc:
        if (c, later) not in present:
            base = next(o for o in table.options if o.candidate == c)
            delayed_unit = tuple(u + costs.delay_cost_per_unit for u in base.unit)
            options.append(Option(c, base.fixed, delayed_unit, base.avail, True))
            present.add((c, later))
    return table if len(options) == len(table.options) else with_options(table, options)


def _on_table(table: Table, alloc: Alloc) -> Solution:
    option_of = {(o.candidate, o.delayed): k for k, o in enumerate(table.options)}
    units: dict[tuple[int, int], int] = defaultdict(int)
    for c, later, item, u in alloc:
        units[(option_of[(c, later)], item)] += u
    return priced(table, [(k, i, u) for (k, i), u in units.items()])


def _alloc_cost(table: Table, alloc: Alloc, costs: CostModel) -> float:
    return _on_table(_alloc_table(table, alloc, costs), alloc).cost


def _plan(
    order: OrderToRoute, candidates: Sequence[Candidate], table: Table, alloc: Alloc, costs: CostModel
) -> Plan:
    full = _alloc_table(table, alloc, costs)
    return to_plan(order, candidates, full, _on_table(full, alloc), "batch-milp")


def _fits(
    alloc: Alloc, stock: Sequence[dict[str, int]], capacity: Sequence[int], skus: Sequence[str]
) -> bool:
    need: dict[tuple[int, str], int] = defaultdict(int)
    today: set[int] = set()
    for c, later, item, u in alloc:
        need[(c, skus[item])] += u
        if not later:
            today.add(c)
    return all(stock[c].get(sku, 0) >= u for (c, sku), u in need.items()) and all(
        capacity[c] >= 1 for c in today
    )


def _consume(alloc: Alloc, stock: list[dict[str, int]], capacity: list[int], skus: Sequence[str]) -> None:
    for c in {c for c, later, _, _ in alloc if not later}:
        capacity[c] -= 1
    for c, _, item, u in alloc:
        stock[c][skus[item]] -= u


# ---- preparing the restricted problem -------------------------------------------------------


def _residual(
    candidates: Sequence[Candidate],
    tables: Sequence[Table],
    allocs: Sequence[Alloc],
    conflicted: Sequence[int],
) -> list[Candidate]:
    """The stock and capacity left to the competing orders once the others keep their plans."""
    stock = [dict(c.stock) for c in candidates]
    capacity = [c.capacity_left for c in candidates]
    competing = set(conflicted)
    for o, alloc in enumerate(allocs):
        if o not in competing:
            _consume(alloc, stock, capacity, tables[o].skus)
    return [replace(c, stock=stock[i], capacity_left=capacity[i]) for i, c in enumerate(candidates)]


def _prepare(
    orders: Sequence[OrderToRoute], candidates: Sequence[Candidate], costs: CostModel, allocs: Sequence[Alloc]
) -> list[_Order]:
    """Restricted option sets for the competing orders, with their current plans as the start."""
    tables = [build_table(order, candidates, costs) for order in orders]
    restricted = [_restricted(t, alloc) for t, alloc in zip(tables, allocs, strict=True)]
    contested = _contested_capacity(tables, restricted, candidates)
    data = []
    for order, table, keep, alloc in zip(orders, tables, restricted, allocs, strict=True):
        delayed_here = {c for c, later, _, _ in alloc if later}
        batch, allowed = _with_twins(table, keep, contested | delayed_here, costs)
        data.append(_Order(order, table, batch, allowed, _on_table(batch, alloc)))
    return data


def _restricted(table: Table, alloc: Alloc) -> list[int]:
    """The options the batch MILP offers this order. Dominance is exact for one order alone, not
    when others may take the dominating option's stock: small tables keep every option."""
    if len(table.options) <= RESTRICTED_OPTIONS:
        return list(range(len(table.options)))
    used = {c for c, _, _, _ in alloc}
    keep = [k for k, o in enumerate(table.options) if o.candidate in used]
    kept = dominance_prune(table, keep)
    alternatives = _cheapest_per_item(table, 3)
    return cap_options(table, list(dict.fromkeys([*kept, *alternatives])), RESTRICTED_OPTIONS, keep)


def _cheapest_per_item(table: Table, per_item: int) -> list[int]:
    """Alternatives for when another order takes the best option's units or capacity."""
    picked: list[int] = []
    for item in range(len(table.qty)):
        full = [k for k, o in enumerate(table.options) if o.avail[item] >= table.qty[item]]
        picked += sorted(full, key=lambda k: table.options[k].fixed)[:per_item]
    return picked


def _contested_capacity(
    tables: Sequence[Table], restricted: Sequence[Sequence[int]], candidates: Sequence[Candidate]
) -> set[int]:
    demand: dict[int, int] = defaultdict(int)
    for table, keep in zip(tables, restricted, strict=True):
        for c in {table.options[k].candidate for k in keep if not table.options[k].delayed}:
            demand[c] += 1
    return {c for c, n in demand.items() if n > candidates[c].capacity_left}


def _with_twins(
    table: Table, keep: Sequence[int], contested: set[int], costs: CostModel
) -> tuple[Table, list[int]]:
    """The table plus a 'ships later' twin for kept options at contested-capacity locations."""
    options = list(table.options)
    allowed = list(keep)
    for k in keep:
        option = options[k]
        if option.delayed or option.candidate not in contested:
            continue
        twin = len(options)
        later = tuple(u + costs.delay_cost_per_unit for u in option.unit)
        options.append(Option(option.candidate, option.fixed, later, option.avail, True, k))
        options[k] = Option(option.candidate, option.fixed, option.unit, option.avail, False, twin)
        allowed.append(twin)
    return with_options(table, options), allowed


def _stock_rows(data: Sequence[_Order], members: Sequence[int]) -> dict[StockKey, list[tuple[int, int, int]]]:
    """(sku, location) -> (order, option, item) that could draw on it, in the restricted sets."""
    users: dict[StockKey, list[tuple[int, int, int]]] = defaultdict(list)
    for o in members:
        d = data[o]
        for k in d.allowed:
            option = d.batch.options[k]
            for item, a in enumerate(option.avail):
                if a > 0:
                    users[(d.batch.skus[item], option.candidate)].append((o, k, item))
    return users


def _stock_demand(data: Sequence[_Order], users: Sequence[tuple[int, int, int]]) -> int:
    """Most units the orders could take (twins of one location counted once per order)."""
    per_order: dict[tuple[int, int], int] = {}
    for o, k, item in users:
        per_order[(o, item)] = max(per_order.get((o, item), 0), data[o].batch.options[k].avail[item])
    return sum(per_order.values())


def _capacity_users(data: Sequence[_Order], members: Sequence[int]) -> dict[int, list[int]]:
    users: dict[int, list[int]] = defaultdict(list)
    for o in members:
        d = data[o]
        for c in dict.fromkeys(
            d.batch.options[k].candidate for k in d.allowed if not d.batch.options[k].delayed
        ):
            users[c].append(o)
    return users


# ---- the restricted batch MILP --------------------------------------------------------------


class _BatchModel:
    """One component's MILP: the per-order model of ``exact`` for each order, plus shared rows
    for contested stock and capacity."""

    def __init__(
        self, data: Sequence[_Order], members: Sequence[int], candidates: Sequence[Candidate]
    ) -> None:
        self.data, self.members = data, members
        cost: list[float] = []
        upper: list[float] = []
        integer: list[bool] = []
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        lower_b: list[float] = []
        upper_b: list[float] = []
        self.y_col: dict[tuple[int, int], int] = {}
        self.x_col: dict[tuple[int, int, int], int] = {}
        self.u_col: dict[tuple[int, int], int] = {}
        self.s_col: dict[int, int] = {}

        def column(c: float, up: float, is_int: bool) -> int:
            cost.append(c)
            upper.append(up)
            integer.append(is_int)
            return len(cost) - 1

        def row(entries: Sequence[tuple[int, float]], lo: float, up: float) -> int:
            r = len(lower_b)
            for col, v in entries:
                rows.append(r)
                cols.append(col)
                vals.append(v)
            lower_b.append(lo)
            upper_b.append(up)
            return r

        for o in members:
            d = data[o]
            table = d.batch
            for k in d.allowed:
                self.y_col[(o, k)] = column(table.options[k].fixed + table.split, 1.0, True)
            for item, q in enumerate(table.qty):
                self.u_col[(o, item)] = column(table.lost, float(q), False)
                entries = [(self.u_col[(o, item)], 1.0)]
                for k in d.allowed:
                    a = table.options[k].avail[item]
                    if a > 0:
                        x = column(table.options[k].unit[item], float(a), True)
                        self.x_col[(o, k, item)] = x
                        entries.append((x, 1.0))
                        row([(x, 1.0), (self.y_col[(o, k)], -float(a))], -np.inf, 0.0)
                row(entries, float(q), float(q))
            self.s_col[o] = column(-table.split, 1.0, False)
            row([(self.s_col[o], 1.0)] + [(self.y_col[(o, k)], -1.0) for k in d.allowed], -np.inf, 0.0)
            for k in d.allowed:
                twin = table.options[k].twin
                if twin > k and (o, twin) in self.y_col:
                    row([(self.y_col[(o, k)], 1.0), (self.y_col[(o, twin)], 1.0)], -np.inf, 1.0)
        self.stock_rows: dict[int, StockKey] = {}
        for key, users in _stock_rows(data, members).items():
            sku, c = key
            supply = candidates[c].stock.get(sku, 0)
            if _stock_demand(data, users) > supply:
                r = row([(self.x_col[(o, k, item)], 1.0) for o, k, item in users], -np.inf, float(supply))
                self.stock_rows[r] = key
        self.capacity_rows: dict[int, int] = {}
        for c, orders in _capacity_users(data, members).items():
            capacity = candidates[c].capacity_left
            if len(orders) > capacity:
                today = [
                    (self.y_col[(o, k)], 1.0)
                    for o in orders
                    for k in data[o].allowed
                    if data[o].batch.options[k].candidate == c and not data[o].batch.options[k].delayed
                ]
                self.capacity_rows[row(today, -np.inf, float(capacity))] = c
        lp = highspy.HighsLp()
        lp.num_col_ = len(cost)
        lp.num_row_ = len(lower_b)
        lp.col_cost_ = np.asarray(cost)
        lp.col_lower_ = np.zeros(len(cost))
        lp.col_upper_ = np.asarray(upper)
        lp.row_lower_ = np.asarray(lower_b)
        lp.row_upper_ = np.asarray(upper_b)
        set_matrix(lp, np.asarray(rows), np.asarray(cols), np.asarray(vals), len(lower_b), len(cost))
        self.lp = lp
        self.integer = integer
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)

    def _warm_start(self) -> list[float]:
        values = [0.0] * self.lp.num_col_
        for o in self.members:
            incumbent = self.data[o].incumbent
            for k, item, u in incumbent.units:
                values[self.x_col[(o, k, item)]] += u
                values[self.y_col[(o, k)]] = 1.0
            for item, lost in enumerate(incumbent.lost):
                values[self.u_col[(o, item)]] = float(lost)
            values[self.s_col[o]] = 1.0 if incumbent.units else 0.0
        return values

    def solve(self, time_limit_s: float, mip_rel_gap: float) -> tuple[list[Solution], bool]:
        lp = self.lp
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in self.integer
        ]
        highs = self.highs
        highs.setOptionValue("time_limit", time_limit_s)
        highs.setOptionValue("mip_rel_gap", mip_rel_gap)
        highs.passModel(lp)
        start = highspy.HighsSolution()
        start.col_value = self._warm_start()
        highs.setSolution(start)
        highs.run()
        values = np.asarray(highs.getSolution().col_value)
        if not self._values_match_objective(values):
            # highspy (1.16) can hand back the start instead of a better incumbent it reports
            # (seen when presolve finishes the model): solve again without the start.
            highs.passModel(lp)
            highs.run()
            values = np.asarray(highs.getSolution().col_value)
        proven = highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
        return [self._decode(o, values) for o in self.members], bool(proven)

    def _values_match_objective(self, values: np.ndarray) -> bool:
        reported = float(self.highs.getInfo().objective_function_value)
        return abs(float(np.dot(self.lp.col_cost_, values)) - reported) <= 1e-6 * max(1.0, abs(reported))

    def _decode(self, o: int, values: np.ndarray) -> Solution:
        d = self.data[o]
        units = [
            (k, item, round(values[col]))
            for (oo, k, item), col in self.x_col.items()
            if oo == o and values[col] > 0.5
        ]
        return priced(d.batch, units)


def _alloc_of_plan(table: Table, plan: Plan, index: Mapping[str, int]) -> Alloc:
    units: dict[tuple[int, bool, int], int] = defaultdict(int)
    for a in plan.assignments:
        units[(index[a.location_id], a.delayed, table.line_items[a.line_index])] += a.quantity
    return tuple((c, later, item, u) for (c, later, item), u in units.items())
