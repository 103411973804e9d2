"""carts HTTP routes: build the command, call the service, map the result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from omnicommerce.carts import service
from omnicommerce.carts.domain import (
    Cart,
    CartChanged,
    CartNotFound,
    CartNotOpen,
    ClaimNotAllowed,
    HandoffCodeExpired,
    HandoffCodeInvalid,
    HandoffCodeUsed,
    SkuNotListed,
    UnknownSku,
)
from omnicommerce.carts.schemas import (
    Adjustment,
    CartCreate,
    CartLine,
    CartOut,
    ClaimRequest,
    CouponAdd,
    Handoff,
    LineAdd,
    LineSet,
    PickupFulfillment,
    ShipFulfillment,
)
from omnicommerce.inventory.domain import InsufficientStock
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import UnknownChannel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import problem_schema
from omnicommerce.platform.money import CurrencyMismatch
from omnicommerce.platform.web import AppSettings, IdempotencyKey, ReadUoW, Route, UoW, model_json, require

router = APIRouter(prefix="/carts", tags=["carts"], route_class=Route)

CartsRead = Annotated[Principal, Depends(require(Scope.CARTS_READ))]
CartsWrite = Annotated[Principal, Depends(require(Scope.CARTS_WRITE))]
LineProblems = problem_schema(
    CartNotFound, CartNotOpen, CartChanged, UnknownSku, SkuNotListed, InsufficientStock
)


def cart_view(uow: UnitOfWork, cart: Cart) -> CartOut:
    """The cart with its live quote (one pricing.quote call, the same one checkout makes)."""
    quote = service.quote_cart(uow, cart) if cart.lines else None
    names = cart.names
    lines = (
        []
        if quote is None
        else [
            CartLine(
                sku=pl.sku,
                name=names.get(pl.sku, pl.sku),
                quantity=pl.quantity,
                unit_price=pl.unit_price,
                subtotal=pl.subtotal,
                total=pl.total,
                adjustments=[
                    Adjustment(
                        reason=a.reason,
                        amount=a.amount,
                        promotion_id=a.promotion_id,
                        coupon_code=a.coupon_code,
                    )
                    for a in pl.adjustments
                ],
            )
            for pl in quote.lines
        ]
    )
    return CartOut(
        id=cart.id,
        channel=cart.channel,
        customer_id=cart.customer_id,
        email=cart.email,
        currency=cart.currency,
        status=cart.status,
        location_id=cart.location_id,
        fulfillment=cart.fulfillment,
        coupon_codes=list(cart.coupon_codes),
        version=cart.version,
        lines=lines,
        subtotal=quote.subtotal if quote else 0,
        discount_total=quote.discount_total if quote else 0,
        total=quote.total if quote else 0,
        created_at=cart.created_at,
        updated_at=cart.updated_at,
        expires_at=cart.expires_at,
    )


def _done(uow: UnitOfWork, cart: Cart) -> CartOut:
    out = cart_view(uow, cart)
    uow.commit()
    return out


@router.post(
    "",
    status_code=201,
    response_model=CartOut,
    responses={
        200: {"description": "The customer's existing open cart, now on this channel"},
        **problem_schema(CurrencyMismatch, UnknownChannel),
    },
)
def create_cart(
    body: CartCreate, actor: CartsWrite, uow: UoW, idem: IdempotencyKey, settings: AppSettings
) -> JSONResponse:
    """Open a cart; a known customer gets their one active cart back (moved to this channel)."""

    def produce() -> tuple[CartOut, int]:
        cart, created = service.open_cart(uow, actor, body, ttl_seconds=settings.reservation_ttl_seconds)
        return cart_view(uow, cart), 201 if created else 200

    return idem.run(uow, body, produce)


@router.get("/{cart_id}", response_model=CartOut, responses=problem_schema(CartNotFound))
def get_cart(cart_id: str, actor: CartsRead, uow: ReadUoW) -> CartOut:
    return cart_view(uow, service.get_cart(uow, actor, cart_id))


@router.put("/{cart_id}/lines/{sku}", response_model=CartOut, responses=LineProblems)
def set_line(
    cart_id: str, sku: str, body: LineSet, actor: CartsWrite, uow: UoW, settings: AppSettings
) -> CartOut:
    """Set a line's quantity (0 removes it); the cart's stock holds follow."""
    cart = service.set_line(
        uow,
        actor,
        cart_id,
        sku=sku,
        quantity=body.quantity,
        add=False,
        ttl_seconds=settings.reservation_ttl_seconds,
    )
    return _done(uow, cart)


@router.post("/{cart_id}/lines", response_model=CartOut, responses=LineProblems)
def add_line(
    cart_id: str, body: LineAdd, actor: CartsWrite, uow: UoW, idem: IdempotencyKey, settings: AppSettings
) -> JSONResponse:
    """Add units of a SKU (to an existing line if there is one)."""
    return idem.run(
        uow,
        body,
        lambda: cart_view(
            uow,
            service.set_line(
                uow,
                actor,
                cart_id,
                sku=body.sku,
                quantity=body.quantity,
                add=True,
                ttl_seconds=settings.reservation_ttl_seconds,
            ),
        ),
        status=200,
    )


@router.put(
    "/{cart_id}/fulfillment",
    response_model=CartOut,
    responses=problem_schema(CartNotFound, CartNotOpen, InsufficientStock),
)
def set_fulfillment(
    cart_id: str,
    body: Annotated[ShipFulfillment | PickupFulfillment, Body(discriminator="type")],
    actor: CartsWrite,
    uow: UoW,
    settings: AppSettings,
) -> JSONResponse:
    """Ship to an address or pick up at a store (holds move to that store)."""
    cart = service.set_fulfillment(
        uow,
        actor,
        cart_id,
        body.model_dump(mode="json", exclude_none=True),
        ttl_seconds=settings.reservation_ttl_seconds,
    )
    return model_json(_done(uow, cart))


@router.post(
    "/{cart_id}/coupons", response_model=CartOut, responses=problem_schema(CartNotFound, CartNotOpen)
)
def add_coupon(cart_id: str, body: CouponAdd, actor: CartsWrite, uow: UoW) -> CartOut:
    return _done(uow, service.add_coupon(uow, actor, cart_id, body.code))


@router.delete(
    "/{cart_id}/coupons/{code}", response_model=CartOut, responses=problem_schema(CartNotFound, CartNotOpen)
)
def remove_coupon(cart_id: str, code: str, actor: CartsWrite, uow: UoW) -> CartOut:
    return _done(uow, service.remove_coupon(uow, actor, cart_id, code))


@router.post(
    "/{cart_id}/handoff",
    status_code=201,
    response_model=Handoff,
    responses=problem_schema(CartNotFound, CartNotOpen),
)
def hand_off(cart_id: str, actor: CartsWrite, uow: UoW, settings: AppSettings) -> Handoff:
    """A single-use code (and QR payload) to continue this cart at a store or with the call center.

    Not replayed by Idempotency-Key: only the code's hash is stored; a repeat issues a new code.
    """
    h = service.hand_off(uow, actor, cart_id, ttl_seconds=settings.handoff_code_ttl_seconds)
    uow.commit()
    return Handoff(code=h.code, qr_payload=h.qr_payload, expires_at=h.expires_at)


@router.post(
    "/claim",
    response_model=CartOut,
    responses=problem_schema(ClaimNotAllowed, HandoffCodeInvalid, HandoffCodeUsed, HandoffCodeExpired),
)
def claim(body: ClaimRequest, actor: CartsWrite, uow: UoW, settings: AppSettings) -> CartOut:
    """A store associate's POS or a call-center agent takes over a handed-off cart."""
    return _done(uow, service.claim(uow, actor, body.code, ttl_seconds=settings.reservation_ttl_seconds))
