"""``route_order``: the cheapest plan for one order over the candidates' current stock.

Pipeline: build the option table (only candidates holding one of the order's SKUs), drop
dominated options (exact), cap to the best ``max_options`` (heuristic), then solve exactly:
enumeration for one or two SKUs, the HiGHS MILP otherwise. When the time budget runs out first,
the cost-aware greedy answers (``method="greedy"``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from omnicommerce.fulfillment.routing.exact import MilpSolver, enumerable, enumerate_best, greedy
from omnicommerce.fulfillment.routing.model import (
    Assignment,
    Candidate,
    CandidateReport,
    CostModel,
    OrderToRoute,
    Plan,
)
from omnicommerce.fulfillment.routing.table import (
    Option,
    Solution,
    Table,
    build_table,
    cap_options,
    dominance_prune,
)

MAX_OPTIONS = 16
_local = threading.local()


def _solver() -> MilpSolver:
    """One HiGHS instance per thread (they are not thread-safe, and costly to create)."""
    solver: MilpSolver | None = getattr(_local, "solver", None)
    if solver is None:
        solver = _local.solver = MilpSolver()
    return solver


def route_order(
    order: OrderToRoute,
    candidates: Sequence[Candidate],
    costs: CostModel,
    *,
    time_budget_ms: float = 50,
    max_options: int = MAX_OPTIONS,
) -> Plan:
    """The least-cost plan for ``order``; never ships more than a candidate's stock, and at most
    one package per location (delayed when the location has no capacity left today)."""
    deadline = time.perf_counter() + time_budget_ms / 1000
    table = build_table(order, candidates, costs)
    allowed = cap_options(table, dominance_prune(table), max_options)
    solution, method = solve_table(table, allowed, deadline)
    return to_plan(order, candidates, table, solution, method)


def solve_table(table: Table, allowed: Sequence[int], deadline: float) -> tuple[Solution, str]:
    """Exact when the budget allows, else the greedy; returns the solution and the method used."""
    if not allowed:
        return greedy(table, allowed), "none"
    if time.perf_counter() >= deadline:
        return greedy(table, allowed), "greedy"
    if enumerable(table, allowed):
        return enumerate_best(table, allowed), "enumeration"
    solver = _solver()
    found = solver.solve(table, allowed, time_limit_s=deadline - time.perf_counter())
    if found is not None and solver.proved_optimal():
        return found, "milp"
    fallback = greedy(table, allowed)
    if found is not None and found.cost < fallback.cost:
        return found, "milp"  # the budget ended the search: best plan found, not proven optimal
    return fallback, "greedy"


def to_plan(
    order: OrderToRoute, candidates: Sequence[Candidate], table: Table, solution: Solution, method: str
) -> Plan:
    assignments, unfilled = _per_line(order, candidates, table, solution)
    return Plan(
        order_id=order.order_id,
        assignments=assignments,
        unfilled=unfilled,
        cost=round(solution.cost, 6),
        packages=len({table.options[k].candidate for k, _, _ in solution.units}),
        method=method,
        candidates=explain(candidates, table, solution),
    )


def _per_line(
    order: OrderToRoute, candidates: Sequence[Candidate], table: Table, solution: Solution
) -> tuple[tuple[Assignment, ...], tuple[tuple[int, int], ...]]:
    """Spread each SKU's shipped units back over the order's lines, in line order."""
    assignments: list[Assignment] = []
    unfilled: list[tuple[int, int]] = []
    sources: dict[int, list[list[int]]] = {}
    for k, item, units in solution.units:
        sources.setdefault(item, []).append([k, units])
    for line_index, (line, item) in enumerate(zip(order.lines, table.line_items, strict=True)):
        need = line.quantity
        for source in sources.get(item, []):
            take = min(need, source[1])
            if take > 0:
                option = table.options[source[0]]
                location = candidates[option.candidate].location_id
                assignments.append(Assignment(line_index, location, take, option.delayed))
                source[1] -= take
                need -= take
        if need > 0:
            unfilled.append((line_index, need))
    return tuple(assignments), tuple(unfilled)


def explain(candidates: Sequence[Candidate], table: Table, solution: Solution) -> tuple[CandidateReport, ...]:
    """One row per candidate, chosen or not, with the reason."""
    by_candidate = {option.candidate: option for option in table.options}
    used = {table.options[k].candidate for k, _, _ in solution.units}
    chosen = [table.options[k] for k in solution.chosen if table.options[k].candidate in used]
    cheapest = min(chosen, key=lambda o: o.fixed, default=None)
    reports = []
    for index, candidate in enumerate(candidates):
        option = by_candidate.get(index)
        if option is None:
            reports.append(CandidateReport(candidate.location_id, False, 0.0, 0, "no stock for any line"))
            continue
        is_chosen = index in used
        reason = _reason(candidates, option, cheapest, is_chosen, table)
        reports.append(
            CandidateReport(
                candidate.location_id, is_chosen, round(option.fixed, 2), sum(option.avail), reason
            )
        )
    return tuple(reports)


def _reason(
    candidates: Sequence[Candidate], option: Option, cheapest: Option | None, is_chosen: bool, table: Table
) -> str:
    later = "; no capacity today (ships later, delay cost per unit)" if option.delayed else ""
    if is_chosen:
        return "chosen" + later
    if cheapest is None:
        return "not chosen: no plan ships anything" + later
    leader = candidates[cheapest.candidate].location_id
    if option.fixed > cheapest.fixed:
        return f"dearer than {leader} by {option.fixed - cheapest.fixed:.2f} per package" + later
    shipped = sum(option.avail)
    return f"ships only {shipped} of {sum(table.qty)} units: the plan needs fewer packages without it" + later
