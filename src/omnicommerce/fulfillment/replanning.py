"""Batch re-planning of a channel's open orders together (the batch MILP), so one order does
not keep the last units another needs more."""

from __future__ import annotations

import time as time_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment import routing
from omnicommerce.fulfillment.core import (
    ROUTING_ACTOR,
    Placement,
    create_fos,
    facts,
    move,
    postal_code_of,
    record_decision,
    rules_for,
    ship_to_of,
    sourcing,
)
from omnicommerce.fulfillment.domain import Action, FulfillmentOrder, Kind, Site, Status, rejection_reason
from omnicommerce.fulfillment.events import FulfillmentCancelled
from omnicommerce.fulfillment.routing.batch import route_batch
from omnicommerce.fulfillment.routing_service import (
    candidates_of,
    decision_of,
    keep_unfilled_where_held,
    order_to_route,
    place,
    placement_of,
    rows_of,
    weights_of,
)
from omnicommerce.fulfillment.rules import RoutingRules, cost_model_of, filters_of
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import RowKey
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.channels import get_channel
from omnicommerce.platform.db import UnitOfWork

MIN_BATCH_ROUND_S = 0.5  # a re-plan after dropping orders gets at least this long


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    orders: int  # open orders re-optimised together
    changed: int  # orders whose plan changed (allocations moved, fulfillment orders replaced)
    cost: float  # of the batch plan
    bound: float  # no plan of these orders costs less (Lagrangian bound)
    method: str
    dropped_for_distance: int = 0  # re-planned alone: the batch plan sent them beyond max_distance_km


def reoptimize_open_orders(
    uow: UnitOfWork, *, channel: str, limit: int = 500, time_budget_s: float = 30.0
) -> BatchOutcome:
    """Re-plan together the channel's routed orders that no location has started on (every
    fulfillment order still ``pending``), so one order does not keep the last units another
    needs more. Their current allocations count as available; the new plan is applied in this
    transaction — allocations moved (rows locked up front, in order) and changed orders' pending
    fulfillment orders replaced — or, if other orders took units meanwhile, not at all
    (``InsufficientStock``: nothing changed, run again)."""
    get_channel(uow.conn, channel)
    rules = rules_for(uow, channel)
    locked = {
        oid: repo.lock_order(uow.conn, oid) for oid in repo.open_shipment_orders(uow.conn, channel, limit)
    }
    batch = [
        oid
        for oid, fos in locked.items()
        if any(_replaceable(f) for f in fos)
        and all(_replaceable(f) or f.status == Status.CANCELLED for f in fos)
    ]
    order_of = {oid: orders.get_order(uow, SYSTEM, oid) for oid in batch}
    held = {oid: _held(uow, oid) for oid in batch}
    skus = sorted({ln.sku for o in order_of.values() for ln in o.lines})
    pooled: dict[RowKey, int] = {}
    for rows in held.values():
        for key, n in rows.items():
            pooled[key] = pooled.get(key, 0) + n
    stock, sites, _ = sourcing(uow, channel, skus, pooled, rules, None)
    ship_to = {oid: ship_to_of(postal_code_of(o), rules, sites) for oid, o in order_of.items()}
    batch = [oid for oid in batch if ship_to[oid] is not None]  # distance must mean something
    if not batch:
        return BatchOutcome(0, 0, 0.0, 0.0, "none")
    weights = weights_of(uow, skus)
    lines = _open_lines(uow, {oid: order_of[oid] for oid in batch})
    deadline = time_module.monotonic() + time_budget_s
    alone: list[str] = []
    while True:
        candidates, rejected = candidates_of(uow, stock, sites, rules, ship_to=None, exclude=frozenset())
        result = route_batch(
            [order_to_route(order_of[oid], lines[oid], weights, ship_to[oid]) for oid in batch],
            candidates,
            cost_model_of(rules, distance_known=True),
            time_budget_s=max(MIN_BATCH_ROUND_S, deadline - time_module.monotonic()),
        )
        far = _sent_too_far(batch, result.plans, sites, rules, ship_to)
        if not far:
            break
        # The engine plans the batch over one candidate set; the distance filter is per order:
        # orders it sent too far leave the batch with their units, to be re-planned alone.
        alone += sorted(far)
        for oid in far:
            for (sku, loc), n in held[oid].items():
                stock[loc][sku] -= n
        batch = [oid for oid in batch if oid not in far]
        if not batch:
            break
    targets: dict[str, Placement] = {}
    for oid, plan in zip(batch, result.plans if batch else (), strict=True):
        rows, delayed, unfilled = rows_of(plan, lines[oid])
        targets[oid] = placement_of(keep_unfilled_where_held(rows, unfilled, held[oid]), delayed, lines[oid])
    changed = [oid for oid in batch if targets[oid].rows != held[oid]]
    _apply_batch(uow, changed, held, targets)
    for oid, plan in zip(batch, result.plans if batch else (), strict=True):
        if oid in changed:
            _replace_pending(uow, order_of[oid], locked[oid], targets[oid])
            record_decision(uow, oid, "batch", decision_of(plan, sites, rejected, ship_to[oid]), targets[oid])
    for oid in alone:  # the single-order engine applies the distance filter to its own ship-to
        placement, decision = place(uow, order_of[oid], lines[oid], held[oid], rules, exclude=frozenset())
        if placement.rows != held[oid]:
            _replace_pending(uow, order_of[oid], locked[oid], placement)
            record_decision(uow, oid, "batch", decision, placement)
            changed.append(oid)
    cost, bound, method = (result.cost, result.bound, "batch-milp") if batch else (0.0, 0.0, "each-alone")
    return BatchOutcome(len(batch) + len(alone), len(changed), cost, bound, method, len(alone))


