"""Exact solvers for one order's table: enumeration of option sets (tiny cases) and a MILP with
HiGHS (everything else), plus the cost-aware greedy that is both a baseline and the fallback.

MILP (one order), over the options ``k`` and items ``i``:
    min  sum_k (fixed_k + split) y_k + sum_ki unit_ki x_ki + lost * sum_i u_i - split * s
    s.t. sum_k x_ki + u_i = qty_i                  (every unit shipped or lost)
         x_ki <= avail_ki * y_k                    (ships only from an opened package)
         s <= sum_k y_k,  0 <= s <= 1              (the first package pays no split penalty)
         y_k + y_twin(k) <= 1                      (a location ships today or later, not both)
         y binary, x integer >= 0, u >= 0
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import highspy
import numpy as np

from omnicommerce.fulfillment.routing.table import Solution, Table, fill

ENUMERATION_LIMIT = 600  # option sets for one or two SKUs; above this the MILP is faster
SMALL_ENUMERATION = 32  # option sets for any order
NODE_LIMIT = 20_000  # branch-and-bound nodes; past them the MILP answers
FEASIBLE_POINT = 2  # HiGHS primal_solution_status: a feasible solution is available


def set_count(options: int, max_size: int) -> int:
    return sum(math.comb(options, size) for size in range(max_size + 1))


def enumerable(table: Table, allowed: Sequence[int]) -> bool:
    sets = set_count(len(allowed), min(len(allowed), sum(table.qty)))
    return sets <= SMALL_ENUMERATION or (len(table.qty) <= 2 and sets <= ENUMERATION_LIMIT)


def enumerate_best(table: Table, allowed: Sequence[int]) -> Solution:
    """Every set of at most (total units) packages: an optimal plan never needs more."""
    best = fill(table, ())
    for size in range(1, min(len(allowed), sum(table.qty)) + 1):
        for chosen in itertools.combinations(allowed, size):
            if _has_twins(table, chosen):
                continue
            solution = fill(table, chosen)
            if solution.cost < best.cost - 1e-9:
                best = solution
    return best


def branch_best(table: Table, allowed: Sequence[int]) -> Solution | None:
    """Exact by branch and bound over sets of packages (a location's today and later options
    are one choice: at most one of them opens). A set's children add one location after its
    last; they are cut when even the cheapest further package with the cheapest unit of every
    item from any location left cannot beat the best set found. None past ``NODE_LIMIT`` nodes
    (the MILP answers instead)."""
    options, qty, lost, split = table.options, table.qty, table.lost, table.split
    groups = sorted(_location_groups(table, allowed), key=lambda g: min(options[k].fixed for k in g))
    unit_after, avail_after, fixed_after = _suffix_bounds(table, groups)
    best = min(greedy(table, allowed), fill(table, ()), key=lambda solution: solution.cost)
    max_size = sum(qty)
    nodes = 0
    stack: list[tuple[float, int, tuple[int, ...], float, tuple[float, ...], tuple[int, ...]]] = [
        (-math.inf, 0, (), 0.0, (math.inf,) * len(qty), (0,) * len(qty))
    ]
    while stack:
        bound, first, chosen, fixed, unit, avail = stack.pop()
        if bound >= best.cost - 1e-9:  # a better set was found since this one was queued
            continue
        nodes += 1
        if nodes > NODE_LIMIT:
            return None
        stop_here = fixed + split * (len(chosen) - 1) + _serve_bound(qty, lost, unit, avail)
        if chosen and stop_here < best.cost - 1e-9:  # else its exact cost cannot beat the best
            solution = fill(table, chosen)
            if solution.cost < best.cost - 1e-9:
                best = solution
        if len(chosen) >= max_size:
            continue
        opened = fixed + split * len(chosen)  # every further package pays the split penalty
        children: list[tuple[int, float]] = []
        for g in range(first, len(groups)):
            cheapest = [min(u, v) for u, v in zip(unit, unit_after[g], strict=True)]
            stock = [a + b for a, b in zip(avail, avail_after[g], strict=True)]
            lower = opened + fixed_after[g] + _serve_bound(qty, lost, cheapest, stock)
            if lower >= best.cost - 1e-9:
                break  # the bound only rises with g (fewer, dearer locations left): so do the rest
            children.append((g, lower))
        for g, lower in reversed(children):  # pushed in reverse: cheapest explored first
            for k in groups[g]:
                option = options[k]
                stack.append(
                    (
                        lower,
                        g + 1,
                        (*chosen, k),
                        fixed + option.fixed,
                        tuple(
                            min(u, v) if a > 0 else u
                            for u, v, a in zip(unit, option.unit, option.avail, strict=True)
                        ),
                        tuple(a + b for a, b in zip(avail, option.avail, strict=True)),
                    )
                )
    return best


def _suffix_bounds(
    table: Table, groups: Sequence[Sequence[int]]
) -> tuple[list[list[float]], list[list[int]], list[float]]:
    """From group g on: the cheapest unit and the stock per item, and the cheapest package."""
    options, items = table.options, len(table.qty)
    unit = [[math.inf] * items for _ in range(len(groups) + 1)]
    avail = [[0] * items for _ in range(len(groups) + 1)]
    fixed = [math.inf] * (len(groups) + 1)
    for g in range(len(groups) - 1, -1, -1):
        for i in range(items):
            units = [options[k].unit[i] for k in groups[g] if options[k].avail[i] > 0]
            unit[g][i] = min([unit[g + 1][i], *units])
            avail[g][i] = avail[g + 1][i] + max(options[k].avail[i] for k in groups[g])
        fixed[g] = min([fixed[g + 1], *(options[k].fixed for k in groups[g])])
    return unit, avail, fixed


def _serve_bound(qty: Sequence[int], lost: float, unit: Sequence[float], avail: Sequence[int]) -> float:
    """No plan ships an item's units for less than its cheapest unit, nor more than the stock."""
    total = 0.0
    for q, u, a in zip(qty, unit, avail, strict=True):
        shipped = min(q, a)
        total += min(u, lost) * shipped + lost * (q - shipped)
    return total


