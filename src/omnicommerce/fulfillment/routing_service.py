"""Routing a paid order: its units are placed by the routing engine over the candidate locations
the channel's rules let through; the order's allocations (made at checkout) are then moved there
with the conditional update (:func:`inventory.move_allocations`), so two orders never both get
the last units of a store: the loser re-plans on what is left. Every routing is stored with its
explanation (``GET /orders/{id}/routing``). Also the routing rules per channel."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time
from typing import Any

from omnicommerce.carts import service as carts
from omnicommerce.carts.domain import CartNotFound
from omnicommerce.catalog import service as catalog
from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment import routing
from omnicommerce.fulfillment.core import (
    ROUTING_ACTOR,
    Placement,
    complete_order_if_done,
    create_fos,
    facts,
    postal_code_of,
    record_decision,
    rules_for,
    sourcing,
    unit_lines,
)
from omnicommerce.fulfillment.domain import (
    FulfillmentOrder,
    Kind,
    Site,
    capacity_left,
    rejection_reason,
    sum_units,
)
from omnicommerce.fulfillment.events import CarriedOut
from omnicommerce.fulfillment.routing.engine import route_order
from omnicommerce.fulfillment.rules import (
    DEFAULT_RULES,
    RoutingRules,
    cost_model_of,
    filters_of,
    pick_pack_cost,
)
from omnicommerce.fulfillment.unfilled import NOWHERE, cancel_unfilled
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import InsufficientStock, RowKey
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order
from omnicommerce.orders.domain import Status as OrderStatus
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.channels import get_channel
from omnicommerce.platform.db import UnitOfWork

log = logging.getLogger("omnicommerce.fulfillment")


MOVE_ATTEMPTS = 4  # re-plans after another order took units this plan counted on


TIME_BUDGET_MS = 50


def get_rules(uow: UnitOfWork, channel: str) -> tuple[RoutingRules, int]:
    """The channel's rules and their version (0: the defaults, never edited)."""
    get_channel(uow.conn, channel)
    stored = repo.get_rules(uow.conn, channel)
    if stored is None:
        return DEFAULT_RULES, 0
    return RoutingRules.model_validate_json(stored[0]), stored[1]


def put_rules(uow: UnitOfWork, actor: Principal, channel: str, rules: RoutingRules) -> int:
    get_channel(uow.conn, channel)
    return repo.put_rules(uow.conn, channel, rules.model_dump_json(), actor.id)


def route_paid_order(uow: UnitOfWork, order_id: str) -> list[FulfillmentOrder]:
    """Turn a paid order into fulfillment orders, one per location; once per order (a repeat
    returns what the first made). Never raises for a routing difficulty: when no better plan can
    be had, the units stay where checkout allocated them. Raises ``OrderChanged`` only when the
    order changed meanwhile (routed or cancelled by someone else); run again, it finds out which."""
    existing = repo.for_order(uow.conn, order_id)
    if existing:
        return existing
    order = orders.get_order(uow, SYSTEM, order_id)
    held = {(a.sku, a.location_id): a.quantity for a in inventory.order_allocations(uow, order_id=order.id)}
    if order.status != OrderStatus.PAID or not held:
        return []  # nothing to fulfil here: cancelled meanwhile, or a sale without allocations
    # First, so that a concurrent routing or cancel of the same order loses here (compare-and-set
    # on the order's version: OrderChanged rolls this routing back) before anything is moved.
    orders.start_fulfilment(uow, SYSTEM, order.id)
    if _carried_out(uow, order):
        return _carry_out(uow, order, held)
    rules = rules_for(uow, order.channel)
    pickup = (order.fulfillment or {}).get("type") == "pickup"
    if pickup:
        placement, decision = _keep_at_pickup_store(held)
    else:
        lines = [(ln.sku, ln.quantity) for ln in order.lines]
        placement, decision = place(uow, order, lines, held, rules, exclude=frozenset())
    fos = create_fos(uow, order, placement, Kind.PICKUP if pickup else Kind.SHIP, rerouted_from=None)
    decision_id = record_decision(uow, order.id, "order.paid", decision, placement)
    cancel_unfilled(uow, order, placement.unfilled, decision_id=decision_id, reason=NOWHERE)
    return fos


def _carried_out(uow: UnitOfWork, order: Order) -> bool:
    """A store-bound cart checked out with no fulfillment choice: a till sale the customer takes
    away now (the order reads as a pickup at that store; the cart tells which it was)."""
    chosen = order.fulfillment or {}
    if order.cart_id is None or order.location_id is None:
        return False
    if chosen.get("type") != "pickup" or chosen.get("location_id") != order.location_id:
        return False
    try:
        return carts.get_cart(uow, SYSTEM, order.cart_id).fulfillment is None
    except CartNotFound:  # erased since: without the cart's word, a pickup it stays
        return False


