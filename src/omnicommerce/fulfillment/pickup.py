"""Buy online, pick up in store: the store's queue, ready with a code, hand-over, expiry."""

from __future__ import annotations

from datetime import timedelta

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.core import complete_order_if_done, facts, locked, move, release, rules_for
from omnicommerce.fulfillment.domain import (
    ARRIVAL_STATES,
    Action,
    FulfillmentOrder,
    Kind,
    PickupExpired,
    StoreKeyRequired,
    WrongPickupCode,
    code_matches,
    is_expired,
    new_pickup_code,
    next_status,
    qr_payload,
)
from omnicommerce.fulfillment.events import FulfillmentCancelled, PickupCollected, PickupReady
from omnicommerce.fulfillment.events import PickupExpired as PickupExpiredEvent
from omnicommerce.inventory import service as inventory
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.web import decode_cursor


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


def ready_for_pickup(uow: UnitOfWork, actor: Principal, fo_id: str) -> FulfillmentOrder:
    """Packed and waiting at the store: a pickup code (and QR payload) and an expiry."""
    fo = locked(uow, actor, fo_id)
    hours = rules_for(uow, fo.channel).pickup_hold_hours
    expires = clock.now() + timedelta(hours=hours)
    code = new_pickup_code()
    fo = move(uow, fo, Action.READY, pickup_code=code, pickup_expires_at=expires)
    uow.emit(
        PickupReady(**facts(fo), pickup_code=code, qr_payload=qr_payload(fo.id, code), expires_at=expires)
    )
    return fo


def hand_over(uow: UnitOfWork, actor: Principal, fo_id: str, *, code: str) -> FulfillmentOrder:
    """The customer collects, at the counter or curbside: the store's own POS key checks the code."""
    fo = locked(uow, actor, fo_id)
    if actor.is_customer or actor.location != fo.location_id:
        raise StoreKeyRequired("hand-overs are recorded with the pickup store's own POS key")
    if is_expired(fo, clock.now()):
        raise PickupExpired(f"the pickup window closed at {fo.pickup_expires_at:%Y-%m-%d %H:%M} UTC")
    next_status(fo.kind, fo.status, Action.HAND_OVER)
    if not code_matches(fo, code):
        raise WrongPickupCode("the pickup code does not match this order")
    fo = move(uow, fo, Action.HAND_OVER, handed_over_at=clock.now())
    inventory.consume_allocations(
        uow, order_id=fo.order_id, location_id=fo.location_id, lines=fo.units, reason="pickup", actor=actor.id
    )
    uow.emit(
        PickupCollected(**facts(fo), curbside=fo.arrived_at is not None, handover_seconds=fo.handover_seconds)
    )
    complete_order_if_done(uow, fo.order_id)
    return fo


def due_pickups(uow: UnitOfWork, *, limit: int = 100) -> list[str]:
    """Pickups past their window still waiting at the store (oldest first)."""
    return [fo.id for fo in repo.expired_pickups(uow.conn, clock.now(), limit)]


def expire_pickup(uow: UnitOfWork, fo_id: str) -> FulfillmentOrder | None:
    """Cancel a pickup past its window and give its units back to sellable stock; it is marked
    ``refund_due`` for :func:`jobs.expire_pickups` to refund through the orders context. None
    when it was collected or cancelled meanwhile."""
    now = clock.now()
    fo = locked(uow, SYSTEM, fo_id)
    if not is_expired(fo, now):
        return None
    fo = move(uow, fo, Action.EXPIRE, reason="pickup window passed")
    release(uow, fo, reason="pickup_expired")
    repo.set_refund_due(uow.conn, [fo.id], True)
    uow.emit(PickupExpiredEvent(**facts(fo), expired_at=now))
    uow.emit(FulfillmentCancelled(**facts(fo), reason="pickup window passed"))
    return fo