def _location_groups(table: Table, allowed: Sequence[int]) -> list[list[int]]:
    allowed_set = set(allowed)
    groups: list[list[int]] = []
    seen: set[int] = set()
    for k in allowed:
        if k in seen:
            continue
        twin = table.options[k].twin
        group = [k, twin] if twin in allowed_set and twin not in seen else [k]
        seen.update(group)
        groups.append(group)
    return groups


def _has_twins(table: Table, chosen: Sequence[int]) -> bool:
    twins = {table.options[k].twin for k in chosen}
    return any(k in twins for k in chosen)


def greedy(table: Table, allowed: Sequence[int]) -> Solution:
    """Cost-aware greedy: the cheapest single package that ships the whole order, else item by
    item the cheapest marginal source (an open package costs nothing more to use)."""
    options = table.options
    whole = [k for k in allowed if all(a >= q for a, q in zip(options[k].avail, table.qty, strict=True))]
    if whole:
        return min((fill(table, (k,)) for k in whole), key=lambda s: s.cost)
    chosen: list[int] = []
    for item, need in enumerate(table.qty):
        remaining = need - sum(options[k].avail[item] for k in chosen)
        while remaining > 0:
            best, best_cost = -1, table.lost * min(remaining, 1)
            for k in allowed:
                if k in chosen or options[k].avail[item] <= 0 or _has_twins(table, (*chosen, k)):
                    continue
                take = min(remaining, options[k].avail[item])
                marginal = (options[k].fixed + (table.split if chosen else 0.0)) / take + options[k].unit[
                    item
                ]
                if marginal < best_cost:
                    best, best_cost = k, marginal
            if best < 0:
                break
            chosen.append(best)
            remaining -= options[best].avail[item]
    return fill(table, chosen)


class MilpSolver:
    """One reusable HiGHS instance (creating one costs more than solving a small order)."""

    def __init__(self) -> None:
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        # No per-instance "threads": HiGHS sizes one scheduler per process at its first run, and an
        # instance asking for another size afterwards fails every solve (silently: greedy answers).
        self.highs.setOptionValue("mip_rel_gap", 1e-7)
        # Tiny models: these start-up passes cost more than the whole search (5 ms -> 1.5 ms).
        self.highs.setOptionValue("mip_heuristic_run_feasibility_jump", False)
        self.highs.setOptionValue("mip_detect_symmetry", False)
        self.highs.setOptionValue("presolve", "off")

    def solve(self, table: Table, allowed: Sequence[int], *, time_limit_s: float) -> Solution | None:
        """The optimal solution, or the best found within the limit, or None if none was found."""
        if time_limit_s <= 0:
            return None
        if not allowed:  # nowhere to ship from: every unit unfilled (HiGHS reports an empty model)
            return fill(table, ())
        highs = self.highs
        highs.clearModel()
        highs.setOptionValue("time_limit", max(1e-3, time_limit_s))
        highs.passModel(_order_model(table, allowed))
        highs.run()
        if highs.getInfo().primal_solution_status != FEASIBLE_POINT:
            return None
        values = highs.getSolution().col_value
        return fill(table, [k for j, k in enumerate(allowed) if values[j] > 0.5])

    def proved_optimal(self) -> bool:
        return bool(self.highs.getModelStatus() == highspy.HighsModelStatus.kOptimal)

    def dual_bound(self) -> float:
        """HiGHS's proven lower bound on the last order solved (its optimum when proven)."""
        return float(self.highs.getInfo().mip_dual_bound)