def _carry_out(uow: UnitOfWork, order: Order, held: Mapping[RowKey, int]) -> list[FulfillmentOrder]:
    """The units left the store with the customer: fulfillment orders created handed over, the
    units consumed from the store's stock (ledger reason ``sale``), the order completed."""
    placement = Placement(dict(held), frozenset(), {})
    fos = create_fos(uow, order, placement, Kind.CARRY_OUT, rerouted_from=None, handed_over_at=clock.now())
    for fo in fos:
        inventory.consume_allocations(
            uow,
            order_id=order.id,
            location_id=fo.location_id,
            lines=fo.units,
            reason="sale",
            actor=ROUTING_ACTOR,
        )
        uow.emit(CarriedOut(**facts(fo), lines=unit_lines(fo.units)))
    decision = {
        "method": "carry-out",
        "cost": 0.0,
        "packages": 0,
        "ship_to": None,
        "candidates": [
            {
                "location_id": f.location_id,
                "chosen": True,
                "reason": "sold at this store's till",
                "package_cost": None,
            }
            for f in fos
        ],
    }
    record_decision(uow, order.id, "order.paid", decision, placement)
    complete_order_if_done(uow, order.id)
    return fos


def _keep_at_pickup_store(held: Mapping[RowKey, int]) -> tuple[Placement, dict[str, Any]]:
    """A pickup order's units were reserved at the store the customer chose: nothing to route."""
    stores = sorted({loc for _, loc in held})
    decision = {
        "method": "pickup",
        "cost": 0.0,
        "packages": len(stores),
        "ship_to": None,
        "candidates": [
            {"location_id": s, "chosen": True, "reason": "the customer's pickup store", "package_cost": None}
            for s in stores
        ],
    }
    return Placement(dict(held), frozenset(), {}), decision


def place(
    uow: UnitOfWork,
    order: Order,
    lines: Sequence[tuple[str, int]],
    held: Mapping[RowKey, int],
    rules: RoutingRules,
    *,
    exclude: frozenset[str],
) -> tuple[Placement, dict[str, Any]]:
    """Plan ``lines`` over the candidates and move the order's allocations (``held``: the units
    of these lines it holds now, which count as available where they are) to the plan. Re-plans
    when another order took units first; falls back to ``held`` when every attempt lost."""
    decision: dict[str, Any] = {}
    for attempt in range(1, MOVE_ATTEMPTS + 1):
        plan_rows, delayed, unfilled, decision = _plan(uow, order, lines, held, rules, exclude)
        target = keep_unfilled_where_held(plan_rows, unfilled, held)
        moves = {k: target.get(k, 0) - held.get(k, 0) for k in set(target) | set(held)}
        try:
            inventory.move_allocations(
                uow, order_id=order.id, moves=moves, reason="route", actor=ROUTING_ACTOR
            )
        except InsufficientStock:
            continue
        decision["attempts"] = attempt
        return placement_of(target, delayed, lines), decision
    decision["attempts"] = MOVE_ATTEMPTS
    decision["fallback"] = "kept the checkout allocation: other orders took the planned units"
    return placement_of(held, frozenset(), lines), decision


def placement_of(
    rows: Mapping[RowKey, int], delayed: frozenset[str], lines: Sequence[tuple[str, int]]
) -> Placement:
    """``rows`` as the placement of ``lines``; what they do not cover is unfilled."""
    placed = sum_units([(sku, n) for (sku, _), n in rows.items()])
    left = {sku: n - placed.get(sku, 0) for sku, n in sum_units(lines).items()}
    return Placement(dict(rows), delayed, {s: n for s, n in left.items() if n > 0})


def keep_unfilled_where_held(
    rows: Mapping[RowKey, int], unfilled: Mapping[str, int], held: Mapping[RowKey, int]
) -> dict[RowKey, int]:
    """Units the plan could not place stay where the order already holds them, if it does."""
    target = dict(rows)
    for sku, missing in unfilled.items():
        for key, n in sorted(held.items()):
            if key[0] != sku or missing <= 0:
                continue
            used = rows.get(key, 0)
            extra = min(missing, n - used) if n > used else 0
            if extra > 0:
                target[key] = target.get(key, 0) + extra
                missing -= extra
    return target


def _plan(
    uow: UnitOfWork,
    order: Order,
    lines: Sequence[tuple[str, int]],
    held: Mapping[RowKey, int],
    rules: RoutingRules,
    exclude: frozenset[str],
) -> tuple[dict[RowKey, int], frozenset[str], dict[str, int], dict[str, Any]]:
    """Candidates from the rules, the engine's plan, and the explanation of both."""
    skus = sorted({sku for sku, _ in lines})
    stock, sites, ship_to = sourcing(uow, order.channel, skus, held, rules, postal_code_of(order))
    candidates, rejected = candidates_of(uow, stock, sites, rules, ship_to=ship_to, exclude=exclude)
    to_route = order_to_route(order, lines, weights_of(uow, skus), ship_to)
    plan = _solve(to_route, candidates, cost_model_of(rules, distance_known=ship_to is not None))
    rows, delayed, unfilled = rows_of(plan, lines)
    return rows, delayed, unfilled, decision_of(plan, sites, rejected, ship_to)


