"""``route_batch``: re-optimise a set of open orders together, with a proven lower bound.

1. Each order alone, exactly, over every candidate: the sum is the Lagrangian bound at zero
   prices. Orders whose optimum uses stock or capacity the optima together over-use compete; the
   others keep their optimum.
2. Prices: Lagrangian relaxation of every stock and same-day capacity row, over *every* candidate
   of every order. For prices lambda (per unit of stock at a location) and mu (per same-day package
   at a location),
       L = sum_o min_plan_o [cost + lambda * units + mu * packages today] - lambda * stock - mu * capacity
   is a lower bound on the batch optimum for any prices >= 0, because each order's priced problem
   is solved exactly (or bounded below by HiGHS's dual bound). Subgradient steps move the prices;
   a repair turns the priced plans into a feasible batch plan; the per-order router's plan in
   arrival order is a candidate too. The cheapest feasible plan is kept.
3. MILP polish (large-neighbourhood search): a neighbourhood of competing orders linked by stock
   they could share is re-solved by HiGHS with the restricted batch MILP (per order the options
   that matter, a today/later twin where capacity is contested, rows only where demand could
   exceed supply), everyone else's plan taken off the supply, warm-started from the current plans.
4. More price steps until the budget ends or the gap is below ``mip_rel_gap``.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import highspy
import numpy as np

from omnicommerce.fulfillment.routing.engine import _solver, route_order, to_plan
from omnicommerce.fulfillment.routing.exact import exact_bound, set_matrix
from omnicommerce.fulfillment.routing.model import BatchResult, Candidate, CostModel, OrderToRoute, Plan
from omnicommerce.fulfillment.routing.sequence import route_in_sequence
from omnicommerce.fulfillment.routing.table import (
    INF,
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
SUBPROBLEM_LIMIT_S = 0.5  # per order under prices; if HiGHS stops early its dual bound is used
NEIGHBOURHOOD = 120  # competing orders re-optimised together in one MILP
NEIGHBOURHOOD_LIMIT_S = 2.0
# Budget shares: price steps (with the repair that turns priced plans into feasible ones), then the
# MILP neighbourhoods, then more price steps for the bound.
PRICES_SHARE = 0.5
POLISH_UNTIL = 0.8
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
    lagrangian = _Lagrangian(orders, tables, candidates, costs, target_gap=mip_rel_gap)
    lagrangian.evaluate({}, {}, set(range(len(orders))), deadline=math.inf)
    alone = list(lagrangian.lower)  # each order's own optimum
    conflicted = lagrangian.conflicted()
    report(f"per-order plans; prices for what {len(conflicted)} orders compete for", 0.2)
    lagrangian.consider(route_in_sequence(orders, candidates, costs, route_order).plans)
    lagrangian.ascend(started + PRICES_SHARE * time_budget_s, report)
    allocs = lagrangian.best_allocs
    competing = _competing(tables, allocs, alone, conflicted, costs)
    report(f"batch MILP over the {len(competing)} competing orders", 0.5)
    polish_deadline = started + POLISH_UNTIL * time_budget_s
    allocs, status, rounds = _polish(
        orders, candidates, costs, tables, allocs, competing, mip_rel_gap, polish_deadline, report
    )
    cost = sum(_alloc_cost(t, a, costs) for t, a in zip(tables, allocs, strict=True))
    lagrangian.upper = min(lagrangian.upper, cost)
    report("tightening the bound", 0.8)
    lagrangian.ascend(deadline, report)
    plans = tuple(
        _plan(order, candidates, table, alloc, costs)
        for order, table, alloc in zip(orders, tables, allocs, strict=True)
    )
    report("done", 1.0)
    return BatchResult(
        plans=plans,
        cost=round(cost, 6),
        bound=round(min(lagrangian.best, cost), 6),
        bound_kind="lagrangian",
        seconds=time.perf_counter() - started,
        components=rounds + len(orders) - len(competing),
        status=status,
    )


def _competing(
    tables: Sequence[Table],
    allocs: Sequence[Alloc],
    alone: Sequence[float],
    conflicted: Sequence[int],
    costs: CostModel,
) -> list[int]:
    """The orders the MILP may move: every order of a small batch (one exact MILP), else those
    competing at zero prices and those whose plan now costs more than their own optimum."""
    if len(tables) <= NEIGHBOURHOOD:
        return list(range(len(tables)))
    worse = {
        o
        for o, (t, a) in enumerate(zip(tables, allocs, strict=True))
        if _alloc_cost(t, a, costs) > alone[o] + 1e-6
    }
    return sorted(worse | set(conflicted))


def _polish(
    orders: Sequence[OrderToRoute],
    candidates: Sequence[Candidate],
    costs: CostModel,
    tables: Sequence[Table],
    allocs: list[Alloc],
    conflicted: Sequence[int],
    mip_rel_gap: float,
    deadline: float,
    report: Progress,
) -> tuple[list[Alloc], str, int]:
    """Large-neighbourhood search with the restricted MILP: free a neighbourhood of competing
    orders linked by the stock and capacity they share, keep everyone else's plan (their use
    comes off the supply), re-solve the neighbourhood exactly (HiGHS, warm-started from the
    current plans) and keep the result when it is cheaper. Small batches are one neighbourhood."""
    allocs = list(allocs)
    neighbours = _neighbourhoods(tables, conflicted)
    status = "optimal" if not conflicted else "time-limit"
    rounds = 0
    improved = 0.0
    rng = random.Random(len(orders))
    while conflicted and time.perf_counter() < deadline:
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

    def duals(self, time_limit_s: float) -> tuple[dict[StockKey, float], dict[int, float]]:
        """Prices of the coupling rows from the LP relaxation (HiGHS reports <= rows as <= 0)."""
        lp = self.lp
        lp.integrality_ = [highspy.HighsVarType.kContinuous] * lp.num_col_
        highs = self.highs
        highs.setOptionValue("time_limit", time_limit_s)
        highs.passModel(lp)
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return {}, {}
        row_dual = highs.getSolution().row_dual
        lam = {key: max(0.0, -row_dual[r]) for r, key in self.stock_rows.items()}
        mu = {c: max(0.0, -row_dual[r]) for r, c in self.capacity_rows.items()}
        return lam, mu


# ---- the Lagrangian bound -------------------------------------------------------------------


class _Lagrangian:
    """Each order's exact optimum under prices on stock (lambda, per unit) and same-day capacity
    (mu, per package); subgradient ascent on the prices; and a repair that turns the priced
    plans into a feasible batch plan (the upper bound)."""

    def __init__(
        self,
        orders: Sequence[OrderToRoute],
        tables: Sequence[Table],
        candidates: Sequence[Candidate],
        costs: CostModel,
        *,
        target_gap: float,
    ) -> None:
        self.orders, self.tables, self.candidates, self.costs = orders, tables, candidates, costs
        self.capacity = [c.capacity_left for c in candidates]
        self.target_gap = target_gap
        self.stock_users: dict[StockKey, set[int]] = defaultdict(set)
        self.capacity_users: dict[int, set[int]] = defaultdict(set)
        for o, table in enumerate(tables):
            for option in table.options:
                for item, a in enumerate(option.avail):
                    if a > 0:
                        self.stock_users[(table.skus[item], option.candidate)].add(o)
                if not option.delayed:
                    self.capacity_users[option.candidate].add(o)
        self.lower: list[float] = [0.0] * len(tables)
        self.allocs: list[Alloc] = [() for _ in tables]
        self.usage: list[tuple[dict[StockKey, int], dict[int, int]]] = [({}, {})] * len(tables)
        self.lam: dict[StockKey, float] = {}
        self.mu: dict[int, float] = {}
        self.value = self.best = -INF
        self.upper = INF
        self.best_allocs: list[Alloc] = []
        self.theta = 0.25  # Polyak's step overshoots from zero prices; start short
        self.iterations = 0

    def conflicted(self) -> list[int]:
        """Orders whose current optimum uses stock or capacity that the optima together over-use."""
        stock_use, capacity_use = self._use()
        over_stock = {k for k, u in stock_use.items() if u > self.candidates[k[1]].stock.get(k[0], 0)}
        over_capacity = {c for c, n in capacity_use.items() if n > self.capacity[c]}
        return [
            o
            for o, (stock, packages) in enumerate(self.usage)
            if any(k in over_stock for k in stock) or any(c in over_capacity for c in packages)
        ]

    def ascend(self, deadline: float, report: Progress) -> None:
        """Subgradient steps (Polyak) until the deadline or the target gap; a repair every few."""
        if not self.best_allocs:
            self.repair()
        stall = 0
        while time.perf_counter() < deadline and self.upper - self.best > self.target_gap * abs(self.upper):
            dirty = self._step(self.theta * (self.upper - self.value))
            if not dirty:
                break
            value = self.evaluate(self.lam, self.mu, dirty, deadline)
            if value == -INF:
                break
            self.value = value
            if value > self.best + 1e-9:
                self.best, stall = value, 0
            else:
                stall += 1
                if stall >= 2:
                    self.theta, stall = self.theta / 2, 0
            self.iterations += 1
            if self.iterations % 3 == 0:
                self.repair()
            gap = 1 - self.best / self.upper if self.upper else 0.0
            report(f"prices: bound {self.best:,.1f}, plan {self.upper:,.1f} (gap {gap:.2%})", 0.5)
            if self.theta < 1e-3:
                break

    def evaluate(
        self, lam: Mapping[StockKey, float], mu: Mapping[int, float], dirty: set[int], deadline: float
    ) -> float:
        """L(lam, mu); re-solves only the orders in ``dirty``. Returns -inf when the deadline cut
        the pass short (a partial pass proves nothing)."""
        solver = _solver()
        for o in sorted(dirty):
            if time.perf_counter() > deadline:
                return -INF
            table = self._priced_table(self.tables[o], lam, mu)
            solution, lower = exact_bound(solver, table, dominance_prune(table), SUBPROBLEM_LIMIT_S)
            self.lower[o] = lower
            self.allocs[o] = _alloc_of(table, solution)
            self.usage[o] = _usage(table, solution)
        stock_value = sum(p * self.candidates[c].stock.get(sku, 0) for (sku, c), p in lam.items())
        capacity_value = sum(p * self.capacity[c] for c, p in mu.items())
        value = float(sum(self.lower)) - stock_value - capacity_value
        if not lam and not mu:
            self.value = self.best = max(self.best, value)
        return value

    def consider(self, plans: Sequence[Plan]) -> None:
        """A feasible batch plan from elsewhere (the per-order router in arrival order)."""
        index = {c.location_id: i for i, c in enumerate(self.candidates)}
        allocs = [_alloc_of_plan(t, p, index) for t, p in zip(self.tables, plans, strict=True)]
        cost = sum(_alloc_cost(t, a, self.costs) for t, a in zip(self.tables, allocs, strict=True))
        if cost < self.upper:
            self.upper, self.best_allocs = cost, allocs

    def repair(self) -> None:
        """Keep each order's priced plan, in arrival order, while stock and capacity allow; route
        the rest one by one over what is left. Keeps the cheapest batch plan seen."""
        stock = [dict(c.stock) for c in self.candidates]
        capacity = list(self.capacity)
        allocs: list[Alloc] = list(self.allocs)
        deferred: list[int] = []
        for o, alloc in enumerate(self.allocs):
            if _fits(alloc, stock, capacity, self.tables[o].skus):
                _consume(alloc, stock, capacity, self.tables[o].skus)
            else:
                deferred.append(o)
        live = [replace(c, stock=stock[i], capacity_left=capacity[i]) for i, c in enumerate(self.candidates)]
        rerouted = route_in_sequence(
            [self.orders[o] for o in deferred], live, self.costs, route_order, time_budget_ms=20
        )
        index = {c.location_id: i for i, c in enumerate(self.candidates)}
        for o, plan in zip(deferred, rerouted.plans, strict=True):
            allocs[o] = _alloc_of_plan(self.tables[o], plan, index)
        cost = sum(_alloc_cost(t, a, self.costs) for t, a in zip(self.tables, allocs, strict=True))
        if cost < self.upper:
            self.upper, self.best_allocs = cost, allocs

    def _priced_table(self, table: Table, lam: Mapping[StockKey, float], mu: Mapping[int, float]) -> Table:
        if not lam and not mu:
            return table
        options: list[Option] = []
        delay = self.costs.delay_cost_per_unit
        for option in table.options:
            c = option.candidate
            unit = tuple(u + lam.get((sku, c), 0.0) for u, sku in zip(option.unit, table.skus, strict=True))
            price = 0.0 if option.delayed else mu.get(c, 0.0)
            if price <= 0:
                options.append(Option(c, option.fixed, unit, option.avail, option.delayed))
                continue
            today = len(options)
            options.append(Option(c, option.fixed + price, unit, option.avail, False, today + 1))
            later = tuple(u + delay for u in unit)
            options.append(Option(c, option.fixed, later, option.avail, True, today))
        return with_options(table, options)

    def _use(self) -> tuple[dict[StockKey, int], dict[int, int]]:
        stock_use: dict[StockKey, int] = defaultdict(int)
        capacity_use: dict[int, int] = defaultdict(int)
        for stock, packages in self.usage:
            for key, u in stock.items():
                stock_use[key] += u
            for c, n in packages.items():
                capacity_use[c] += n
        return stock_use, capacity_use

    def _step(self, scale: float) -> set[int]:
        """Polyak step along the subgradient (use - supply) of the relaxed rows; returns the
        orders to re-solve: a dearer row matters only to the orders using it now, a cheaper
        one to every order that could use it."""
        stock_use, capacity_use = self._use()
        lam, mu = self.lam, self.mu
        g_stock = {
            k: stock_use.get(k, 0) - self.candidates[k[1]].stock.get(k[0], 0) for k in {*stock_use, *lam}
        }
        g_capacity = {c: capacity_use.get(c, 0) - self.capacity[c] for c in {*capacity_use, *mu}}
        g_stock = {k: g for k, g in g_stock.items() if g > 0 or lam.get(k, 0) > 0}
        g_capacity = {c: g for c, g in g_capacity.items() if g > 0 or mu.get(c, 0) > 0}
        norm = sum(g * g for g in g_stock.values()) + sum(g * g for g in g_capacity.values())
        if norm == 0 or scale <= 0:
            return set()
        step = scale / norm
        up_stock: set[StockKey] = set()
        down_stock: set[StockKey] = set()
        up_capacity: set[int] = set()
        down_capacity: set[int] = set()
        for k, g in g_stock.items():
            new = max(0.0, lam.get(k, 0.0) + step * g)
            (up_stock if new > lam.get(k, 0.0) else down_stock).add(k)
            lam[k] = new
        for c, g in g_capacity.items():
            new = max(0.0, mu.get(c, 0.0) + step * g)
            (up_capacity if new > mu.get(c, 0.0) else down_capacity).add(c)
            mu[c] = new
        self.lam = {k: v for k, v in lam.items() if v > 0}
        self.mu = {c: v for c, v in mu.items() if v > 0}
        dirty = {
            o
            for o, (stock, packages) in enumerate(self.usage)
            if any(k in up_stock for k in stock) or any(c in up_capacity for c in packages)
        }
        for key in down_stock:
            dirty |= self.stock_users.get(key, set())
        for c in down_capacity:
            dirty |= self.capacity_users.get(c, set())
        return dirty


def _alloc_of_plan(table: Table, plan: Plan, index: Mapping[str, int]) -> Alloc:
    units: dict[tuple[int, bool, int], int] = defaultdict(int)
    for a in plan.assignments:
        units[(index[a.location_id], a.delayed, table.line_items[a.line_index])] += a.quantity
    return tuple((c, later, item, u) for (c, later, item), u in units.items())


def _usage(table: Table, solution: Solution) -> tuple[dict[StockKey, int], dict[int, int]]:
    stock: dict[StockKey, int] = defaultdict(int)
    packages: dict[int, int] = {}
    for k, item, u in solution.units:
        option = table.options[k]
        stock[(table.skus[item], option.candidate)] += u
        if not option.delayed:
            packages[option.candidate] = 1
    return dict(stock), packages
