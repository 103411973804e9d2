"""Fulfillment use cases. Each takes a unit of work and never commits.

Routing: a paid order's units are placed by the routing engine over the candidate locations the
channel's rules let through; the order's allocations (made at checkout) are then moved there
with the conditional update (:func:`inventory.move_allocations`), so two orders never both get
the last units of a store: the loser re-plans on what is left. Every routing is stored with its
explanation (``GET /orders/{id}/routing``).
"""

from __future__ import annotations

import logging
import time as time_module
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any

from omnicommerce.carts import service as carts
from omnicommerce.carts.domain import CartNotFound
from omnicommerce.catalog import service as catalog
from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment import routing
from omnicommerce.fulfillment.domain import (
    ARRIVAL_STATES,
    DONE,
    REACHED_CUSTOMER,
    Action,
    BadRejection,
    BadReturn,
    Condition,
    CurbsideNotOffered,
    FoLine,
    FulfillmentOrder,
    FulfillmentOrderChanged,
    FulfillmentOrderNotFound,
    IllegalTransition,
    Kind,
    PickupExpired,
    Return,
    ReturnLine,
    ReturnNotFound,
    ReturnStatus,
    SameDayUnavailable,
    Site,
    SlotFull,
    Status,
    StoreKeyRequired,
    WrongPickupCode,
    bookable_slots,
    capacity_left,
    code_matches,
    is_expired,
    new_pickup_code,
    next_status,
    qr_payload,
    refund_for,
    rejection_reason,
    returnable,
    ship_to_point,
    slot_window,
    sum_units,
)
from omnicommerce.fulfillment.events import (
    CarriedOut,
    CurbsideArrived,
    FulfillmentAccepted,
    FulfillmentCancelled,
    FulfillmentCreated,
    FulfillmentDelivered,
    FulfillmentPacked,
    FulfillmentPicking,
    FulfillmentRejected,
    FulfillmentShipped,
    PickupCollected,
    PickupReady,
    PickupRerouted,
    ReturnLineOut,
    ReturnReceived,
    ReturnRefunded,
    RoutingDecided,
    UnitLine,
)
from omnicommerce.fulfillment.events import PickupExpired as PickupExpiredEvent
from omnicommerce.fulfillment.routing.batch import route_batch
from omnicommerce.fulfillment.routing.engine import route_order
from omnicommerce.fulfillment.rules import (
    DEFAULT_RULES,
    RoutingRules,
    cost_model_of,
    cutoff_of,
    filters_of,
    pick_pack_cost,
    slots_of,
    zones_of,
)
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import InsufficientStock, LocationInfo, RowKey, atp, haversine_km
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order
from omnicommerce.orders.domain import Status as OrderStatus
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.channels import get_channel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.web import decode_cursor

log = logging.getLogger("omnicommerce.fulfillment")

ROUTING_ACTOR = "fulfillment"
MOVE_ATTEMPTS = 4  # re-plans after another order took units this plan counted on
TIME_BUDGET_MS = 50
MIN_BATCH_ROUND_S = 0.5  # a re-plan after dropping orders gets at least this long

# --- rules -------------------------------------------------------------------------------------


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


def _rules_for(uow: UnitOfWork, channel: str) -> RoutingRules:
    stored = repo.get_rules(uow.conn, channel)
    return DEFAULT_RULES if stored is None else RoutingRules.model_validate_json(stored[0])


# --- routing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a set of units ended up: rows (sku, location) → units, and what nobody could take."""

    rows: dict[RowKey, int]
    delayed: frozenset[str]
    unfilled: dict[str, int]


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
    rules = _rules_for(uow, order.channel)
    pickup = (order.fulfillment or {}).get("type") == "pickup"
    if pickup:
        placement, decision = _keep_at_pickup_store(held)
    else:
        lines = [(ln.sku, ln.quantity) for ln in order.lines]
        placement, decision = _place(uow, order, lines, held, rules, exclude=frozenset())
    fos = _create_fos(uow, order, placement, Kind.PICKUP if pickup else Kind.SHIP, rerouted_from=None)
    _record_decision(uow, order.id, "order.paid", decision, placement)
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
    fos = _create_fos(uow, order, placement, Kind.CARRY_OUT, rerouted_from=None, handed_over_at=clock.now())
    for fo in fos:
        inventory.consume_allocations(
            uow,
            order_id=order.id,
            location_id=fo.location_id,
            lines=fo.units,
            reason="sale",
            actor=ROUTING_ACTOR,
        )
        uow.emit(CarriedOut(**_facts(fo), lines=_unit_lines(fo.units)))
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
    _record_decision(uow, order.id, "order.paid", decision, placement)
    _complete_order_if_done(uow, order.id)
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


