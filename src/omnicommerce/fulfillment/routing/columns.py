"""Column generation over the contested rows: the Lagrangian bound of the batch and its plans.

The batch problem couples the orders only through shared rows: units of a SKU at a location
(stock) and same-day packages of a location (capacity). A row is *generated* once some plan
over-uses it; every other row is left out (a relaxation: its price is zero).

- **Options that cannot matter** (valid for the whole batch, not only one order alone): an option
  whose rows are all left out is *free* (no other order can take what it ships in the relaxed
  problem); an option that a free option dominates (no dearer per package, ships all of every
  item the other touches at no higher unit cost) is dropped — swapping it for the free one never
  costs more and never breaks a row. Orders left with only free options keep their own optimum.
- **Master LP** (Dantzig-Wolfe): per active order a convex combination of its plans (columns),
  ``sum_plans use_r * z <= supply_r`` for every generated row ``r``.
- **Pricing**: with the master's row duals as prices ``lambda_r >= 0``, each order's priced problem
  ``min_plan cost + sum_r lambda_r * use_r`` is solved exactly (or bounded below by HiGHS's dual
  bound), which gives a new column when its reduced cost is negative, and the Lagrangian bound
  ``L(lambda) = sum_o min_plan [cost + lambda * use] - sum_r lambda_r * supply_r`` (prices of the
  rows left out are zero). ``L`` is a lower bound on the batch optimum for any prices >= 0; at the
  end of column generation it equals the master LP, the Dantzig-Wolfe bound.
- **Plans**: the master with binary columns (HiGHS, time-limited) picks one plan per order.
  Rows that plan over-uses are generated and the loop repeats; when none is over-used the plan
  is feasible for the batch.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

import highspy
import numpy as np

from omnicommerce.fulfillment.routing.engine import _solver
from omnicommerce.fulfillment.routing.exact import FEASIBLE_POINT, exact_bound
from omnicommerce.fulfillment.routing.model import Candidate, CostModel
from omnicommerce.fulfillment.routing.table import Option, Table, dominance_prune, priced, with_options

Row = tuple[str | None, int]  # (sku, candidate): stock; (None, candidate): same-day packages
Alloc = tuple[tuple[int, bool, int, int], ...]  # (candidate, ships later, item, units)
PRICING_LIMIT_S = 0.5  # per order; a stopped HiGHS run counts with its dual bound
REDUCED_COST_EPS = 1e-6


def supply(candidates: Sequence[Candidate], row: Row) -> int:
    sku, c = row
    return candidates[c].capacity_left if sku is None else candidates[c].stock.get(sku, 0)


def row_use(table: Table, alloc: Alloc) -> dict[Row, int]:
    """Units per stock row, and one per same-day package, of one order's allocation."""
    use: dict[Row, int] = defaultdict(int)
    for c, _, item, units in alloc:
        use[(table.skus[item], c)] += units
    for c in {c for c, later, _, _ in alloc if not later}:
        use[(None, c)] = 1
    return use


def over_used(tables: Sequence[Table], allocs: Sequence[Alloc], candidates: Sequence[Candidate]) -> set[Row]:
    total: dict[Row, int] = defaultdict(int)
    for table, alloc in zip(tables, allocs, strict=True):
        for row, units in row_use(table, alloc).items():
            total[row] += units
    return {row for row, units in total.items() if units > supply(candidates, row)}


def option_rows(table: Table, option: Option) -> list[Row]:
    c = option.candidate
    rows: list[Row] = [(sku, c) for sku, a in zip(table.skus, option.avail, strict=True) if a > 0]
    if not option.delayed:
        rows.append((None, c))
    return rows


def kept_options(table: Table, rows: set[Row]) -> list[int] | None:
    """The options that may matter once ``rows`` are shared (None: only free options are left,
    so the order's own optimum is its optimum in the relaxed batch, at any prices on ``rows``)."""
    options = table.options
    bound = [any(r in rows for r in option_rows(table, o)) for o in options]
    if not any(bound):
        return None
    # free options first among equals, so an identical free option drops a bound one
    order = sorted(range(len(options)), key=lambda k: (options[k].fixed, bound[k], k))
    kept: list[int] = []
    dominators: list[tuple[int, Option]] = []
    for k in order:
        option = options[k]
        touched = option.touched()
        if any(
            (touched & ~mask) == 0
            and all(m.unit[i] <= option.unit[i] for i in range(len(table.qty)) if touched >> i & 1)
            for mask, m in dominators
        ):
            continue
        kept.append(k)
        if not bound[k]:
            dominators.append((table.full_mask(option), option))
    return kept if any(bound[k] for k in kept) else None


