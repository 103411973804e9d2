"""orders HTTP routes: checkout of a cart, store sales, reading, cancel and refund."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from omnicommerce.carts.domain import CartNotFound, CartNotOpen, EmptyCart, FulfillmentRequired
from omnicommerce.inventory.domain import InsufficientStock
from omnicommerce.orders import checkout as flows
from omnicommerce.orders import service
from omnicommerce.orders.domain import (
    CardNumberRejected,
    IllegalTransition,
    InsufficientFunds,
    InvalidPaymentToken,
    OrderChanged,
    OrderNotFound,
    PaymentDeclined,
    PaymentProviderError,
    PaymentTimeout,
    Status,
    StoreKeyRequired,
    TotalChanged,
)
from omnicommerce.orders.payments import PaymentProvider, provider_for
from omnicommerce.orders.schemas import CheckoutRequest, OrderOut, StoreSaleCreate
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.db import Database
from omnicommerce.platform.errors import problem_schema
from omnicommerce.platform.web import (
    AppSettings,
    IdempotencyKey,
    Page,
    ReadUoW,
    Route,
    get_db,
    model_json,
    page_of,
    require,
)

router = APIRouter(tags=["orders"], route_class=Route)

CartsWrite = Annotated[Principal, Depends(require(Scope.CARTS_WRITE))]
OrdersRead = Annotated[Principal, Depends(require(Scope.ORDERS_READ))]
OrdersWrite = Annotated[Principal, Depends(require(Scope.ORDERS_WRITE))]
Db = Annotated[Database, Depends(get_db)]


async def get_provider(request: Request) -> PaymentProvider:
    """Async as every dependency without I/O (see ``platform.web``): a plain ``def`` would cost a
    thread-pool hop per request."""
    return provider_for(request.app.state.db)


Provider = Annotated[PaymentProvider, Depends(get_provider)]
PaymentProblems = (
    CardNumberRejected,
    InvalidPaymentToken,
    PaymentDeclined,
    InsufficientFunds,
    PaymentProviderError,
    PaymentTimeout,
)


@router.post(
    "/carts/{cart_id}/checkout",
    status_code=201,
    response_model=OrderOut,
    tags=["carts"],
    responses={
        200: {"description": "The cart had already checked out: its order"},
        **problem_schema(
            CartNotFound,
            CartNotOpen,
            EmptyCart,
            FulfillmentRequired,
            InsufficientStock,
            TotalChanged,
            *PaymentProblems,
        ),
    },
)
def checkout(
    cart_id: str,
    body: CheckoutRequest,
    actor: CartsWrite,
    idem: IdempotencyKey,
    db: Db,
    provider: Provider,
    settings: AppSettings,
) -> JSONResponse:
    """Pay for the cart and place the order, once per cart (retries return the same order)."""
    cmd = flows.CheckoutCommand(
        payment_token=body.payment_token,
        expected_total=body.expected_total,
        email=body.email,
        fulfillment=body.fulfillment.model_dump(mode="json", exclude_none=True) if body.fulfillment else None,
    )
    return flows.checkout(
        db, provider, actor, cart_id, cmd, idem=idem, body=body, ttl_seconds=settings.reservation_ttl_seconds
    )


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses=problem_schema(StoreKeyRequired, *PaymentProblems),
)
def create_store_sale(
    body: StoreSaleCreate, actor: OrdersWrite, idem: IdempotencyKey, db: Db, provider: Provider
) -> JSONResponse:
    """Record a carry-out sale made at this POS's store (card token or cash)."""
    return flows.store_sale(db, provider, actor, body, idem)


@router.get("/orders", response_model=Page[OrderOut])
def list_orders(
    actor: OrdersRead,
    uow: ReadUoW,
    channel: str | None = None,
    customer_id: str | None = None,
    status: Status | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[OrderOut]:
    """Orders newest first, filtered; a customer sees its own, a store key its store's."""
    found = service.list_orders(
        uow,
        actor,
        channel=channel,
        customer_id=customer_id,
        status=status,
        since=since,
        cursor=cursor,
        limit=limit,
    )
    return page_of([OrderOut.of(o) for o in found], limit, lambda o: o.id)


@router.get("/orders/{order_id}", response_model=OrderOut, responses=problem_schema(OrderNotFound))
def get_order(order_id: str, actor: OrdersRead, uow: ReadUoW) -> JSONResponse:
    return model_json(OrderOut.of(service.get_order(uow, actor, order_id)))


@router.get(
    "/customers/{customer_id}/orders",
    response_model=Page[OrderOut],
    tags=["customers"],
    responses=problem_schema(OrderNotFound),
)
def customer_orders(
    customer_id: str,
    actor: OrdersRead,
    uow: ReadUoW,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[OrderOut]:
    """One customer's orders from every channel."""
    found = service.customer_orders(uow, actor, customer_id, cursor=cursor, limit=limit)
    return page_of([OrderOut.of(o) for o in found], limit, lambda o: o.id)


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    responses=problem_schema(OrderNotFound, IllegalTransition, OrderChanged, PaymentProviderError),
)
def cancel_order(order_id: str, actor: OrdersWrite, db: Db, provider: Provider) -> OrderOut:
    """Cancel a placed or paid order: the payment is voided/refunded and the stock released."""
    return OrderOut.of(flows.cancel(db, provider, actor, order_id))


@router.post(
    "/orders/{order_id}/refund",
    response_model=OrderOut,
    responses=problem_schema(OrderNotFound, IllegalTransition, OrderChanged, PaymentProviderError),
)
def refund_order(order_id: str, actor: OrdersWrite, db: Db, provider: Provider) -> OrderOut:
    """Refund what the payment still holds (the total less returns, exchange surpluses and
    cancelled units already given back) through the provider."""
    return OrderOut.of(flows.refund(db, provider, actor, order_id))