def _open_lines(uow: UnitOfWork, order_of: Mapping[str, Order]) -> dict[str, list[tuple[str, int]]]:
    """Each order's lines less the units cancelled because nobody could serve them (their price
    went back: planning them again would ship what the customer no longer pays for)."""
    cancelled = repo.cancelled_units_of_orders(uow.conn, order_of.keys())
    return {
        oid: [
            (ln.sku, ln.quantity - cancelled.get(oid, {}).get(ln.sku, 0))
            for ln in order.lines
            if ln.quantity > cancelled.get(oid, {}).get(ln.sku, 0)
        ]
        for oid, order in order_of.items()
    }


def _replace_pending(
    uow: UnitOfWork, order: Order, fos: Sequence[FulfillmentOrder], placement: Placement
) -> None:
    """The order's pending shipments cancelled; new ones where its allocations now are."""
    for f in filter(_replaceable, fos):
        move(uow, f, Action.CANCEL, reason="re-planned with other open orders")
        uow.emit(FulfillmentCancelled(**facts(f), reason="re-planned with other open orders"))
    create_fos(uow, order, placement, Kind.SHIP, rerouted_from=None)


def _sent_too_far(
    batch: Sequence[str],
    plans: Sequence[routing.Plan],
    sites: Mapping[str, Site],
    rules: RoutingRules,
    ship_to: Mapping[str, tuple[float, float] | None],
) -> set[str]:
    """Orders of the batch plan served from a location the distance filter rules out for them."""
    filters = filters_of(rules)
    if filters.max_distance_km is None:
        return set()
    now = clock.now()
    return {
        oid
        for oid, plan in zip(batch, plans, strict=True)
        if any(
            rejection_reason(
                sites[a.location_id], filters, ship_to=ship_to[oid], now=now, also_excluded=frozenset()
            )
            for a in plan.assignments
        )
    }


def _replaceable(fo: FulfillmentOrder) -> bool:
    return fo.kind == Kind.SHIP and fo.status == Status.PENDING


def _held(uow: UnitOfWork, order_id: str) -> dict[RowKey, int]:
    return {(a.sku, a.location_id): a.quantity for a in inventory.order_allocations(uow, order_id=order_id)}


def _apply_batch(
    uow: UnitOfWork,
    changed: Sequence[str],
    held: Mapping[str, Mapping[RowKey, int]],
    targets: Mapping[str, Placement],
) -> None:
    """Every order first gives back what it no longer needs, then takes what it newly needs
    (one order's new units may be another's old ones), every row locked up front in order."""
    moves = {
        oid: {
            k: targets[oid].rows.get(k, 0) - held[oid].get(k, 0)
            for k in set(targets[oid].rows) | set(held[oid])
        }
        for oid in changed
    }
    inventory.lock_stock_rows(uow, {k for m in moves.values() for k, n in m.items() if n})
    for sign in (-1, 1):
        for oid in changed:
            part = {k: n for k, n in moves[oid].items() if n * sign > 0}
            inventory.move_allocations(
                uow, order_id=oid, moves=part, reason="reoptimise", actor=ROUTING_ACTOR
            )
