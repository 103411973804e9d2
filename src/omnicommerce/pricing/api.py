"""Pricing HTTP routes: quotes, the price book, promotions and coupons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from omnicommerce.catalog.domain import UnknownSku as CatalogUnknownSku
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import ChannelMismatch, ChannelRequired, UnknownChannel, resolve_channel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.money import CurrencyMismatch, UnsupportedCurrency
from omnicommerce.platform.web import BadCursor, IdempotencyKey, Page, ReadUoW, Route, UoW, require
from omnicommerce.pricing import service
from omnicommerce.pricing.domain import (
    BadLine,
    CouponExhausted,
    DuplicateCoupon,
    InvalidCoupon,
    InvalidQuantity,
    NoPrice,
    QuoteLine,
    UnknownPriceChannel,
    UnknownPromotion,
    UnknownSku,
)
from omnicommerce.pricing.schemas import (
    Coupon,
    CouponCreate,
    PriceEntry,
    PricesUpdated,
    Promotion,
    PromotionCreate,
    QuoteOut,
    QuoteRequest,
    SkuPrices,
)

router = APIRouter(tags=["pricing"], route_class=Route)

PricesRead = Annotated[Principal, Depends(require(Scope.PRICES_READ))]
PricesWrite = Annotated[Principal, Depends(require(Scope.PRICES_WRITE))]

QUOTE_PROBLEMS = problem_schema(
    UnknownSku,
    NoPrice,
    InvalidQuantity,
    CurrencyMismatch,
    InvalidCoupon,
    CouponExhausted,
    ChannelRequired,
    ChannelMismatch,
    UnknownChannel,
)


def _parse_line(raw: str) -> QuoteLine:
    sku, sep, qty = raw.rpartition(":")
    if not sep or not sku or not qty.lstrip("-").isdigit():
        raise BadLine(f"line {raw!r} is not SKU:QUANTITY, e.g. TSHIRT-BLK-M:2")
    return QuoteLine(sku, int(qty))


def _quote(
    uow: UnitOfWork,
    actor: Principal,
    channel: str | None,
    currency: str,
    lines: list[QuoteLine],
    customer_id: str | None,
    coupons: list[str],
) -> QuoteOut:
    # A shopper's quote is always their own.
    customer = actor.customer_id if actor.is_customer else customer_id
    result = service.quote(
        uow,
        channel=resolve_channel(actor.channel, channel),
        currency=currency,
        lines=lines,
        customer_id=customer,
        coupon_codes=coupons,
    )
    return QuoteOut.model_validate(result)


@router.get("/prices/quote", responses=QUOTE_PROBLEMS | problem_schema(BadLine))
def quote(
    actor: PricesRead,
    uow: ReadUoW,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$", examples=["USD"])],
    line: Annotated[list[str], Query(min_length=1, max_length=500, description="SKU:QUANTITY, repeatable")],
    channel: Annotated[str | None, Query(description="Required unless the key is bound to one")] = None,
    customer_id: str | None = None,
    coupon: Annotated[list[str] | None, Query(max_length=20, description="Coupon code, repeatable")] = None,
) -> QuoteOut:
    lines = [_parse_line(raw) for raw in line]
    return _quote(uow, actor, channel, currency, lines, customer_id, coupon or [])


@router.post("/prices/quote", responses=QUOTE_PROBLEMS, summary="Quote (JSON body, for long carts)")
def quote_body(body: QuoteRequest, actor: PricesRead, uow: ReadUoW) -> QuoteOut:
    lines = [QuoteLine(ln.sku, ln.quantity) for ln in body.lines]
    return _quote(uow, actor, body.channel, body.currency, lines, body.customer_id, body.coupon_codes)


@router.put("/prices", responses=problem_schema(UnknownSku, UnsupportedCurrency, UnknownPriceChannel))
def set_prices(
    body: Annotated[list[PriceEntry], Body(min_length=1, max_length=5000)], actor: PricesWrite, uow: UoW
) -> PricesUpdated:
    updated = service.set_prices(uow, body)
    uow.commit()
    return PricesUpdated(updated=updated)


@router.get("/prices/{sku}", responses=problem_schema(CatalogUnknownSku))
def get_prices(sku: str, actor: PricesRead, uow: ReadUoW) -> SkuPrices:
    return service.get_prices(uow, sku)


@router.post(
    "/promotions", status_code=201, response_model=Promotion, responses=problem_schema(IdempotencyConflict)
)
def create_promotion(
    body: PromotionCreate, actor: PricesWrite, uow: UoW, idem: IdempotencyKey
) -> JSONResponse:
    return idem.run(uow, body, lambda: service.create_promotion(uow, actor, body))


@router.get("/promotions", responses=problem_schema(BadCursor))
def list_promotions(
    actor: PricesRead,
    uow: ReadUoW,
    running_at: Annotated[AwareDatetime | None, Query(description="Only those running at this time")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[Promotion]:
    return service.list_promotions(uow, actor, running_at=running_at, cursor=cursor, limit=limit)


@router.post(
    "/coupons",
    status_code=201,
    response_model=Coupon,
    responses=problem_schema(UnknownPromotion, DuplicateCoupon, IdempotencyConflict),
)
def create_coupon(body: CouponCreate, actor: PricesWrite, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    return idem.run(uow, body, lambda: service.create_coupon(uow, actor, body))
