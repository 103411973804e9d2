"""Routing orders one at a time in arrival order, each seeing the stock and capacity the orders
before it left (what a per-order router does in production)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from omnicommerce.fulfillment.routing.model import Candidate, CostModel, OrderToRoute, Plan

Router = Callable[..., Plan]


@dataclass(frozen=True, slots=True)
class SequenceRun:
    plans: tuple[Plan, ...]
    solve_ms: tuple[float, ...]  # per order, wall time of the router call
    cpu_ms: tuple[float, ...]  # per order, CPU time of this thread in the router call


def route_in_sequence(
    orders: Sequence[OrderToRoute],
    candidates: Sequence[Candidate],
    costs: CostModel,
    router: Router,
    *,
    time_budget_ms: float = 50,
    progress: Callable[[int], None] | None = None,
) -> SequenceRun:
    """Calls ``router`` per order, then takes the plan's units out of stock and its same-day
    packages out of capacity before the next order."""
    stock = [dict(c.stock) for c in candidates]
    live = [replace(c, stock=stock[i]) for i, c in enumerate(candidates)]
    index = {c.location_id: i for i, c in enumerate(candidates)}
    plans: list[Plan] = []
    solve_ms: list[float] = []
    cpu_ms: list[float] = []
    for n, order in enumerate(orders):
        started, cpu = time.perf_counter(), time.thread_time()
        plan = router(order, live, costs, time_budget_ms=time_budget_ms)
        solve_ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.thread_time() - cpu) * 1000)
        plans.append(plan)
        _consume(order, plan, stock, live, index)
        if progress is not None:
            progress(n + 1)
    return SequenceRun(tuple(plans), tuple(solve_ms), tuple(cpu_ms))


def _consume(
    order: OrderToRoute, plan: Plan, stock: list[dict[str, int]], live: list[Candidate], index: dict[str, int]
) -> None:
    same_day: set[int] = set()
    for assignment in plan.assignments:
        at = index[assignment.location_id]
        sku = order.lines[assignment.line_index].sku
        stock[at][sku] -= assignment.quantity
        if not assignment.delayed:
            same_day.add(at)
    for at in same_day:
        live[at] = replace(live[at], capacity_left=live[at].capacity_left - 1)
