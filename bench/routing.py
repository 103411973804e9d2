"""``omni bench routing``: order routing on a seeded omnichannel instance, four ways, against a bound.

On the same instance, in one run: naive greedy, cost-aware greedy, the per-order optimizer (orders
in arrival order, each seeing what the previous ones left) and the batch optimizer (all open
orders together), next to the batch optimizer's proven lower bound on the batch optimum (a
Lagrangian bound: column generation over the shared stock and capacity rows). Every plan is checked
(never more units than stock, never more same-day packages than capacity) and priced by one
evaluator written from the cost model, independent of the solvers.

    omni bench routing [--seed 42] [--orders 5000] [--locations 200] [--skus 20000] [--budget 160]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentile
from omnicommerce.fulfillment.routing.baselines import cost_greedy, naive_greedy
from omnicommerce.fulfillment.routing.batch import route_batch
from omnicommerce.fulfillment.routing.engine import route_order
from omnicommerce.fulfillment.routing.instance import Instance, InstanceParameters, generate
from omnicommerce.fulfillment.routing.model import Plan
from omnicommerce.fulfillment.routing.sequence import Router, SequenceRun, route_in_sequence
from omnicommerce.inventory.domain import haversine_km

console = Console(stderr=True)


@dataclass(frozen=True)
class Outcome:
    name: str
    cost: float
    packages_per_order: float
    split_rate: float
    delayed_units: int
    unfilled_units: int
    unfilled_lines: int
    p50_ms: float | None
    p99_ms: float | None
    cpu_p99_ms: float | None
    seconds: float


def evaluate(
    name: str, instance: Instance, plans: Sequence[Plan], seconds: float, run: SequenceRun | None
) -> Outcome:
    """Checks feasibility against the initial stock and capacity, and prices the plans."""
    costs = instance.costs
    where = {c.location_id: c for c in instance.candidates}
    used: dict[tuple[str, str], int] = defaultdict(int)
    same_day: dict[str, int] = defaultdict(int)
    total = 0.0
    delayed = unfilled_units = unfilled_lines = split = packages = 0
    for order, plan in zip(instance.orders, plans, strict=True):
        assert plan.order_id == order.order_id
        served = [0] * len(order.lines)
        locations: dict[str, bool] = {}
        for a in plan.assignments:
            line = order.lines[a.line_index]
            served[a.line_index] += a.quantity
            used[(line.sku, a.location_id)] += a.quantity
            assert locations.setdefault(a.location_id, a.delayed) == a.delayed, "one package per location"
            unit = costs.per_kg * line.weight_kg + (costs.delay_cost_per_unit if a.delayed else 0.0)
            total += a.quantity * (unit - costs.slow_stock_bonus.get((a.location_id, line.sku), 0.0))
            delayed += a.quantity if a.delayed else 0
        missing = dict(plan.unfilled)
        for index, line in enumerate(order.lines):
            assert served[index] + missing.get(index, 0) == line.quantity, f"{order.order_id} line {index}"
            unfilled_units += missing.get(index, 0)
            unfilled_lines += 1 if missing.get(index, 0) else 0
        total += sum(missing.values()) * costs.lost_sale_cost_per_unit
        for location_id, late in locations.items():
            c = where[location_id]
            distance = haversine_km((order.lat, order.lon), (c.lat, c.lon))
            total += costs.per_package + c.pick_pack_cost + costs.per_km * distance
            same_day[location_id] += 0 if late else 1
        total += costs.split_penalty * max(0, len(locations) - 1)
        packages += len(locations)
        split += len(locations) > 1
    for (sku, location_id), units in used.items():
        assert units <= where[location_id].stock.get(sku, 0), f"{name}: oversold {sku} at {location_id}"
    for location_id, n in same_day.items():
        assert n <= where[location_id].capacity_left, f"{name}: {location_id} over capacity"
    n_orders = len(plans)
    return Outcome(
        name,
        total,
        packages / n_orders,
        split / n_orders,
        delayed,
        unfilled_units,
        unfilled_lines,
        percentile(run.solve_ms, 50) if run else None,
        percentile(run.solve_ms, 99) if run else None,
        percentile(run.cpu_ms, 99) if run else None,
        seconds,
    )


def in_sequence(name: str, instance: Instance, router: Router, progress: Progress) -> Outcome:
    task = progress.add_task(name, total=len(instance.orders))
    started = time.perf_counter()
    run = route_in_sequence(
        instance.orders,
        instance.candidates,
        instance.costs,
        router,
        progress=lambda n: progress.update(task, completed=n),
    )
    return evaluate(name, instance, run.plans, time.perf_counter() - started, run)


def batch(instance: Instance, budget_s: float, progress: Progress) -> tuple[Outcome, float, str]:
    task = progress.add_task("batch optimizer", total=1.0)

    def report(stage: str, share: float) -> None:
        progress.update(task, completed=share, description=f"batch optimizer: {stage}")

    result = route_batch(
        instance.orders, instance.candidates, instance.costs, time_budget_s=budget_s, progress=report
    )
    assert abs(result.cost - sum(p.cost for p in result.plans)) < 1e-3 * max(1.0, result.cost)
    assert result.bound <= result.cost + 1e-6
    outcome = evaluate("batch optimizer", instance, result.plans, result.seconds, None)
    return outcome, result.bound, result.bound_kind


def print_table(outcomes: Sequence[Outcome], bound: float, kind: str, instance: Instance) -> None:
    p = instance.parameters
    table = Table(
        title=f"Routing: {p.orders} orders, {p.locations} locations, {p.skus} SKUs (seed {p.seed})",
        caption=f"bound = {kind} lower bound on the batch optimum; solve times are per order (wall, CPU)",
    )
    for column in (
        "method",
        "total cost",
        "cost ÷ bound",
        "pkg/order",
        "split rate",
        "delayed u.",
        "unfilled u.",
        "p50 ms",
        "p99 ms",
        "p99 CPU ms",
        "seconds",
    ):
        table.add_column(column, justify="left" if column == "method" else "right")

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    for o in outcomes:
        table.add_row(
            o.name,
            f"{o.cost:,.0f}",
            f"{o.cost / bound:.4f}",
            f"{o.packages_per_order:.3f}",
            f"{o.split_rate:.1%}",
            str(o.delayed_units),
            str(o.unfilled_units),
            ms(o.p50_ms),
            ms(o.p99_ms),
            ms(o.cpu_p99_ms),
            f"{o.seconds:.1f}",
        )
    table.add_row(f"lower bound ({kind})", f"{bound:,.0f}", "1.0000", "", "", "", "", "", "", "", "")
    Console(width=180).print(table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--locations", type=int, default=200)
    parser.add_argument("--skus", type=int, default=20000)
    parser.add_argument("--budget", type=float, default=160.0, help="batch optimizer time budget, seconds")
    args = parser.parse_args(argv)
    parameters = InstanceParameters(
        seed=args.seed, orders=args.orders, locations=args.locations, skus=args.skus
    )
    instance = generate(parameters)
    gc.collect()
    gc.freeze()  # the instance is millions of long-lived objects: keep them out of GC passes
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        naive = in_sequence("naive greedy", instance, naive_greedy, progress)
        cost_aware = in_sequence("cost-aware greedy", instance, cost_greedy, progress)
        optimizer = in_sequence("per-order optimizer", instance, route_order, progress)
        batched, bound, kind = batch(instance, args.budget, progress)
    outcomes = [naive, cost_aware, optimizer, batched]
    print_table(outcomes, bound, kind, instance)
    print(
        f"routing: optimizer_vs_bound={optimizer.cost / bound:.4f} batch_vs_bound={batched.cost / bound:.4f} "
        f"greedy_vs_bound={naive.cost / bound:.4f} cost_greedy_vs_bound={cost_aware.cost / bound:.4f} "
        f"optimizer_packages_per_order={optimizer.packages_per_order:.3f} "
        f"batch_packages_per_order={batched.packages_per_order:.3f} "
        f"greedy_packages_per_order={naive.packages_per_order:.3f} unfilled_lines={batched.unfilled_lines} "
        f"solve_p99_ms={optimizer.p99_ms:.1f} batch_seconds={batched.seconds:.1f} bound={kind}"
    )


if __name__ == "__main__":
    main()
