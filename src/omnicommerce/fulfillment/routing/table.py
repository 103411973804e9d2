"""One order's routing problem as a small table of *options* (a location shipping one package,
today or delayed) by *items* (the order's distinct SKUs), plus the exact cost of a set of options.

Every solver (enumeration, MILP, greedy, batch) works on this table, so they all price a plan the
same way: fixed cost per package, split penalty per package beyond the first, unit costs, and the
lost-sale cost for units nobody serves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from omnicommerce.fulfillment.routing.model import Candidate, CostModel, OrderToRoute
from omnicommerce.inventory.domain import haversine_km

INF = math.inf


@dataclass(frozen=True, slots=True)
class Option:
    """One possible package: location ``candidate`` (index into the candidate list) ships it."""

    candidate: int
    fixed: float  # package cost: pick/pack + distance (+ capacity balance, + batch prices)
    unit: tuple[float, ...]  # per item: cost per unit shipped from here (INF when unavailable)
    avail: tuple[int, ...]  # per item: units it can ship, capped at the item's quantity
    delayed: bool  # its units leave after today (no capacity today)
    twin: int = -1  # index of the other option of the same location (today vs delayed), if any

    def touched(self) -> int:
        return sum(1 << i for i, a in enumerate(self.avail) if a > 0)


@dataclass(frozen=True, slots=True)
class Table:
    """The order's items (distinct SKUs) and its options."""

    skus: tuple[str, ...]
    qty: tuple[int, ...]
    weight: tuple[float, ...]
    line_items: tuple[int, ...]  # order line index -> item index
    lost: float  # lost-sale cost per unit
    split: float  # extra cost per package beyond the first
    options: tuple[Option, ...]

    def full_mask(self, option: Option) -> int:
        return sum(1 << i for i, a in enumerate(option.avail) if a >= self.qty[i])


@dataclass(frozen=True, slots=True)
class Solution:
    """Chosen options and the units each ships per item; ``lost`` per item; exact cost."""

    chosen: tuple[int, ...]  # option indices
    units: tuple[tuple[int, int, int], ...]  # (option, item, units)
    lost: tuple[int, ...]
    cost: float


def order_items(
    order: OrderToRoute,
) -> tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], tuple[int, ...]]:
    """Lines grouped by SKU, so one location's stock of a SKU is never counted twice."""
    index: dict[str, int] = {}
    qty: list[int] = []
    weight: list[float] = []
    line_items: list[int] = []
    for line in order.lines:
        if line.sku not in index:
            index[line.sku] = len(qty)
            qty.append(0)
            weight.append(line.weight_kg)
        qty[index[line.sku]] += line.quantity
        line_items.append(index[line.sku])
    return tuple(index), tuple(qty), tuple(weight), tuple(line_items)


def package_cost(order: OrderToRoute, candidate: Candidate, costs: CostModel) -> float:
    distance = haversine_km((order.lat, order.lon), (candidate.lat, candidate.lon))
    balance = costs.capacity_balance_weight / (1 + max(0, candidate.capacity_left))
    return costs.per_package + candidate.pick_pack_cost + costs.per_km * distance + balance


def build_table(order: OrderToRoute, candidates: Sequence[Candidate], costs: CostModel) -> Table:
    """Options for the candidates holding at least one of the order's SKUs (delayed when the
    location has no capacity left today)."""
    skus, qty, weight, line_items = order_items(order)
    options: list[Option] = []
    plain = tuple(costs.per_kg * w for w in weight)  # unit cost today with no bonus
    bonus = bool(costs.slow_stock_bonus)
    wanted = tuple(zip(skus, qty, strict=True))
    for c_index, candidate in enumerate(candidates):
        stock = candidate.stock
        avail = tuple(min(q, max(0, stock.get(sku, 0))) for sku, q in wanted)
        if not any(avail):
            continue
        delayed = candidate.capacity_left <= 0
        if delayed or bonus:
            unit = unit_costs(candidate.location_id, skus, weight, avail, costs, delayed)
        else:
            unit = tuple(u if a > 0 else INF for u, a in zip(plain, avail, strict=True))
        options.append(Option(c_index, package_cost(order, candidate, costs), unit, avail, delayed))
    return Table(
        skus, qty, weight, line_items, costs.lost_sale_cost_per_unit, costs.split_penalty, tuple(options)
    )


