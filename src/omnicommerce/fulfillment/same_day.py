"""Same-day delivery: offers of today's slots from stores in range, and booking one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.core import (
    Placement,
    create_fos,
    facts,
    move,
    postal_code_of,
    record_decision,
    rules_for,
    sourcing,
)
from omnicommerce.fulfillment.domain import (
    DONE,
    Action,
    FulfillmentOrder,
    Kind,
    SameDayUnavailable,
    SlotFull,
    Status,
    bookable_slots,
    slot_window,
    sum_units,
)
from omnicommerce.fulfillment.events import FulfillmentCancelled
from omnicommerce.fulfillment.rules import RoutingRules, cutoff_of, slots_of
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import RowKey, haversine_km
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Status as OrderStatus
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.db import UnitOfWork


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
    rules = rules_for(uow, channel)
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
    units, sites, ship_to = sourcing(uow, channel, lines, held, rules, postal_code)
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
    rules = rules_for(uow, order.channel)
    now = clock.now()
    slot = next(
        (s for s in bookable_slots(now, cutoff_of(rules), slots_of(rules)) if s.start == slot_start), None
    )
    if not rules.same_day.enabled or slot is None:
        raise SameDayUnavailable(f"no same-day slot at {slot_start:%H:%M} UTC is open for booking now")
    held = {(a.sku, a.location_id): a.quantity for a in inventory.order_allocations(uow, order_id=order.id)}
    demand = sum_units([(sku, n) for (sku, _), n in held.items()])
    stores = dict(_same_day_stores(uow, order.channel, postal_code_of(order) or "", demand, rules, held=held))
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
            move(uow, f, Action.CANCEL, reason="replaced by same-day delivery")
            uow.emit(FulfillmentCancelled(**facts(f), reason="replaced by same-day delivery"))
    placement = Placement(target, frozenset(), {})
    [fo] = create_fos(uow, order, placement, Kind.SAME_DAY, rerouted_from=None, window=slot_window(now, slot))
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
    record_decision(uow, order.id, "same-day", decision, placement)
    return fo
