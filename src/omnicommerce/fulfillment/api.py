"""fulfillment HTTP routes: routing rules, routing explanations, fulfillment orders and their
transitions, rejections with re-routing, pickup (BOPIS) and curbside."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse

from omnicommerce.fulfillment import jobs, service
from omnicommerce.fulfillment.domain import (
    Action,
    BadRejection,
    BadReturn,
    CurbsideNotOffered,
    ExchangePaymentRequired,
    FulfillmentOrder,
    FulfillmentOrderChanged,
    FulfillmentOrderNotFound,
    IllegalTransition,
    PickupExpired,
    ReplanningRaced,
    ReturnNotFound,
    SameDayUnavailable,
    SlotFull,
    Status,
    StoreKeyRequired,
    WrongPickupCode,
)
from omnicommerce.fulfillment.rules import RoutingRules
from omnicommerce.fulfillment.schemas import (
    ArrivalRequest,
    CancelRequest,
    FulfillmentOrderOut,
    HandOverRequest,
    RejectionOut,
    RejectRequest,
    ReoptimizeOut,
    ReoptimizeRequest,
    ReturnCreate,
    ReturnOut,
    RoutingOut,
    RulesOut,
    SameDayBooking,
    SameDayOfferOut,
    ShipRequest,
    SlotOut,
)
from omnicommerce.inventory.domain import InsufficientStock, UnknownLocation
from omnicommerce.orders.api import Db, Provider
from omnicommerce.orders.domain import (
    CardNumberRejected,
    InsufficientFunds,
    InvalidPaymentToken,
    OrderNotFound,
    PaymentDeclined,
    PaymentProviderError,
    PaymentTimeout,
)
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import UnknownChannel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import Forbidden, InvalidInput, problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import (
    BadCursor,
    IdempotencyKey,
    Page,
    ReadUoW,
    Route,
    UoW,
    current_principal,
    model_json,
    page_of,
    require,
)
from omnicommerce.pricing.domain import NoPrice, UnknownSku

router = APIRouter(tags=["fulfillment"], route_class=Route)


def customer_or(scope: str) -> Callable[..., Awaitable[Principal]]:
    """Customers pass (the service scopes them to their own orders); keys need ``scope``."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.is_customer:
            principal.require(scope)
        return principal

    dependency.__name__ = "customer_or_" + scope.replace(":", "_")
    return dependency