def _place(
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
        target = _keep_unfilled_where_held(plan_rows, unfilled, held)
        moves = {k: target.get(k, 0) - held.get(k, 0) for k in set(target) | set(held)}
        try:
            inventory.move_allocations(
                uow, order_id=order.id, moves=moves, reason="route", actor=ROUTING_ACTOR
            )
        except InsufficientStock:
            continue
        decision["attempts"] = attempt
        return _placement(target, delayed, lines), decision
    decision["attempts"] = MOVE_ATTEMPTS
    decision["fallback"] = "kept the checkout allocation: other orders took the planned units"
    return _placement(held, frozenset(), lines), decision


def _placement(
    rows: Mapping[RowKey, int], delayed: frozenset[str], lines: Sequence[tuple[str, int]]
) -> Placement:
    """``rows`` as the placement of ``lines``; what they do not cover is unfilled."""
    placed = sum_units([(sku, n) for (sku, _), n in rows.items()])
    left = {sku: n - placed.get(sku, 0) for sku, n in sum_units(lines).items()}
    return Placement(dict(rows), delayed, {s: n for s, n in left.items() if n > 0})


def _keep_unfilled_where_held(
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
    stock, sites, ship_to = _sourcing(uow, order.channel, skus, held, rules, _postal_code(order))
    candidates, rejected = _candidates(uow, stock, sites, rules, ship_to=ship_to, exclude=exclude)
    to_route = _to_route(order, lines, _weights(uow, skus), ship_to)
    plan = _solve(to_route, candidates, cost_model_of(rules, distance_known=ship_to is not None))
    rows, delayed, unfilled = _rows_of(plan, lines)
    return rows, delayed, unfilled, _decision(plan, sites, rejected, ship_to)


def _postal_code(order: Order) -> str | None:
    address = (order.fulfillment or {}).get("address") or {}
    return address.get("postal_code")


def _weights(uow: UnitOfWork, skus: Iterable[str]) -> dict[str, float]:
    return {sku: v.weight_grams / 1000 for sku, v in catalog.get_variants(uow, list(skus)).items()}


def _to_route(
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


def _candidates(
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


def _rows_of(
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


def _decision(
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


def _sourcing(
    uow: UnitOfWork,
    channel: str,
    skus: Iterable[str],
    held: Mapping[RowKey, int],
    rules: RoutingRules,
    postal_code: str | None,
) -> tuple[dict[str, dict[str, int]], dict[str, Site], tuple[float, float] | None]:
    """Units available per location and sku (the order's own ``held`` units count where they
    are), what the filters need to know of each location, and the ship-to point."""
    sited, channel_rule = inventory.sourcing_positions(uow, skus=skus, channel=channel)
    stock: dict[str, dict[str, int]] = {}
    sites: dict[str, Site] = {}
    for p, loc in sited:
        stock.setdefault(loc.id, {})[p.sku] = atp(p, channel_rule.buffer) + held.get(p.key, 0)
        if loc.id not in sites:
            sites[loc.id] = Site(
                loc.id,
                loc.kind,
                loc.active,
                loc.capabilities,
                loc.lat,
                loc.lon,
                channel_rule.sees(loc.id),
                loc.postal_code,
            )
    return stock, sites, _ship_to(postal_code, rules, sites)


def _ship_to(
    postal_code: str | None, rules: RoutingRules, sites: Mapping[str, Site]
) -> tuple[float, float] | None:
    located = [
        (s.postal_code, s.lat, s.lon) for s in sites.values() if s.lat is not None and s.lon is not None
    ]
    return ship_to_point(postal_code, zones_of(rules), located)


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


def _create_fos(
    uow: UnitOfWork,
    order: Order,
    placement: Placement,
    kind: Kind,
    *,
    rerouted_from: str | None,
    window: tuple[datetime, datetime] | None = None,
    handed_over_at: datetime | None = None,
) -> list[FulfillmentOrder]:
    """One fulfillment order per location of ``placement``: pending, or picked up already when
    ``handed_over_at`` is given (a carry-out)."""
    by_location: dict[str, list[FoLine]] = {}
    for (sku, loc), n in sorted(placement.rows.items()):
        if n > 0:
            by_location.setdefault(loc, []).append(FoLine(sku, n))
    now = clock.now()
    fos = [
        FulfillmentOrder(
            id=new_id("ful"),
            order_id=order.id,
            order_number=order.number,
            channel=order.channel,
            customer_id=order.customer_id,
            location_id=loc,
            kind=kind,
            status=Status.PICKED_UP if handed_over_at else Status.PENDING,
            version=1,
            lines=tuple(lines),
            delayed=loc in placement.delayed,
            tracking_number=None,
            carrier=None,
            pickup_code=None,
            pickup_expires_at=None,
            arrived_at=None,
            arrival_bay=None,
            arrival_car=None,
            handed_over_at=handed_over_at,
            reason=None,
            rerouted_from=rerouted_from,
            created_at=now,
            updated_at=now,
            delivery_from=window[0] if window else None,
            delivery_until=window[1] if window else None,
        )
        for loc, lines in sorted(by_location.items())
    ]
    repo.insert_fos(uow.conn, fos)
    for fo in fos:
        uow.emit(
            FulfillmentCreated(
                **_facts(fo), lines=_unit_lines(fo.units), delayed=fo.delayed, rerouted_from=rerouted_from
            )
        )
    return fos


def _record_decision(
    uow: UnitOfWork, order_id: str, trigger: str, decision: dict[str, Any], placement: Placement
) -> None:
    chosen = sorted({loc for (_, loc), n in placement.rows.items() if n > 0})
    for c in decision["candidates"]:  # the final word on "chosen" is where the units went
        c["chosen"] = c["location_id"] in chosen
    decision["assignments"] = [
        {"sku": sku, "location_id": loc, "quantity": n, "delayed": loc in placement.delayed}
        for (sku, loc), n in sorted(placement.rows.items())
        if n > 0
    ]
    decision["unfilled"] = [{"sku": s, "quantity": n} for s, n in sorted(placement.unfilled.items())]
    decision_id = new_id("rtd")
    repo.insert_decision(uow.conn, decision_id, order_id, trigger, decision)
    uow.emit(
        RoutingDecided(
            order_id=order_id,
            decision_id=decision_id,
            trigger=trigger,
            method=str(decision["method"]),
            cost=float(decision["cost"]),
            packages=int(decision["packages"]),
            locations=chosen,
            unfilled=_unit_lines(placement.unfilled),
        )
    )


def routing_of(uow: UnitOfWork, actor: Principal, order_id: str) -> tuple[Order, list[dict[str, Any]]]:
    """The order's routing decisions, oldest first; the order must be in the caller's reach."""
    order = orders.get_order(uow, actor, order_id)
    return order, repo.decisions(uow.conn, order.id)


# --- reading -----------------------------------------------------------------------------------


def get_fo(uow: UnitOfWork, actor: Principal, fo_id: str) -> FulfillmentOrder:
    fo = repo.get(uow.conn, fo_id, actor=actor)
    if fo is None:
        raise FulfillmentOrderNotFound(f"no fulfillment order {fo_id!r}")
    return fo


def fos_of_order(uow: UnitOfWork, actor: Principal, order_id: str) -> list[FulfillmentOrder]:
    order = orders.get_order(uow, actor, order_id)
    return repo.for_order(uow.conn, order.id, actor=actor if actor.location else None)


def list_fos(
    uow: UnitOfWork,
    actor: Principal,
    *,
    location_id: str | None,
    statuses: Sequence[str] | None,
    cursor: str | None,
    limit: int,
) -> list[FulfillmentOrder]:
    return repo.search(
        uow.conn,
        actor,
        location_id=location_id,
        statuses=statuses,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )


def pickup_queue(
    uow: UnitOfWork, actor: Principal, location_id: str, *, curbside: bool, cursor: str | None, limit: int
) -> list[FulfillmentOrder]:
    """A store's open pickups (or, with ``curbside``, the customers waiting outside), oldest first.
    A store-bound key reaches only its own store; pickups past their window are left out."""
    inventory.read_location(uow, actor, location_id)
    now = clock.now()
    found = repo.search(
        uow.conn,
        actor,
        location_id=location_id,
        statuses=sorted(ARRIVAL_STATES),
        kind=Kind.PICKUP,
        arrived=True if curbside else None,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    return [fo for fo in found if not is_expired(fo, now)]


# --- transitions -------------------------------------------------------------------------------


def _locked(uow: UnitOfWork, actor: Principal, fo_id: str) -> FulfillmentOrder:
    """The fulfillment order, re-read after locking every fulfillment order of its order (in id
    order): transitions of one order's fulfillment orders run one at a time, so the last one to
    finish sees the others done and completes the order."""
    fo = get_fo(uow, actor, fo_id)
    siblings = repo.lock_order(uow.conn, fo.order_id)
    return next(f for f in siblings if f.id == fo.id)


def _move(uow: UnitOfWork, fo: FulfillmentOrder, action: Action, **values: Any) -> FulfillmentOrder:
    to = next_status(fo.kind, fo.status, action)
    if not repo.transition(uow.conn, fo, to_status=to, **values):
        raise FulfillmentOrderChanged(f"fulfillment order {fo.id!r} changed; reload and retry")
    return replace(fo, status=to, version=fo.version + 1, updated_at=clock.now(), **values)


_SIMPLE_EVENTS = {
    Action.ACCEPT: FulfillmentAccepted,
    Action.PICK: FulfillmentPicking,
    Action.PACK: FulfillmentPacked,
}


def advance(uow: UnitOfWork, actor: Principal, fo_id: str, action: Action) -> FulfillmentOrder:
    """accept, pick or pack: the location works through the order."""
    fo = _move(uow, _locked(uow, actor, fo_id), action)
    uow.emit(_SIMPLE_EVENTS[action](**_facts(fo)))
    return fo


def ship(
    uow: UnitOfWork, actor: Principal, fo_id: str, *, tracking_number: str, carrier: str | None
) -> FulfillmentOrder:
    """The parcel left: its units leave the location's stock (on hand and allocation)."""
    fo = _move(uow, _locked(uow, actor, fo_id), Action.SHIP, tracking_number=tracking_number, carrier=carrier)
    inventory.consume_allocations(
        uow, order_id=fo.order_id, location_id=fo.location_id, lines=fo.units, reason="ship", actor=actor.id
    )
    uow.emit(
        FulfillmentShipped(
            **_facts(fo), tracking_number=tracking_number, carrier=carrier, lines=_unit_lines(fo.units)
        )
    )
    return fo


def deliver(uow: UnitOfWork, actor: Principal, fo_id: str) -> FulfillmentOrder:
    fo = _move(uow, _locked(uow, actor, fo_id), Action.DELIVER)
    uow.emit(FulfillmentDelivered(**_facts(fo)))
    _complete_order_if_done(uow, fo.order_id)
    return fo


def cancel(uow: UnitOfWork, actor: Principal, fo_id: str, *, reason: str) -> FulfillmentOrder:
    """Staff cancel a fulfillment order that has not left: its units go back to sellable stock.
    (Money goes back through the order's own cancel or refund.)"""
    fo = _move(uow, _locked(uow, actor, fo_id), Action.CANCEL, reason=reason)
    _release(uow, fo, reason="fo_cancelled")
    uow.emit(FulfillmentCancelled(**_facts(fo), reason=reason))
    _complete_order_if_done(uow, fo.order_id)
    return fo


def _release(uow: UnitOfWork, fo: FulfillmentOrder, *, reason: str) -> None:
    inventory.move_allocations(
        uow,
        order_id=fo.order_id,
        moves={(sku, fo.location_id): -n for sku, n in fo.units.items()},
        reason=reason,
        actor=ROUTING_ACTOR,
    )


def _complete_order_if_done(uow: UnitOfWork, order_id: str) -> None:
    fos = repo.for_order(uow.conn, order_id)
    if not fos or any(f.status not in DONE for f in fos):
        return
    if not any(f.status in REACHED_CUSTOMER for f in fos):
        return  # nothing reached the customer: the money question belongs to the order
    if orders.get_order(uow, SYSTEM, order_id).status == OrderStatus.FULFILLING:
        orders.complete_fulfilment(uow, SYSTEM, order_id)


# --- rejection and re-routing ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    fulfillment_order: FulfillmentOrder
    rerouted_to: list[FulfillmentOrder]
    unfilled: dict[str, int]


def reject(
    uow: UnitOfWork, actor: Principal, fo_id: str, *, lines: Mapping[str, int], reason: str
) -> Rejection:
    """The location cannot find ``lines`` (sku → units) on the shelf: the units are written off
    there (ledger reason ``not_found``) and, for shipments, re-routed to the next best location
    (never back to one that rejected units of this order). Rejecting every remaining unit moves
    the fulfillment order to ``rejected``; a partial rejection keeps its status."""
    fo = _locked(uow, actor, fo_id)
    next_status(fo.kind, fo.status, Action.REJECT)  # legal now?
    _check_rejected_lines(fo, lines)
    inventory.consume_allocations(
        uow, order_id=fo.order_id, location_id=fo.location_id, lines=lines, reason="not_found", actor=actor.id
    )
    remaining = tuple(
        FoLine(ln.sku, ln.quantity - lines.get(ln.sku, 0), ln.rejected + lines.get(ln.sku, 0))
        for ln in fo.lines
    )
    fully = all(ln.quantity == 0 for ln in remaining)
    if fully:
        fo = _move(uow, fo, Action.REJECT, lines=repo.lines_json(remaining), reason=reason)
    elif not repo.update_fields(uow.conn, fo, lines=repo.lines_json(remaining), reason=reason):
        raise FulfillmentOrderChanged(f"fulfillment order {fo.id!r} changed; reload and retry")
    fo = replace(fo, lines=remaining, reason=reason)
    order = orders.get_order(uow, SYSTEM, fo.order_id)
    if fo.kind == Kind.PICKUP:
        rerouted, unfilled = _reroute_pickup(uow, order, fo, lines)
    else:
        rerouted, unfilled = _reroute(uow, order, fo, lines)
    uow.emit(
        FulfillmentRejected(
            **_facts(fo),
            lines=_unit_lines(lines),
            reason=reason,
            fully_rejected=fully,
            rerouted_to=[f.location_id for f in rerouted],
            unfilled=_unit_lines(unfilled),
        )
    )
    _complete_order_if_done(uow, fo.order_id)
    if fully and not rerouted and needs_refund(uow, fo.order_id):  # nothing left anywhere: pay it all back
        repo.set_refund_due(uow.conn, [fo.id], True)
    return Rejection(fo, rerouted, unfilled)


def _check_rejected_lines(fo: FulfillmentOrder, lines: Mapping[str, int]) -> None:
    have = fo.units
    bad = sorted(sku for sku, n in lines.items() if n <= 0 or n > have.get(sku, 0))
    if not lines or bad:
        raise BadRejection(
            "reject between 1 and the open quantity of this fulfillment order's skus; "
            f"not {', '.join(bad) or 'nothing'}",
            open_lines=have,
        )


def _refused(uow: UnitOfWork, order_id: str) -> frozenset[str]:
    """Locations that rejected units of this order: never asked for them again."""
    return frozenset(
        f.location_id for f in repo.for_order(uow.conn, order_id) if any(ln.rejected for ln in f.lines)
    )


def _reroute(
    uow: UnitOfWork, order: Order, fo: FulfillmentOrder, lines: Mapping[str, int]
) -> tuple[list[FulfillmentOrder], dict[str, int]]:
    rules = _rules_for(uow, order.channel)
    refused = _refused(uow, order.id)
    placement, decision = _place(
        uow, order, sorted(lines.items()), {}, rules, exclude=refused | {fo.location_id}
    )
    new = _create_fos(uow, order, placement, Kind.SHIP, rerouted_from=fo.id)
    _record_decision(uow, order.id, f"rejection:{fo.id}", decision, placement)
    return new, placement.unfilled


def _reroute_pickup(
    uow: UnitOfWork, order: Order, fo: FulfillmentOrder, lines: Mapping[str, int]
) -> tuple[list[FulfillmentOrder], dict[str, int]]:
    """Units a pickup store could not find wait at the nearest other pickup store within the
    channel's ``pickup_reroute_km`` that holds them all (taken with the conditional update; the
    next store is tried when another order got them first), and the customer is told where
    (``pickup.rerouted``). No such store: they stay unfilled."""
    rules = _rules_for(uow, order.channel)
    origin = inventory.get_location(uow, fo.location_id)
    stores = _pickup_stores_near(uow, order.channel, origin, lines, rules, exclude=_refused(uow, order.id))
    candidates = [
        {
            "location_id": loc,
            "chosen": False,
            "reason": f"{km:.1f} km from {fo.location_id}, holds every unit",
        }
        for loc, km in stores
    ]
    decision = {
        "method": "pickup-reroute",
        "cost": 0.0,
        "packages": 0,
        "ship_to": None,
        "candidates": candidates,
    }
    for loc, km in stores:
        rows = {(sku, loc): n for sku, n in lines.items()}
        try:
            inventory.move_allocations(
                uow, order_id=order.id, moves=rows, reason="route", actor=ROUTING_ACTOR
            )
        except InsufficientStock:
            continue  # another order took them since they were counted
        placement = Placement(rows, frozenset(), {})
        new = _create_fos(uow, order, placement, Kind.PICKUP, rerouted_from=fo.id)
        _record_decision(uow, order.id, f"rejection:{fo.id}", {**decision, "packages": 1}, placement)
        uow.emit(
            PickupRerouted(
                **_facts(new[0]),
                from_location_id=fo.location_id,
                distance_km=round(km, 2),
                lines=_unit_lines(lines),
            )
        )
        return new, {}
    _record_decision(uow, order.id, f"rejection:{fo.id}", decision, Placement({}, frozenset(), dict(lines)))
    return [], dict(lines)


def _pickup_stores_near(
    uow: UnitOfWork,
    channel: str,
    origin: LocationInfo,
    lines: Mapping[str, int],
    rules: RoutingRules,
    *,
    exclude: frozenset[str],
) -> list[tuple[str, float]]:
    """(store, km from ``origin``) of the active pickup stores the channel sees within
    ``pickup_reroute_km`` holding every unit of ``lines``, nearest first."""
    if origin.lat is None or origin.lon is None or rules.pickup_reroute_km <= 0:
        return []
    units, sites, _ = _sourcing(uow, channel, lines, {}, rules, None)
    found = []
    for site in sites.values():
        if site.id in exclude or site.id == origin.id or site.lat is None or site.lon is None:
            continue
        if not (site.active and "pickup" in site.capabilities and site.visible_to_channel):
            continue
        if any(units[site.id].get(sku, 0) < n for sku, n in lines.items()):
            continue
        km = haversine_km((origin.lat, origin.lon), (site.lat, site.lon))
        if km <= rules.pickup_reroute_km:
            found.append((site.id, km))
    return sorted(found, key=lambda x: (x[1], x[0]))


# --- pickup and curbside -----------------------------------------------------------------------


def ready_for_pickup(uow: UnitOfWork, actor: Principal, fo_id: str) -> FulfillmentOrder:
    """Packed and waiting at the store: a pickup code (and QR payload) and an expiry."""
    fo = _locked(uow, actor, fo_id)
    hours = _rules_for(uow, fo.channel).pickup_hold_hours
    expires = clock.now() + timedelta(hours=hours)
    code = new_pickup_code()
    fo = _move(uow, fo, Action.READY, pickup_code=code, pickup_expires_at=expires)
    uow.emit(
        PickupReady(**_facts(fo), pickup_code=code, qr_payload=qr_payload(fo.id, code), expires_at=expires)
    )
    return fo


def hand_over(uow: UnitOfWork, actor: Principal, fo_id: str, *, code: str) -> FulfillmentOrder:
    """The customer collects, at the counter or curbside: the store's own POS key checks the code."""
    fo = _locked(uow, actor, fo_id)
    if actor.is_customer or actor.location != fo.location_id:
        raise StoreKeyRequired("hand-overs are recorded with the pickup store's own POS key")
    if is_expired(fo, clock.now()):
        raise PickupExpired(f"the pickup window closed at {fo.pickup_expires_at:%Y-%m-%d %H:%M} UTC")
    next_status(fo.kind, fo.status, Action.HAND_OVER)
    if not code_matches(fo, code):
        raise WrongPickupCode("the pickup code does not match this order")
    fo = _move(uow, fo, Action.HAND_OVER, handed_over_at=clock.now())
    inventory.consume_allocations(
        uow, order_id=fo.order_id, location_id=fo.location_id, lines=fo.units, reason="pickup", actor=actor.id
    )
    uow.emit(
        PickupCollected(
            **_facts(fo), curbside=fo.arrived_at is not None, handover_seconds=fo.handover_seconds
        )
    )
    _complete_order_if_done(uow, fo.order_id)
    return fo


def arrived(
    uow: UnitOfWork, actor: Principal, fo_id: str, *, bay: str | None, car: str | None
) -> FulfillmentOrder:
    """Curbside: the customer is outside (announced from the app, the web, a call or a text). A
    repeat updates the bay and car but keeps the first arrival time."""
    fo = _locked(uow, actor, fo_id)
    if fo.kind != Kind.PICKUP or fo.status not in ARRIVAL_STATES or is_expired(fo, clock.now()):
        raise IllegalTransition(
            f"cannot announce an arrival for a {fo.kind} fulfillment order that is {fo.status}",
            status_now=fo.status,
            action="arrive",
        )
    if "curbside" not in inventory.get_location(uow, fo.location_id).capabilities:
        raise CurbsideNotOffered(f"store {fo.location_id!r} does not offer curbside pickup")
    at = fo.arrived_at or clock.now()
    if not repo.update_fields(uow.conn, fo, arrived_at=at, arrival_bay=bay, arrival_car=car):
        raise FulfillmentOrderChanged(f"fulfillment order {fo.id!r} changed; reload and retry")
    fo = replace(fo, version=fo.version + 1, arrived_at=at, arrival_bay=bay, arrival_car=car)
    uow.emit(CurbsideArrived(**_facts(fo), bay=bay, car=car))
    return fo


def due_pickups(uow: UnitOfWork, *, limit: int = 100) -> list[str]:
    """Pickups past their window still waiting at the store (oldest first)."""
    return [fo.id for fo in repo.expired_pickups(uow.conn, clock.now(), limit)]


def expire_pickup(uow: UnitOfWork, fo_id: str) -> FulfillmentOrder | None:
    """Cancel a pickup past its window and give its units back to sellable stock; it is marked
    ``refund_due`` for :func:`jobs.expire_pickups` to refund through the orders context. None
    when it was collected or cancelled meanwhile."""
    now = clock.now()
    fo = _locked(uow, SYSTEM, fo_id)
    if not is_expired(fo, now):
        return None
    fo = _move(uow, fo, Action.EXPIRE, reason="pickup window passed")
    _release(uow, fo, reason="pickup_expired")
    repo.set_refund_due(uow.conn, [fo.id], True)
    uow.emit(PickupExpiredEvent(**_facts(fo), expired_at=now))
    uow.emit(FulfillmentCancelled(**_facts(fo), reason="pickup window passed"))
    return fo


def refunds_due(uow: UnitOfWork, *, limit: int = 100) -> list[tuple[str, str]]:
    return repo.refunds_due(uow.conn, limit)


def refunds_due_of(uow: UnitOfWork, order_id: str) -> list[tuple[str, str]]:
    return repo.refunds_due(uow.conn, 100, order_id=order_id)


def refund_settled(uow: UnitOfWork, fo_id: str) -> None:
    repo.set_refund_due(uow.conn, [fo_id], False)


def needs_refund(uow: UnitOfWork, order_id: str) -> bool:
    """Refund the whole order only when nothing of it reached (or is on its way to) the customer."""
    fos = repo.for_order(uow.conn, order_id)
    order = orders.get_order(uow, SYSTEM, order_id)
    return order.status == OrderStatus.FULFILLING and all(
        f.status in (Status.CANCELLED, Status.REJECTED) for f in fos
    )


# --- same-day delivery -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotOffer:
    start: datetime
    end: datetime
    places_left: int


@dataclass(frozen=True, slots=True)
class SameDayOffer:
    location_id: str
    distance_km: float
    slots: list[SlotOffer]


def same_day_offers(
    uow: UnitOfWork, *, channel: str, postal_code: str, lines: Mapping[str, int]
) -> list[SameDayOffer]:
    """Stores that can deliver ``lines`` to ``postal_code`` today: offering same-day, in range,
    holding every unit, with a slot that has room and has not begun, before the cut-off.
    Nearest first. A quote, not a promise: booking decides with conditional updates."""
    rules = _rules_for(uow, channel)
    now = clock.now()
    slots = bookable_slots(now, cutoff_of(rules), slots_of(rules))
    if not rules.same_day.enabled or not slots or not lines:
        return []
    in_range = _same_day_stores(uow, channel, postal_code, lines, rules, held={})
    booked = repo.slots_booked(uow.conn, [loc for loc, _ in in_range], now.date().isoformat())
    offers = []
    for loc, km in in_range:
        open_slots = [
            SlotOffer(*slot_window(now, s), s.capacity - booked.get((loc, f"{s.start:%H:%M}"), 0))
            for s in slots
        ]
        open_slots = [s for s in open_slots if s.places_left > 0]
        if open_slots:
            offers.append(SameDayOffer(loc, round(km, 2), open_slots))
    return offers


def _same_day_stores(
    uow: UnitOfWork,
    channel: str,
    postal_code: str,
    lines: Mapping[str, int],
    rules: RoutingRules,
    *,
    held: Mapping[RowKey, int],
) -> list[tuple[str, float]]:
    """(store, km) of the stores offering same-day within range that hold every unit (counting
    ``held``, the units the order already has there), nearest first."""
    units, sites, ship_to = _sourcing(uow, channel, lines, held, rules, postal_code)
    if ship_to is None:
        return []
    found = []
    for site in sites.values():
        if not (site.active and "same_day" in site.capabilities and site.visible_to_channel):
            continue
        if (
            site.lat is None
            or site.lon is None
            or any(units[site.id].get(s, 0) < n for s, n in lines.items())
        ):
            continue
        km = haversine_km(ship_to, (site.lat, site.lon))
        if km <= rules.same_day.radius_km:
            found.append((site.id, km))
    return sorted(found, key=lambda x: (x[1], x[0]))


def book_same_day(
    uow: UnitOfWork, actor: Principal, order_id: str, *, location_id: str, slot_start: time
) -> FulfillmentOrder:
    """Switch a routed order that no location has started on to same-day delivery from
    ``location_id`` in today's slot starting ``slot_start``: the slot's place is taken with a
    conditional update, the order's allocations move to the store (all or nothing), its pending
    fulfillment orders are cancelled and one ``same_day`` fulfillment order replaces them."""
    order = orders.get_order(uow, actor, order_id)
    fos = repo.lock_order(uow.conn, order.id)
    if order.status != OrderStatus.FULFILLING or not fos:
        raise SameDayUnavailable(f"order {order.id!r} is not being fulfilled")
    if any(f.kind != Kind.SHIP or f.status != Status.PENDING for f in fos if f.status not in DONE):
        raise SameDayUnavailable("a location already started on this order, or it is not a shipment")
    rules = _rules_for(uow, order.channel)
    now = clock.now()
    slot = next(
        (s for s in bookable_slots(now, cutoff_of(rules), slots_of(rules)) if s.start == slot_start), None
    )
    if not rules.same_day.enabled or slot is None:
        raise SameDayUnavailable(f"no same-day slot at {slot_start:%H:%M} UTC is open for booking now")
    held = {(a.sku, a.location_id): a.quantity for a in inventory.order_allocations(uow, order_id=order.id)}
    demand = sum_units([(sku, n) for (sku, _), n in held.items()])
    stores = dict(_same_day_stores(uow, order.channel, _postal_code(order) or "", demand, rules, held=held))
    if location_id not in stores:
        raise SameDayUnavailable(
            f"{location_id!r} cannot deliver this order today (range, capability or stock)"
        )
    if not repo.book_slot(
        uow.conn, location_id, now.date().isoformat(), f"{slot.start:%H:%M}", slot.capacity
    ):
        raise SlotFull(f"the {slot.start:%H:%M} slot at {location_id!r} is fully booked")
    target = {(sku, location_id): n for sku, n in demand.items()}
    moves = {k: target.get(k, 0) - held.get(k, 0) for k in set(target) | set(held)}
    inventory.move_allocations(uow, order_id=order.id, moves=moves, reason="same_day", actor=actor.id)
    for f in fos:
        if f.status not in DONE:
            _move(uow, f, Action.CANCEL, reason="replaced by same-day delivery")
            uow.emit(FulfillmentCancelled(**_facts(f), reason="replaced by same-day delivery"))
    placement = Placement(target, frozenset(), {})
    [fo] = _create_fos(
        uow, order, placement, Kind.SAME_DAY, rerouted_from=None, window=slot_window(now, slot)
    )
    decision = {
        "method": "same-day",
        "cost": 0.0,
        "packages": 1,
        "ship_to": None,
        "candidates": [
            {"location_id": loc, "chosen": loc == location_id, "reason": f"{km:.1f} km, same-day in range"}
            for loc, km in sorted(stores.items())
        ],
    }
    _record_decision(uow, order.id, "same-day", decision, placement)
    return fo


# --- returns anywhere and exchanges ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReturnCommand:
    location_id: str  # where the units are received: any store, or the DC taking mail returns
    method: str  # in_store | mail
    lines: tuple[ReturnLine, ...]
    replacement: Mapping[str, int]  # sku → units for an exchange; empty: refund


def receive_return(uow: UnitOfWork, actor: Principal, order_id: str, cmd: ReturnCommand) -> Return:
    """Units of an order come back at any location (returns anywhere). For an exchange the
    replacement is reserved and allocated first — if it is not in stock nothing happens
    (``InsufficientStock``) — and ships as a new fulfillment order; otherwise the units' paid
    value is owed back to the original payment (``refund_pending``; the entrypoint refunds after
    commit). Sellable units go back on hand where received, damaged ones to the damaged bucket."""
    inventory.read_location(uow, actor, cmd.location_id)  # a store key receives at its own store
    order = orders.get_order(uow, SYSTEM, order_id)  # any store may take back any order
    if order.status in (OrderStatus.REFUNDED, OrderStatus.CANCELLED):
        raise BadReturn(f"order {order.id!r} is {order.status}: its money went back already")
    repo.lock_order(uow.conn, order.id)  # returns of one order one at a time: units come back once
    units = sum_units([(ln.sku, ln.quantity) for ln in cmd.lines])
    can = returnable(_received_units(uow, order), _returned_units(uow, order.id))
    too_many = sorted(sku for sku, n in units.items() if n > can.get(sku, 0))
    if too_many:
        raise BadReturn(
            f"more units of {', '.join(too_many)} than were received and not yet returned", returnable=can
        )
    return_id = new_id("ret")
    replacement_fo = _reserve_replacement(uow, order, return_id, cmd.replacement) if cmd.replacement else None
    inventory.record_return(
        uow,
        location_id=cmd.location_id,
        sellable=sum_units([(ln.sku, ln.quantity) for ln in cmd.lines if ln.condition == Condition.SELLABLE]),
        damaged=sum_units([(ln.sku, ln.quantity) for ln in cmd.lines if ln.condition == Condition.DAMAGED]),
        reference=return_id,
        actor=actor.id,
    )
    amount = (
        0 if replacement_fo else refund_for(units, {ln.sku: (ln.total, ln.quantity) for ln in order.lines})
    )
    status = ReturnStatus.EXCHANGED if replacement_fo else ReturnStatus.REFUND_PENDING
    ret = Return(
        id=return_id,
        order_id=order.id,
        location_id=cmd.location_id,
        method=cmd.method,
        status=status,
        lines=cmd.lines,
        refund_amount=amount,
        currency=order.currency,
        refund_reference=None,
        replacement_fulfillment_order_id=replacement_fo.id if replacement_fo else None,
        created_at=clock.now(),
    )
    repo.insert_return(uow.conn, ret, created_by=actor.id)
    uow.emit(
        ReturnReceived(
            return_id=ret.id,
            order_id=order.id,
            location_id=cmd.location_id,
            method=cmd.method,
            channel=order.channel,
            customer_id=order.customer_id,
            lines=[ReturnLineOut(sku=x.sku, quantity=x.quantity, condition=x.condition) for x in cmd.lines],
            refund_amount=amount,
            currency=order.currency,
            exchange=replacement_fo is not None,
        )
    )
    return ret


def _received_units(uow: UnitOfWork, order: Order) -> dict[str, int]:
    """What reached the customer: delivered or picked-up parts; a till sale's lines."""
    fos = repo.for_order(uow.conn, order.id)
    if not fos:
        done = order.status == OrderStatus.COMPLETED
        return sum_units([(ln.sku, ln.quantity) for ln in order.lines]) if done else {}
    return sum_units([(sku, n) for f in fos if f.status in REACHED_CUSTOMER for sku, n in f.units.items()])


def _returned_units(uow: UnitOfWork, order_id: str) -> dict[str, int]:
    return sum_units(
        [(ln.sku, ln.quantity) for r in repo.returns_of_order(uow.conn, order_id) for ln in r.lines]
    )


def _reserve_replacement(
    uow: UnitOfWork, order: Order, return_id: str, replacement: Mapping[str, int]
) -> FulfillmentOrder:
    """Reserve the replacement units (the conditional update decides), allocate them to the
    order and ship them: one new fulfillment order from where they were found."""
    inventory.reserve(
        uow, owner_id=return_id, channel=order.channel, demand=replacement, capability="ship", ttl_seconds=600
    )
    allocated = inventory.commit(
        uow,
        owner_id=return_id,
        order_id=order.id,
        demand=replacement,
        channel=order.channel,
        location_id=None,
        capability="ship",
    )
    rows = {(a.sku, a.location_id): a.quantity for a in allocated}
    fos = _create_fos(uow, order, Placement(rows, frozenset(), {}), Kind.SHIP, rerouted_from=None)
    return fos[0]


def get_return(uow: UnitOfWork, actor: Principal, return_id: str) -> Return:
    ret = repo.get_return(uow.conn, return_id)
    if ret is None or (actor.location is not None and actor.location != ret.location_id):
        raise ReturnNotFound(f"no return {return_id!r}")
    return ret


def returns_to_refund(uow: UnitOfWork, *, limit: int = 100) -> list[str]:
    return repo.returns_to_refund(uow.conn, limit)


def mark_return_refunded(uow: UnitOfWork, return_id: str, *, reference: str | None) -> None:
    ret = repo.get_return(uow.conn, return_id)
    if ret is None or not repo.mark_return_refunded(uow.conn, return_id, reference):
        return  # refunded already (a retry): once is enough
    uow.emit(
        ReturnRefunded(
            return_id=ret.id,
            order_id=ret.order_id,
            refund_amount=ret.refund_amount,
            currency=ret.currency,
            refund_reference=reference,
        )
    )


# --- batch re-optimisation ---------------------------------------------------------------------


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
    rules = _rules_for(uow, channel)
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
    stock, sites, _ = _sourcing(uow, channel, skus, pooled, rules, None)
    ship_to = {oid: _ship_to(_postal_code(o), rules, sites) for oid, o in order_of.items()}
    batch = [oid for oid in batch if ship_to[oid] is not None]  # distance must mean something
    if not batch:
        return BatchOutcome(0, 0, 0.0, 0.0, "none")
    weights = _weights(uow, skus)
    lines = {oid: [(ln.sku, ln.quantity) for ln in order_of[oid].lines] for oid in batch}
    deadline = time_module.monotonic() + time_budget_s
    alone: list[str] = []
    while True:
        candidates, rejected = _candidates(uow, stock, sites, rules, ship_to=None, exclude=frozenset())
        result = route_batch(
            [_to_route(order_of[oid], lines[oid], weights, ship_to[oid]) for oid in batch],
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
        rows, delayed, unfilled = _rows_of(plan, lines[oid])
        targets[oid] = _placement(_keep_unfilled_where_held(rows, unfilled, held[oid]), delayed, lines[oid])
    changed = [oid for oid in batch if targets[oid].rows != held[oid]]
    _apply_batch(uow, changed, held, targets)
    for oid, plan in zip(batch, result.plans if batch else (), strict=True):
        if oid in changed:
            _replace_pending(uow, order_of[oid], locked[oid], targets[oid])
            _record_decision(uow, oid, "batch", _decision(plan, sites, rejected, ship_to[oid]), targets[oid])
    for oid in alone:  # the single-order engine applies the distance filter to its own ship-to
        placement, decision = _place(uow, order_of[oid], lines[oid], held[oid], rules, exclude=frozenset())
        if placement.rows != held[oid]:
            _replace_pending(uow, order_of[oid], locked[oid], placement)
            _record_decision(uow, oid, "batch", decision, placement)
            changed.append(oid)
    cost, bound, method = (result.cost, result.bound, "batch-milp") if batch else (0.0, 0.0, "each-alone")
    return BatchOutcome(len(batch) + len(alone), len(changed), cost, bound, method, len(alone))


def _replace_pending(
    uow: UnitOfWork, order: Order, fos: Sequence[FulfillmentOrder], placement: Placement
) -> None:
    """The order's pending shipments cancelled; new ones where its allocations now are."""
    for f in filter(_replaceable, fos):
        _move(uow, f, Action.CANCEL, reason="re-planned with other open orders")
        uow.emit(FulfillmentCancelled(**_facts(f), reason="re-planned with other open orders"))
    _create_fos(uow, order, placement, Kind.SHIP, rerouted_from=None)


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


# --- helpers -----------------------------------------------------------------------------------


def _facts(fo: FulfillmentOrder) -> dict[str, Any]:
    return {
        "fulfillment_order_id": fo.id,
        "order_id": fo.order_id,
        "location_id": fo.location_id,
        "kind": fo.kind,
        "channel": fo.channel,
        "customer_id": fo.customer_id,
    }


def _unit_lines(units: Mapping[str, int] | Iterable[tuple[str, int]]) -> list[UnitLine]:
    items = units.items() if isinstance(units, Mapping) else units
    return [UnitLine(sku=sku, quantity=n) for sku, n in sorted(items)]


# --- privacy (called by customers.privacy for export and erasure requests) --------------------------


def customer_data(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    """The person's fulfillment orders, and the returns and routing decisions of their orders."""
    return repo.customer_rows(uow.conn, subject)


def erase_customer_pii(uow: UnitOfWork, subject: Subject) -> int:
    """The curbside car description and free text naming the person out of their fulfillment
    orders, and the ship-to point out of their routing decisions; units, locations, tracking
    numbers and times stay."""
    return repo.erase_customer_pii(uow.conn, subject)