def bound_table(table: Table, kept: Sequence[int], rows: set[Row], costs: CostModel) -> Table:
    """The kept options, plus a 'ships later' twin for each same-day option whose capacity row
    is shared (a package may wait a day to leave the capacity to another order)."""
    options: list[Option] = []
    for k in kept:
        option = table.options[k]
        if option.delayed or (None, option.candidate) not in rows:
            options.append(option)
            continue
        today = len(options)
        later = tuple(u + costs.delay_cost_per_unit for u in option.unit)
        options.append(Option(option.candidate, option.fixed, option.unit, option.avail, False, today + 1))
        options.append(Option(option.candidate, option.fixed, later, option.avail, True, today))
    return with_options(table, options)


def alloc_of(table: Table, units: Iterable[tuple[int, int, int]]) -> Alloc:
    return tuple((table.options[k].candidate, table.options[k].delayed, item, u) for k, item, u in units)


class ColumnGeneration:
    """The master LP over generated rows, its pricing, its Lagrangian bound and its plans."""

    def __init__(
        self,
        tables: Sequence[Table],
        candidates: Sequence[Candidate],
        costs: CostModel,
        alone_lower: Sequence[float],
        alone_allocs: Sequence[Alloc],
    ) -> None:
        self.tables, self.candidates, self.costs = tables, candidates, costs
        self.alone_lower, self.alone_allocs = alone_lower, alone_allocs
        self.users: dict[Row, set[int]] = defaultdict(set)  # row -> orders with an option on it
        for o, table in enumerate(tables):
            for option in table.options:
                for row in option_rows(table, option):
                    self.users[row].add(o)
        self.rows: set[Row] = set()
        self.active: dict[int, Table] = {}  # order -> its bound table
        self.columns: dict[int, dict[Alloc, float]] = defaultdict(dict)  # order -> plan -> cost
        self.priced_at: dict[int, tuple[tuple[float, ...], float]] = {}  # prices seen -> lower bound
        self.wanted: list[Alloc] = list(alone_allocs)  # each order's optimum at the last prices
        self.best = float(sum(alone_lower))  # best Lagrangian bound so far (zero prices: each alone)
        self.lp_value = math.inf
        self.rounds = 0

    # ---- rows and active orders ------------------------------------------------------------

    def add_rows(self, rows: Iterable[Row]) -> None:
        new = set(rows) - self.rows
        self.rows |= new
        touched = set().union(*(self.users.get(r, set()) for r in new)) if new else set()
        for o in touched:
            kept = kept_options(self.tables[o], self.rows)
            if kept is None:
                self.active.pop(o, None)
                continue
            table = bound_table(self.tables[o], kept, self.rows, self.costs)
            self.active[o] = table
            self.priced_at.pop(o, None)
            for alloc in ((), self.alone_allocs[o]):  # everything unfilled keeps the master feasible
                self.add_column(o, alloc)

    def add_column(self, o: int, alloc: Alloc) -> None:
        """A plan of an active order, when its bound table can express it (a plan using an option
        a free one dominates is never needed: the free one's plan costs no more)."""
        table = self.active.get(o)
        if table is None or alloc in self.columns[o]:
            return
        index = {(op.candidate, op.delayed): k for k, op in enumerate(table.options)}
        units: dict[tuple[int, int], int] = defaultdict(int)
        for c, later, item, u in alloc:
            k = index.get((c, later))
            if k is None:
                return
            units[(k, item)] += u
        self.columns[o][alloc] = priced(table, [(k, i, u) for (k, i), u in units.items()]).cost

    def used_up(self, allocs: Sequence[Alloc]) -> set[Row]:
        """Rows a batch plan uses to the last unit (or package) that another order could use."""
        total: dict[Row, int] = defaultdict(int)
        for table, alloc in zip(self.tables, allocs, strict=True):
            for row, units in row_use(table, alloc).items():
                total[row] += units
        return {
            r for r, units in total.items() if units >= supply(self.candidates, r) and len(self.users[r]) > 1
        }

    # ---- the master ------------------------------------------------------------------------

    def _master(self) -> tuple[highspy.Highs, list[int], list[Row], list[tuple[int, Alloc]]]:
        orders = sorted(self.active)
        rows = sorted(self.rows, key=lambda r: (r[0] or "", r[1]))
        row_index = {r: len(orders) + i for i, r in enumerate(rows)}
        lower = [1.0] * len(orders) + [-np.inf] * len(rows)
        upper = [1.0] * len(orders) + [float(supply(self.candidates, r)) for r in rows]
        cost: list[float] = []
        starts: list[int] = []
        index: list[int] = []
        value: list[float] = []
        owners: list[tuple[int, Alloc]] = []
        for j, o in enumerate(orders):
            table = self.tables[o]
            for alloc, c in self.columns[o].items():
                starts.append(len(index))
                cost.append(c)
                owners.append((o, alloc))
                index.append(j)
                value.append(1.0)
                for row, units in row_use(table, alloc).items():
                    if row in row_index:
                        index.append(row_index[row])
                        value.append(float(units))
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.addRows(
            len(lower),
            np.asarray(lower),
            np.asarray(upper),
            0,
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.int32),
            np.zeros(0),
        )
        highs.addCols(
            len(cost),
            np.asarray(cost),
            np.zeros(len(cost)),
            np.full(len(cost), np.inf),
            len(index),
            np.asarray(starts, dtype=np.int32),
            np.asarray(index, dtype=np.int32),
            np.asarray(value),
        )
        return highs, orders, rows, owners

    def relax(self, deadline: float, report: Callable[[str], None] = lambda message: None) -> float:
        """Column generation until no plan prices out or the deadline; returns the best
        Lagrangian bound (valid at every round, whatever the prices)."""
        while self.active and time.perf_counter() < deadline:
            highs, orders, rows, _ = self._master()
            highs.run()
            if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                break
            self.lp_value = float(highs.getInfo().objective_function_value)
            duals = np.asarray(highs.getSolution().row_dual)
            row_duals = duals[len(orders) :]
            prices = {r: -float(d) for r, d in zip(rows, row_duals, strict=True) if d < 0}
            added = self._price(orders, duals[: len(orders)], prices, deadline)
            self.rounds += 1
            report(f"columns: LP {self.lp_value:,.1f}, bound {self.best:,.1f}, {added} new plans")
            if added is None or added == 0:
                break
        return self.best

    def _price(
        self, orders: Sequence[int], convexity: np.ndarray, prices: Mapping[Row, float], deadline: float
    ) -> int | None:
        """Each active order's priced problem; new columns; the Lagrangian bound. None when the
        deadline cut the pass short (a partial pass proves nothing)."""
        solver = _solver()
        lower = 0.0
        added = 0
        for j, o in enumerate(orders):
            table = self.active[o]
            seen = tuple(prices.get(r, 0.0) for option in table.options for r in option_rows(table, option))
            cached = self.priced_at.get(o)
            if cached is not None and cached[0] == seen:
                lower += cached[1]  # same prices: same optimum, its column is in the master already
                continue
            if time.perf_counter() > deadline:
                return None
            priced_table = _priced(table, prices)
            allowed = dominance_prune(priced_table)
            solution, bound = exact_bound(solver, priced_table, allowed, PRICING_LIMIT_S)
            self.priced_at[o] = (seen, bound)
            self.wanted[o] = alloc_of(table, solution.units)
            lower += bound
            if solution.cost < convexity[j] - REDUCED_COST_EPS:
                alloc = self.wanted[o]
                if alloc not in self.columns[o]:
                    self.columns[o][alloc] = priced(table, solution.units).cost
                    added += 1
        inactive = sum(v for o, v in enumerate(self.alone_lower) if o not in self.active)
        value = inactive + lower - sum(p * supply(self.candidates, r) for r, p in prices.items())
        self.best = max(self.best, value)
        return added

    def plans(
        self, time_limit_s: float, mip_rel_gap: float, start: Sequence[Alloc] | None = None
    ) -> list[Alloc] | None:
        """One plan per order: the master with binary columns (orders with only free options
        keep their own optimum), warm-started from ``start`` (a batch plan whose plans are
        columns). Feasible for the generated rows, not yet for the others. None when HiGHS found
        no integer point in the time."""
        allocs = list(self.alone_allocs)
        if not self.active:
            return allocs
        highs, _, _, owners = self._master()
        n = highs.getNumCol()
        highs.changeColsIntegrality(
            n, np.arange(n, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * n)
        )
        highs.setOptionValue("time_limit", max(0.5, time_limit_s))
        highs.setOptionValue("mip_rel_gap", mip_rel_gap)
        warm = [1.0 if start is not None and start[o] == alloc else 0.0 for o, alloc in owners]
        if start is not None and sum(warm) == len(self.active):
            solution = highspy.HighsSolution()
            solution.col_value = warm
            highs.setSolution(solution)
        highs.run()
        if highs.getInfo().primal_solution_status != FEASIBLE_POINT:
            return None
        values = np.asarray(highs.getSolution().col_value)
        reported = float(highs.getInfo().objective_function_value)
        costs = np.asarray([self.columns[o][alloc] for o, alloc in owners])
        if abs(float(costs @ values) - reported) > 1e-6 * max(1.0, abs(reported)):
            # highspy (1.16) can hand back the start instead of the better incumbent it reports
            # (seen when presolve finishes the model): solve again without the start.
            highs.clearSolver()
            highs.run()
            values = np.asarray(highs.getSolution().col_value)
        for col, (o, alloc) in enumerate(owners):
            if values[col] > 0.5:
                allocs[o] = alloc
        return allocs


def _priced(table: Table, prices: Mapping[Row, float]) -> Table:
    if not prices:
        return table
    options = []
    for option in table.options:
        c = option.candidate
        unit = tuple(u + prices.get((sku, c), 0.0) for u, sku in zip(option.unit, table.skus, strict=True))
        fixed = option.fixed + (0.0 if option.delayed else prices.get((None, c), 0.0))
        options.append(Option(c, fixed, unit, option.avail, option.delayed, option.twin))
    return with_options(table, options)