def unit_costs(
    location_id: str,
    skus: Sequence[str],
    weight: Sequence[float],
    avail: Sequence[int],
    costs: CostModel,
    delayed: bool,
) -> tuple[float, ...]:
    delay = costs.delay_cost_per_unit if delayed else 0.0
    bonus = costs.slow_stock_bonus
    return tuple(
        INF if a <= 0 else costs.per_kg * w + delay - bonus.get((location_id, sku), 0.0)
        for sku, w, a in zip(skus, weight, avail, strict=True)
    )


def fill(table: Table, chosen: Sequence[int]) -> Solution:
    """The exact cost of shipping from ``chosen``: each item takes its cheapest units first
    (items are independent once the packages are fixed) and loses what nobody ships."""
    options = table.options
    units: list[tuple[int, int, int]] = []
    lost: list[int] = []
    cost = sum(options[k].fixed for k in chosen) + table.split * max(0, len(chosen) - 1)
    for item, need in enumerate(table.qty):
        for k in sorted(chosen, key=lambda k: options[k].unit[item]):
            if need == 0 or options[k].unit[item] >= table.lost:
                break
            take = min(need, options[k].avail[item])
            if take > 0:
                units.append((k, item, take))
                cost += take * options[k].unit[item]
                need -= take
        lost.append(need)
        cost += need * table.lost
    used = tuple(k for k in chosen if any(u[0] == k for u in units))
    if len(used) < len(chosen):  # an option that ships nothing only adds cost: drop it
        return fill(table, used)
    return Solution(tuple(chosen), tuple(units), tuple(lost), cost)


def dominance_prune(table: Table, keep: Sequence[int] = ()) -> list[int]:
    """Options no optimal plan needs: ``m`` dominates ``l`` when it is no dearer per package,
    can ship *all* of every item ``l`` touches, at no higher unit cost, and has no twin (so
    swapping ``l`` for ``m``, or merging ``l`` into ``m``, is always allowed)."""
    options = table.options
    order = sorted(
        range(len(options)), key=lambda k: (options[k].fixed, options[k].candidate, options[k].delayed)
    )
    kept: list[int] = []
    dominators: list[tuple[int, Option]] = []  # (full mask, option)
    forced = set(keep)
    for k in order:
        option = options[k]
        touched = option.touched()
        dominated = any(
            (touched & ~mask) == 0
            and all(m.unit[i] <= option.unit[i] for i in range(len(table.qty)) if touched >> i & 1)
            for mask, m in dominators
        )
        if dominated and k not in forced:
            continue
        kept.append(k)
        if option.twin < 0:
            dominators.append((table.full_mask(option), option))
    return kept


def cap_options(table: Table, kept: Sequence[int], limit: int, keep: Sequence[int] = ()) -> list[int]:
    """At most ``limit`` options: per item the cheapest few that ship it, then the cheapest
    per unit covered. A heuristic (the exact solvers see every kept option when under the cap)."""
    if len(kept) <= limit:
        return list(kept)
    options = table.options
    chosen: dict[int, None] = dict.fromkeys(keep)
    per_item = max(2, limit // (2 * max(1, len(table.qty))))
    for item in range(len(table.qty)):
        shipping = [k for k in kept if options[k].avail[item] > 0]
        shipping.sort(key=lambda k: options[k].fixed / min(1.0, options[k].avail[item] / table.qty[item]))
        chosen.update(dict.fromkeys(shipping[:per_item]))
    by_value = sorted(kept, key=lambda k: options[k].fixed / sum(options[k].avail))
    for k in by_value:
        if len(chosen) >= limit:
            break
        chosen.setdefault(k)
    return list(chosen)


def priced(table: Table, units: Sequence[tuple[int, int, int]]) -> Solution:
    """The exact cost of an explicit allocation (option, item, units), e.g. a batch solution
    where another order's claim on stock decides which units an option ships."""
    options = table.options
    shipped = [0] * len(table.qty)
    kept = [(k, i, u) for k, i, u in units if u > 0]
    chosen = tuple(dict.fromkeys(k for k, _, _ in kept))
    cost = sum(options[k].fixed for k in chosen) + table.split * max(0, len(chosen) - 1)
    for k, item, u in kept:
        shipped[item] += u
        cost += u * options[k].unit[item]
    lost = tuple(q - s for q, s in zip(table.qty, shipped, strict=True))
    cost += sum(lost) * table.lost
    return Solution(chosen, tuple(kept), lost, cost)


def with_options(table: Table, options: Sequence[Option]) -> Table:
    return Table(
        table.skus, table.qty, table.weight, table.line_items, table.lost, table.split, tuple(options)
    )
