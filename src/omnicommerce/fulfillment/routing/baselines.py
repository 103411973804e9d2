"""The two baselines the benchmark compares against, on the same option table as the optimizer.

- naive greedy: the closest location that has the whole order, else line by line the closest
  location with stock (what many platforms do; capacity is not looked at, so a package from a
  location with no capacity left ships later and pays the delay cost);
- cost-aware greedy: the cheapest single package for the whole order, else item by item the
  cheapest marginal source (a fair baseline: it sees package, distance, delay and split costs).
"""

from __future__ import annotations

from collections.abc import Sequence

from omnicommerce.fulfillment.routing.engine import to_plan
from omnicommerce.fulfillment.routing.exact import greedy
from omnicommerce.fulfillment.routing.model import Candidate, CostModel, OrderToRoute, Plan
from omnicommerce.fulfillment.routing.table import build_table, fill
from omnicommerce.inventory.domain import haversine_km


def naive_greedy(
    order: OrderToRoute, candidates: Sequence[Candidate], costs: CostModel, *, time_budget_ms: float = 0
) -> Plan:
    table = build_table(order, candidates, costs)
    options = table.options
    ship_to = (order.lat, order.lon)
    by_distance = sorted(
        range(len(options)),
        key=lambda k: haversine_km(
            ship_to, (candidates[options[k].candidate].lat, candidates[options[k].candidate].lon)
        ),
    )
    whole = [k for k in by_distance if all(a >= q for a, q in zip(options[k].avail, table.qty, strict=True))]
    if whole:
        return to_plan(order, candidates, table, fill(table, whole[:1]), "naive-greedy")
    chosen: list[int] = []
    for item, need in enumerate(table.qty):
        for k in by_distance:
            if need <= 0:
                break
            if options[k].avail[item] > 0:
                if k not in chosen:
                    chosen.append(k)
                need -= options[k].avail[item]
    return to_plan(order, candidates, table, fill(table, chosen), "naive-greedy")


def cost_greedy(
    order: OrderToRoute, candidates: Sequence[Candidate], costs: CostModel, *, time_budget_ms: float = 0
) -> Plan:
    table = build_table(order, candidates, costs)
    return to_plan(order, candidates, table, greedy(table, range(len(table.options))), "cost-greedy")