FulfillmentRead = Annotated[Principal, Depends(require(Scope.FULFILLMENT_READ))]
FulfillmentWrite = Annotated[Principal, Depends(require(Scope.FULFILLMENT_WRITE))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
CustomerOrRead = Annotated[Principal, Depends(customer_or(Scope.FULFILLMENT_READ))]
CustomerOrWrite = Annotated[Principal, Depends(customer_or(Scope.FULFILLMENT_WRITE))]
Limit = Annotated[int, Query(ge=1, le=200)]
TRANSITION_PROBLEMS = problem_schema(FulfillmentOrderNotFound, IllegalTransition, FulfillmentOrderChanged)


def _out(fo: FulfillmentOrder, actor: Principal) -> FulfillmentOrderOut:
    return FulfillmentOrderOut.of(fo, actor, clock.now())


# --- rules -------------------------------------------------------------------------------------


def _rules_scope(actor: Principal, channel: str) -> None:
    if actor.location is not None:
        raise Forbidden("routing rules are not edited with a store's key")
    if actor.channel is not None and actor.channel != channel:
        raise UnknownChannel(f"unknown channel {channel!r}")


@router.get("/fulfillment/rules/{channel}", response_model=RulesOut, responses=problem_schema(UnknownChannel))
def get_rules(channel: str, actor: FulfillmentRead, uow: ReadUoW) -> RulesOut:
    """The channel's routing rules (filters and objectives); the defaults until first edited."""
    _rules_scope(actor, channel)
    rules, version = service.get_rules(uow, channel)
    return RulesOut(channel=channel, version=version, rules=rules)


@router.put(
    "/fulfillment/rules/{channel}",
    response_model=RulesOut,
    responses=problem_schema(UnknownChannel, Forbidden),
)
def put_rules(channel: str, body: RoutingRules, actor: FulfillmentWrite, uow: UoW) -> RulesOut:
    """Replace the channel's routing rules; orders routed from now on use them."""
    _rules_scope(actor, channel)
    version = service.put_rules(uow, actor, channel, body)
    uow.commit()
    return RulesOut(channel=channel, version=version, rules=body)


@router.post(
    "/fulfillment/reoptimize",
    response_model=ReoptimizeOut,
    responses=problem_schema(UnknownChannel, ReplanningRaced),
)
def reoptimize(body: ReoptimizeRequest, actor: Admin, db: Db) -> ReoptimizeOut:
    """Re-plan the channel's open shipment orders (no location started on them) together, now:
    what the scheduler does every OMNI_REOPTIMIZE_SECONDS. Takes up to `time_budget_seconds`;
    all or nothing (409 when other orders took planned units meanwhile: run again)."""
    outcome = jobs.reoptimize(
        db, channel=body.channel, limit=body.limit, time_budget_s=body.time_budget_seconds
    )
    if outcome is None:
        raise ReplanningRaced("other orders took units the plan counted on; nothing changed: run again")
    return ReoptimizeOut(channel=body.channel, **asdict(outcome))


# --- reading -----------------------------------------------------------------------------------


@router.get(
    "/orders/{order_id}/routing",
    response_model=RoutingOut,
    tags=["orders"],
    responses=problem_schema(OrderNotFound),
)
def order_routing(order_id: str, actor: CustomerOrRead, uow: ReadUoW) -> RoutingOut:
    """Why the order ships from where it does: every candidate location with its cost, the
    chosen plan, and why the others were left out (rule filters and the engine's comparison)."""
    order, decisions = service.routing_of(uow, actor, order_id)
    fos = service.fos_of_order(uow, actor, order.id)
    cancelled = service.cancellations_of(uow, order.id)
    return RoutingOut.of(order.id, decisions, [_out(fo, actor) for fo in fos], cancelled)


@router.get(
    "/orders/{order_id}/fulfillment-orders",
    response_model=list[FulfillmentOrderOut],
    tags=["orders"],
    responses=problem_schema(OrderNotFound),
)
def order_fulfillment_orders(order_id: str, actor: CustomerOrRead, uow: ReadUoW) -> list[FulfillmentOrderOut]:
    return [_out(fo, actor) for fo in service.fos_of_order(uow, actor, order_id)]


@router.get(
    "/fulfillment-orders", response_model=Page[FulfillmentOrderOut], responses=problem_schema(BadCursor)
)
def list_fulfillment_orders(
    actor: FulfillmentRead,
    uow: ReadUoW,
    location_id: str | None = None,
    status: Annotated[list[Status] | None, Query()] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[FulfillmentOrderOut]:
    """Oldest first; a store key sees its store's only."""
    found = service.list_fos(uow, actor, location_id=location_id, statuses=status, cursor=cursor, limit=limit)
    return page_of([_out(fo, actor) for fo in found], limit, lambda f: f.id)


@router.get(
    "/fulfillment-orders/{fo_id}",
    response_model=FulfillmentOrderOut,
    responses=problem_schema(FulfillmentOrderNotFound),
)
def get_fulfillment_order(fo_id: str, actor: CustomerOrRead, uow: ReadUoW) -> FulfillmentOrderOut:
    return _out(service.get_fo(uow, actor, fo_id), actor)


@router.get(
    "/locations/{location_id}/pickups",
    response_model=Page[FulfillmentOrderOut],
    tags=["inventory"],
    responses=problem_schema(UnknownLocation, BadCursor),
)
def pickup_queue(
    location_id: str, actor: FulfillmentRead, uow: ReadUoW, cursor: str | None = None, limit: Limit = 50
) -> Page[FulfillmentOrderOut]:
    """The store's open pickup orders, oldest first (a store key reaches only its own store)."""
    return _queue(uow, actor, location_id, curbside=False, cursor=cursor, limit=limit)


@router.get(
    "/locations/{location_id}/curbside",
    response_model=Page[FulfillmentOrderOut],
    tags=["inventory"],
    responses=problem_schema(UnknownLocation, BadCursor),
)
def curbside_queue(
    location_id: str, actor: FulfillmentRead, uow: ReadUoW, cursor: str | None = None, limit: Limit = 50
) -> Page[FulfillmentOrderOut]:
    """Customers waiting outside the store (arrived, not yet handed over), longest waiting first."""
    return _queue(uow, actor, location_id, curbside=True, cursor=cursor, limit=limit)


def _queue(
    uow: UnitOfWork, actor: Principal, location_id: str, *, curbside: bool, cursor: str | None, limit: int
) -> Page[FulfillmentOrderOut]:
    found = service.pickup_queue(uow, actor, location_id, curbside=curbside, cursor=cursor, limit=limit)
    return page_of([_out(fo, actor) for fo in found], limit, lambda f: f.id)


# --- transitions -------------------------------------------------------------------------------


def _step(action: Action, summary: str) -> None:
    def route(fo_id: str, actor: FulfillmentWrite, uow: UoW) -> FulfillmentOrderOut:
        fo = service.advance(uow, actor, fo_id, action)
        uow.commit()
        return _out(fo, actor)

    route.__name__ = f"{action.value}_fulfillment_order"
    router.post(
        f"/fulfillment-orders/{{fo_id}}/{action.value}",
        response_model=FulfillmentOrderOut,
        responses=TRANSITION_PROBLEMS,
        summary=summary,
    )(route)


_step(Action.ACCEPT, "Accept (pending → accepted)")
_step(Action.PICK, "Start picking (accepted → picking)")
_step(Action.PACK, "Packed (picking → packed)")


@router.post(
    "/fulfillment-orders/{fo_id}/ship", response_model=FulfillmentOrderOut, responses=TRANSITION_PROBLEMS
)
def ship(fo_id: str, body: ShipRequest, actor: FulfillmentWrite, uow: UoW) -> FulfillmentOrderOut:
    """Shipped (packed → shipped) with its tracking number; the units leave the location's stock."""
    fo = service.ship(uow, actor, fo_id, tracking_number=body.tracking_number, carrier=body.carrier)
    uow.commit()
    return _out(fo, actor)


@router.post(
    "/fulfillment-orders/{fo_id}/deliver", response_model=FulfillmentOrderOut, responses=TRANSITION_PROBLEMS
)
def deliver(fo_id: str, actor: FulfillmentWrite, uow: UoW) -> FulfillmentOrderOut:
    """Delivered (shipped → delivered); the order completes when all its parts arrived."""
    fo = service.deliver(uow, actor, fo_id)
    uow.commit()
    return _out(fo, actor)


@router.post(
    "/fulfillment-orders/{fo_id}/cancel", response_model=FulfillmentOrderOut, responses=TRANSITION_PROBLEMS
)
def cancel(
    fo_id: str, actor: FulfillmentWrite, uow: UoW, body: Annotated[CancelRequest | None, Body()] = None
) -> FulfillmentOrderOut:
    """Cancel before it leaves; its units go back to sellable stock."""
    reason = (body or CancelRequest()).reason
    fo = service.cancel(uow, actor, fo_id, reason=reason)
    uow.commit()
    return _out(fo, actor)


@router.post(
    "/fulfillment-orders/{fo_id}/reject",
    response_model=RejectionOut,
    responses=problem_schema(
        FulfillmentOrderNotFound,
        IllegalTransition,
        FulfillmentOrderChanged,
        BadRejection,
        BadReturn,
        IdempotencyConflict,
    ),
)
def reject(
    fo_id: str,
    body: RejectRequest,
    actor: FulfillmentWrite,
    uow: UoW,
    db: Db,
    provider: Provider,
    idem: IdempotencyKey,
) -> JSONResponse:
    """The store cannot find these units: stock is corrected there and the lines are re-routed
    (a shipment to the next best location, a pickup to another pickup store nearby). When nothing
    of the order is left anywhere, the order is refunded at once (or by the sweeper, on failure)."""
    order_id: list[str] = []

    def produce() -> RejectionOut:
        done = service.reject(uow, actor, fo_id, lines=body.units(), reason=body.reason)
        order_id.append(done.fulfillment_order.order_id)
        return RejectionOut(
            fulfillment_order=_out(done.fulfillment_order, actor),
            rerouted_to=[_out(fo, actor) for fo in done.rerouted_to],
            unfilled=done.unfilled,
        )

    answer = idem.run(uow, body, produce, status=200)
    if order_id:  # after commit: the provider is never called in a transaction
        jobs.refund_if_due(db, provider, order_id[0])
        jobs.refund_cancellations(db, provider, order_id=order_id[0])  # units nobody can serve
    return answer


@router.post(
    "/fulfillment-orders/{fo_id}/ready", response_model=FulfillmentOrderOut, responses=TRANSITION_PROBLEMS
)
def ready_for_pickup(fo_id: str, actor: FulfillmentWrite, uow: UoW) -> FulfillmentOrderOut:
    """Waiting at the store (packed → ready_for_pickup): a pickup code, a QR payload and an expiry."""
    fo = service.ready_for_pickup(uow, actor, fo_id)
    uow.commit()
    return _out(fo, actor)


@router.post(
    "/fulfillment-orders/{fo_id}/hand-over",
    response_model=FulfillmentOrderOut,
    responses=problem_schema(
        FulfillmentOrderNotFound, IllegalTransition, WrongPickupCode, PickupExpired, StoreKeyRequired
    ),
)
def hand_over(fo_id: str, body: HandOverRequest, actor: FulfillmentWrite, uow: UoW) -> FulfillmentOrderOut:
    """Picked up (ready_for_pickup → picked_up): the store's POS key checks the customer's code."""
    fo = service.hand_over(uow, actor, fo_id, code=body.code)
    uow.commit()
    return _out(fo, actor)


@router.post(
    "/fulfillment-orders/{fo_id}/arrived",
    response_model=FulfillmentOrderOut,
    responses=problem_schema(FulfillmentOrderNotFound, IllegalTransition, CurbsideNotOffered),
)
def arrived(fo_id: str, body: ArrivalRequest, actor: CustomerOrWrite, uow: UoW) -> FulfillmentOrderOut:
    """Curbside: the customer is outside (their own order with a customer token, or any channel's key)."""
    fo = service.arrived(uow, actor, fo_id, bay=body.bay, car=body.car)
    uow.commit()
    return _out(fo, actor)


# --- same-day delivery -------------------------------------------------------------------------


def _lines_param(lines: list[str]) -> dict[str, int]:
    """``SKU:qty`` query values (a bare SKU is one unit)."""
    out: dict[str, int] = {}
    for raw in lines:
        sku, _, qty = raw.partition(":")
        if not sku or (qty and not qty.isdigit()) or (qty and not 1 <= int(qty) <= 10_000):
            raise InvalidInput(f"line {raw!r} is not SKU:quantity")
        out[sku] = out.get(sku, 0) + (int(qty) if qty else 1)
    return out


@router.get(
    "/fulfillment/same-day/offers",
    response_model=list[SameDayOfferOut],
    responses=problem_schema(UnknownChannel, InvalidInput),
)
def same_day_offers(
    actor: CustomerOrRead,
    uow: ReadUoW,
    postal_code: Annotated[str, Query(min_length=1, max_length=20)],
    line: Annotated[list[str], Query(min_length=1, max_length=100, description="SKU:quantity")],
    channel: str | None = None,
) -> list[SameDayOfferOut]:
    """Stores that can deliver these lines to this postal code today, with their open slots."""
    chosen = channel or actor.channel
    if chosen is None:
        raise InvalidInput("name the channel (?channel=web)")
    offers = service.same_day_offers(uow, channel=chosen, postal_code=postal_code, lines=_lines_param(line))
    return [
        SameDayOfferOut(
            location_id=o.location_id,
            distance_km=o.distance_km,
            slots=[SlotOut(start=s.start, end=s.end, places_left=s.places_left) for s in o.slots],
        )
        for o in offers
    ]


@router.post(
    "/orders/{order_id}/same-day",
    status_code=201,
    response_model=FulfillmentOrderOut,
    tags=["orders"],
    responses=problem_schema(
        OrderNotFound, SameDayUnavailable, SlotFull, InsufficientStock, IdempotencyConflict
    ),
)
def book_same_day(
    order_id: str, body: SameDayBooking, actor: CustomerOrWrite, uow: UoW, idem: IdempotencyKey
) -> JSONResponse:
    """Deliver this order today from a nearby store, in a slot with room (before the cut-off)."""
    return idem.run(
        uow,
        body,
        lambda: _out(
            service.book_same_day(
                uow,
                actor,
                order_id,
                location_id=body.location_id,
                slot_start=time.fromisoformat(body.slot_start),
            ),
            actor,
        ),
    )


# --- returns anywhere and exchanges ------------------------------------------------------------


@router.post(
    "/orders/{order_id}/returns",
    status_code=201,
    response_model=ReturnOut,
    tags=["orders"],
    responses=problem_schema(
        OrderNotFound,
        UnknownLocation,
        BadReturn,
        InsufficientStock,
        IdempotencyConflict,
        ExchangePaymentRequired,
        PaymentDeclined,
        InsufficientFunds,
        PaymentProviderError,
        PaymentTimeout,
        UnknownSku,
        NoPrice,
        CardNumberRejected,
        InvalidPaymentToken,
    ),
)
def receive_return(
    order_id: str,
    body: ReturnCreate,
    actor: FulfillmentWrite,
    uow: UoW,
    db: Db,
    provider: Provider,
    idem: IdempotencyKey,
) -> JSONResponse:
    """Take units of any order back at this location (a store key: its own store). With
    `replacement` it is an exchange: the replacement is reserved first, priced with the pricing
    quote and ships; a dearer one is charged the difference to `payment_token` first (402 and no
    exchange when declined), a cheaper one refunds the surplus. Otherwise the paid value goes back
    to the original payment. The answer shows the return as it is now."""
    cmd = service.ReturnCommand(
        body.location_id, body.method, body.domain_lines(), body.replacement_units(), body.payment_token
    )
    recorded = idem.run(uow, body, lambda: ReturnOut.of(service.receive_return(uow, actor, order_id, cmd)))
    if recorded.status_code != 201:
        return recorded
    return_id = orjson.loads(bytes(recorded.body))["id"]
    # After commit: the provider is never called in a transaction. A dearer exchange is charged
    # (a decline raises, leaving no exchange); a cheaper one's surplus is refunded like a return.
    jobs.charge_exchange(db, provider, actor, return_id, body.payment_token)
    jobs.refund_return(db, provider, return_id)
    with db.uow(readonly=True) as reader:
        return model_json(ReturnOut.of(service.get_return(reader, actor, return_id)), 201)


@router.get("/returns/{return_id}", response_model=ReturnOut, responses=problem_schema(ReturnNotFound))
def get_return(return_id: str, actor: FulfillmentRead, uow: ReadUoW) -> ReturnOut:
    return ReturnOut.of(service.get_return(uow, actor, return_id))
