"""``/me``: a signed-in shopper's own profile, orders and carts, across every channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from omnicommerce.carts import service as carts
from omnicommerce.carts.api import cart_view
from omnicommerce.carts.schemas import CartOut
from omnicommerce.customers import service as customers
from omnicommerce.customers.schemas import Customer
from omnicommerce.orders import service as orders
from omnicommerce.orders.schemas import OrderOut
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.errors import Forbidden
from omnicommerce.platform.web import Page, ReadUoW, Route, current_principal, page_of

router = APIRouter(prefix="/me", tags=["me"], route_class=Route)


class CustomerTokenRequired(Forbidden):
    code = "customer-token-required"
    title = "These endpoints are for a signed-in customer"


async def require_customer(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_customer or principal.customer_id is None:
        raise CustomerTokenRequired("call /me with a customer access token, not an API key")
    return principal


Me = Annotated[Principal, Depends(require_customer)]


@router.get("", response_model=Customer)
def get_me(me: Me, uow: ReadUoW) -> Customer:
    assert me.customer_id is not None
    return customers.get_customer(uow, me, me.customer_id)


@router.get("/orders", response_model=Page[OrderOut])
def my_orders(
    me: Me, uow: ReadUoW, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> Page[OrderOut]:
    """My orders from every channel, newest first."""
    assert me.customer_id is not None
    found = orders.customer_orders(uow, me, me.customer_id, cursor=cursor, limit=limit)
    return page_of([OrderOut.of(o) for o in found], limit, lambda o: o.id)


@router.get("/carts", response_model=list[CartOut])
def my_carts(me: Me, uow: ReadUoW) -> list[CartOut]:
    """My open cart(s), wherever they were started."""
    assert me.customer_id is not None
    return [cart_view(uow, c) for c in carts.list_for_customer(uow, me, me.customer_id)]
