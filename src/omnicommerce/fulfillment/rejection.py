"""A location cannot find units: written off there and re-routed (a shipment to the next best
location, a pickup to another pickup store nearby)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.core import (
    ROUTING_ACTOR,
    Placement,
    complete_order_if_done,
    create_fos,
    facts,
    locked,
    move,
    record_decision,
    rules_for,
    sourcing,
    unit_lines,
)
from omnicommerce.fulfillment.domain import (
    Action,
    BadRejection,
    FoLine,
    FulfillmentOrder,
    FulfillmentOrderChanged,
    Kind,
    next_status,
)
from omnicommerce.fulfillment.events import FulfillmentRejected, PickupRerouted
from omnicommerce.fulfillment.refunds import needs_refund
from omnicommerce.fulfillment.routing_service import place
from omnicommerce.fulfillment.rules import RoutingRules
from omnicommerce.fulfillment.unfilled import NOWHERE, cancel_unfilled
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import InsufficientStock, LocationInfo, haversine_km
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.db import UnitOfWork


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
    fo = locked(uow, actor, fo_id)
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
        fo = move(uow, fo, Action.REJECT, lines=repo.lines_json(remaining), reason=reason)
    elif not repo.update_fields(uow.conn, fo, lines=repo.lines_json(remaining), reason=reason):
        raise FulfillmentOrderChanged(f"fulfillment order {fo.id!r} changed; reload and retry")
    fo = replace(fo, lines=remaining, reason=reason)
    order = orders.get_order(uow, SYSTEM, fo.order_id)
    if fo.kind == Kind.PICKUP:
        rerouted, unfilled, decision_id = _reroute_pickup(uow, order, fo, lines)
    else:
        rerouted, unfilled, decision_id = _reroute(uow, order, fo, lines)
    uow.emit(
        FulfillmentRejected(
            **facts(fo),
            lines=unit_lines(lines),
            reason=reason,
            fully_rejected=fully,
            rerouted_to=[f.location_id for f in rerouted],
            unfilled=unit_lines(unfilled),
        )
    )
    complete_order_if_done(uow, fo.order_id)
    if fully and not rerouted and needs_refund(uow, fo.order_id):  # nothing left anywhere: pay it all back
        repo.set_refund_due(uow.conn, [fo.id], True)
    else:  # the rest carries on: what nobody can serve is cancelled and its price given back
        cancel_unfilled(uow, order, unfilled, decision_id=decision_id, reason=NOWHERE)
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
) -> tuple[list[FulfillmentOrder], dict[str, int], str]:
    rules = rules_for(uow, order.channel)
    refused = _refused(uow, order.id)
    placement, decision = place(
        uow, order, sorted(lines.items()), {}, rules, exclude=refused | {fo.location_id}
    )
    new = create_fos(uow, order, placement, Kind.SHIP, rerouted_from=fo.id)
    decision_id = record_decision(uow, order.id, f"rejection:{fo.id}", decision, placement)
    return new, placement.unfilled, decision_id


def _reroute_pickup(
    uow: UnitOfWork, order: Order, fo: FulfillmentOrder, lines: Mapping[str, int]
) -> tuple[list[FulfillmentOrder], dict[str, int], str]:
    """Units a pickup store could not find wait at the nearest other pickup store within the
    channel's ``pickup_reroute_km`` that holds them all (taken with the conditional update; the
    next store is tried when another order got them first), and the customer is told where
    (``pickup.rerouted``). No such store: they stay unfilled."""
    rules = rules_for(uow, order.channel)
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
        new = create_fos(uow, order, placement, Kind.PICKUP, rerouted_from=fo.id)
        decision_id = record_decision(
            uow, order.id, f"rejection:{fo.id}", {**decision, "packages": 1}, placement
        )
        uow.emit(
            PickupRerouted(
                **facts(new[0]),
                from_location_id=fo.location_id,
                distance_km=round(km, 2),
                lines=unit_lines(lines),
            )
        )
        return new, {}, decision_id
    nowhere = Placement({}, frozenset(), dict(lines))
    return [], dict(lines), record_decision(uow, order.id, f"rejection:{fo.id}", decision, nowhere)


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
    units, sites, _ = sourcing(uow, channel, lines, {}, rules, None)
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