def exact_bound(
    solver: MilpSolver, table: Table, allowed: Sequence[int], time_limit_s: float
) -> tuple[Solution, float]:
    """Best solution and a proven lower bound on the order's optimum over ``allowed``."""
    if not allowed:
        solution = fill(table, ())
        return solution, solution.cost
    if enumerable(table, allowed):
        solution = enumerate_best(table, allowed)
        return solution, solution.cost
    branched = branch_best(table, allowed)
    if branched is not None:
        return branched, branched.cost
    found = solver.solve(table, allowed, time_limit_s=max(0.01, time_limit_s))
    fallback = greedy(table, allowed)
    if found is None:
        return fallback, min(fallback.cost, solver.dual_bound())
    best = found if found.cost <= fallback.cost else fallback
    return best, (best.cost if solver.proved_optimal() else min(best.cost, solver.dual_bound()))


def _order_model(table: Table, allowed: Sequence[int]) -> highspy.HighsLp:
    options = table.options
    n_y = len(allowed)
    items = len(table.qty)
    x_cols = [(j, i) for j, k in enumerate(allowed) for i in range(items) if options[k].avail[i] > 0]
    n_x = len(x_cols)
    u0 = n_y + n_x
    s_col = u0 + items
    n_cols = s_col + 1
    cost = np.zeros(n_cols)
    upper = np.ones(n_cols)
    integrality = [highspy.HighsVarType.kInteger] * (n_y + n_x) + [highspy.HighsVarType.kContinuous] * (
        items + 1
    )
    for j, k in enumerate(allowed):
        cost[j] = options[k].fixed + table.split
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lower_b: list[float] = []
    upper_b: list[float] = []
    # coverage rows 0..items-1
    for i in range(items):
        rows.append(i)
        cols.append(u0 + i)
        vals.append(1.0)
        cost[u0 + i] = table.lost
        upper[u0 + i] = table.qty[i]
        lower_b.append(table.qty[i])
        upper_b.append(table.qty[i])
    row = items
    for c, (j, i) in enumerate(x_cols):
        option = options[allowed[j]]
        col = n_y + c
        cost[col] = option.unit[i]
        upper[col] = option.avail[i]
        rows += [i, row, row]
        cols += [col, col, j]
        vals += [1.0, 1.0, -float(option.avail[i])]
        lower_b.append(-np.inf)
        upper_b.append(0.0)
        row += 1
    # s <= sum y
    rows.append(row)
    cols.append(s_col)
    vals.append(1.0)
    for j in range(n_y):
        rows.append(row)
        cols.append(j)
        vals.append(-1.0)
    lower_b.append(-np.inf)
    upper_b.append(0.0)
    cost[s_col] = -table.split
    row += 1
    position = {k: j for j, k in enumerate(allowed)}
    for j, k in enumerate(allowed):
        twin = options[k].twin
        if twin in position and position[twin] > j:
            rows += [row, row]
            cols += [j, position[twin]]
            vals += [1.0, 1.0]
            lower_b.append(-np.inf)
            upper_b.append(1.0)
            row += 1
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = row
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = upper
    lp.row_lower_ = np.asarray(lower_b)
    lp.row_upper_ = np.asarray(upper_b)
    lp.integrality_ = integrality
    set_matrix(lp, np.asarray(rows), np.asarray(cols), np.asarray(vals), row, n_cols)
    return lp


def set_matrix(
    lp: highspy.HighsLp, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, n_cols: int
) -> None:
    """Column-wise sparse matrix from coordinate triplets (duplicates summed)."""
    order = np.lexsort((rows, cols))
    rows, cols, vals = rows[order], cols[order], vals[order]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.searchsorted(cols, np.arange(n_cols + 1)).astype(np.int32)
    lp.a_matrix_.index_ = rows.astype(np.int32)
    lp.a_matrix_.value_ = vals.astype(np.float64)
    lp.a_matrix_.num_col_ = n_cols
    lp.a_matrix_.num_row_ = n_rows
