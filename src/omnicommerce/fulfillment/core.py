"""What every fulfillment capability shares: the channel's rules, where stock is and where the
order ships to, fulfillment orders created, locked and moved through their state machine, the
routing decision recorded, and the facts every event carries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.domain import (
    DONE,
    REACHED_CUSTOMER,
    Action,
    FoLine,
    FulfillmentOrder,
    FulfillmentOrderChanged,
    FulfillmentOrderNotFound,
    Kind,
    Site,
    Status,
    next_status,
    ship_to_point,
)
from omnicommerce.fulfillment.events import FulfillmentCreated, RoutingDecided, UnitLine
from omnicommerce.fulfillment.rules import DEFAULT_RULES, RoutingRules, zones_of
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import RowKey, atp
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order
from omnicommerce.orders.domain import Status as OrderStatus
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id

ROUTING_ACTOR = "fulfillment"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a set of units ended up: rows (sku, location) → units, and what nobody could take."""

    rows: dict[RowKey, int]
    delayed: frozenset[str]
    unfilled: dict[str, int]


def rules_for(uow: UnitOfWork, channel: str) -> RoutingRules:
    stored = repo.get_rules(uow.conn, channel)
    return DEFAULT_RULES if stored is None else RoutingRules.model_validate_json(stored[0])


def postal_code_of(order: Order) -> str | None:
    address = (order.fulfillment or {}).get("address") or {}
    return address.get("postal_code")


def sourcing(
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
    return stock, sites, ship_to_of(postal_code, rules, sites)


def ship_to_of(
    postal_code: str | None, rules: RoutingRules, sites: Mapping[str, Site]
) -> tuple[float, float] | None:
    located = [
        (s.postal_code, s.lat, s.lon) for s in sites.values() if s.lat is not None and s.lon is not None
    ]
    return ship_to_point(postal_code, zones_of(rules), located)


def create_fos(
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
                **facts(fo), lines=unit_lines(fo.units), delayed=fo.delayed, rerouted_from=rerouted_from
            )
        )
    return fos


def record_decision(
    uow: UnitOfWork, order_id: str, trigger: str, decision: dict[str, Any], placement: Placement
) -> str:
    """Store the decision (with where the units went and what nobody could take); its id."""
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
            unfilled=unit_lines(placement.unfilled),
        )
    )
    return decision_id


def get_fo(uow: UnitOfWork, actor: Principal, fo_id: str) -> FulfillmentOrder:
    fo = repo.get(uow.conn, fo_id, actor=actor)
    if fo is None:
        raise FulfillmentOrderNotFound(f"no fulfillment order {fo_id!r}")
    return fo


def locked(uow: UnitOfWork, actor: Principal, fo_id: str) -> FulfillmentOrder:
    """The fulfillment order, re-read after locking every fulfillment order of its order (in id
    order): transitions of one order's fulfillment orders run one at a time, so the last one to
    finish sees the others done and completes the order."""
    fo = get_fo(uow, actor, fo_id)
    siblings = repo.lock_order(uow.conn, fo.order_id)
    return next(f for f in siblings if f.id == fo.id)


def move(uow: UnitOfWork, fo: FulfillmentOrder, action: Action, **values: Any) -> FulfillmentOrder:
    to = next_status(fo.kind, fo.status, action)
    if not repo.transition(uow.conn, fo, to_status=to, **values):
        raise FulfillmentOrderChanged(f"fulfillment order {fo.id!r} changed; reload and retry")
    return replace(fo, status=to, version=fo.version + 1, updated_at=clock.now(), **values)


def release(uow: UnitOfWork, fo: FulfillmentOrder, *, reason: str) -> None:
    inventory.move_allocations(
        uow,
        order_id=fo.order_id,
        moves={(sku, fo.location_id): -n for sku, n in fo.units.items()},
        reason=reason,
        actor=ROUTING_ACTOR,
    )


def complete_order_if_done(uow: UnitOfWork, order_id: str) -> None:
    fos = repo.for_order(uow.conn, order_id)
    if not fos or any(f.status not in DONE for f in fos):
        return
    if not any(f.status in REACHED_CUSTOMER for f in fos):
        return  # nothing reached the customer: the money question belongs to the order
    if orders.get_order(uow, SYSTEM, order_id).status == OrderStatus.FULFILLING:
        orders.complete_fulfilment(uow, SYSTEM, order_id)


def facts(fo: FulfillmentOrder) -> dict[str, Any]:
    return {
        "fulfillment_order_id": fo.id,
        "order_id": fo.order_id,
        "location_id": fo.location_id,
        "kind": fo.kind,
        "channel": fo.channel,
        "customer_id": fo.customer_id,
    }


def unit_lines(units: Mapping[str, int] | Iterable[tuple[str, int]]) -> list[UnitLine]:
    items = units.items() if isinstance(units, Mapping) else units
    return [UnitLine(sku=sku, quantity=n) for sku, n in sorted(items)]