def weights_of(uow: UnitOfWork, skus: Iterable[str]) -> dict[str, float]:
    return {sku: v.weight_grams / 1000 for sku, v in catalog.get_variants(uow, list(skus)).items()}


def order_to_route(
    order: Order,
    lines: Sequence[tuple[str, int]],
    weights: Mapping[str, float],
    ship_to: tuple[float, float] | None,
) -> routing.OrderToRoute:
    return routing.OrderToRoute(
        order_id=order.id,
        lines=tuple(routing.Line(sku, qty, weights.get(sku, 0.0)) for sku, qty in lines),
        lat=ship_to[0] if ship_to else 0.0,
        lon=ship_to[1] if ship_to else 0.0,
    )


def candidates_of(
    uow: UnitOfWork,
    stock: Mapping[str, Mapping[str, int]],
    sites: Mapping[str, Site],
    rules: RoutingRules,
    *,
    ship_to: tuple[float, float] | None,
    exclude: frozenset[str],
) -> tuple[list[routing.Candidate], list[dict[str, Any]]]:
    """The locations the rule filters let through, as the engine's candidates, and the others
    with the reason they were left out."""
    filters = filters_of(rules)
    now = clock.now()
    used = repo.packages_today(uow.conn, sites.keys(), datetime.combine(now.date(), time(0), now.tzinfo))
    rejected: list[dict[str, Any]] = []
    candidates: list[routing.Candidate] = []
    for site in sites.values():
        reason = rejection_reason(site, filters, ship_to=ship_to, now=now, also_excluded=exclude)
        if reason is not None:
            rejected.append({"location_id": site.id, "kind": site.kind, "chosen": False, "reason": reason})
            continue
        assert site.lat is not None and site.lon is not None
        candidates.append(
            routing.Candidate(
                location_id=site.id,
                kind=site.kind,
                lat=site.lat,
                lon=site.lon,
                stock={sku: n for sku, n in stock[site.id].items() if n > 0},
                capacity_left=capacity_left(site, filters, used.get(site.id, 0)),
                pick_pack_cost=pick_pack_cost(rules, site.id, site.kind),
            )
        )
    return candidates, rejected


def rows_of(
    plan: routing.Plan, lines: Sequence[tuple[str, int]]
) -> tuple[dict[RowKey, int], frozenset[str], dict[str, int]]:
    """The plan as (sku, location) → units, the locations whose package is delayed, and the
    units it leaves unfilled."""
    rows: dict[RowKey, int] = {}
    delayed: set[str] = set()
    for a in plan.assignments:
        key = (lines[a.line_index][0], a.location_id)
        rows[key] = rows.get(key, 0) + a.quantity
        if a.delayed:
            delayed.add(a.location_id)
    return rows, frozenset(delayed), sum_units([(lines[i][0], n) for i, n in plan.unfilled])


def decision_of(
    plan: routing.Plan,
    sites: Mapping[str, Site],
    rejected: list[dict[str, Any]],
    ship_to: tuple[float, float] | None,
) -> dict[str, Any]:
    return {
        "method": plan.method,
        "cost": round(plan.cost, 4),
        "packages": plan.packages,
        "ship_to": list(ship_to) if ship_to else None,
        "candidates": [_report(r, sites) for r in plan.candidates] + [dict(r) for r in rejected],
    }


def _solve(
    order: routing.OrderToRoute, candidates: list[routing.Candidate], costs: routing.CostModel
) -> routing.Plan:
    """The engine's plan; if the engine fails, a plan placing nothing (the order then keeps its
    checkout allocation): a bug there must not stall the event stream behind this order."""
    try:
        return route_order(order, candidates, costs, time_budget_ms=TIME_BUDGET_MS)
    except Exception:
        log.exception("routing engine failed for order %s; keeping its checkout allocation", order.order_id)
        return routing.Plan(
            order_id=order.order_id,
            assignments=(),
            unfilled=tuple((i, ln.quantity) for i, ln in enumerate(order.lines)),
            cost=0.0,
            packages=0,
            method="engine-error",
            candidates=(),
        )


def _report(r: routing.CandidateReport, sites: Mapping[str, Site]) -> dict[str, Any]:
    site = sites.get(r.location_id)
    return {
        "location_id": r.location_id,
        "kind": site.kind if site else None,
        "chosen": r.chosen,
        "package_cost": round(r.package_cost, 4),
        "units_available": r.units_available,
        "reason": r.reason,
    }


def routing_of(uow: UnitOfWork, actor: Principal, order_id: str) -> tuple[Order, list[dict[str, Any]]]:
    """The order's routing decisions, oldest first; the order must be in the caller's reach."""
    order = orders.get_order(uow, actor, order_id)
    return order, repo.decisions(uow.conn, order.id)
