"""Curbside: the customer announces they are outside the pickup store."""

from __future__ import annotations

from dataclasses import replace

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.core import facts, locked
from omnicommerce.fulfillment.domain import (
    ARRIVAL_STATES,
    CurbsideNotOffered,
    FulfillmentOrder,
    FulfillmentOrderChanged,
    IllegalTransition,
    Kind,
    is_expired,
)
from omnicommerce.fulfillment.events import CurbsideArrived
from omnicommerce.inventory import service as inventory
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.db import UnitOfWork


def arrived(
    uow: UnitOfWork, actor: Principal, fo_id: str, *, bay: str | None, car: str | None
) -> FulfillmentOrder:
    """Curbside: the customer is outside (announced from the app, the web, a call or a text). A
    repeat updates the bay and car but keeps the first arrival time."""
    fo = locked(uow, actor, fo_id)
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
    uow.emit(CurbsideArrived(**facts(fo), bay=bay, car=car))
    return fo
