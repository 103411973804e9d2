"""Events the carts context publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from omnicommerce.platform.events import Event


class CartEvent(Event):
    context = "carts"
    cart_id: str
    channel: str
    customer_id: str | None = None


class CartCreated(CartEvent):
    type: Literal["cart.created"] = "cart.created"
    version: Literal[1] = 1
    currency: str
    location_id: str | None = None


class CartLineChanged(CartEvent):
    type: Literal["cart.line_changed"] = "cart.line_changed"
    version: Literal[1] = 1
    sku: str
    quantity: int  # the line's new quantity; 0 = removed
    previous_quantity: int


class CartHandedOff(CartEvent):
    type: Literal["cart.handed_off"] = "cart.handed_off"
    version: Literal[1] = 1
    expires_at: datetime


class CartClaimed(CartEvent):
    type: Literal["cart.claimed"] = "cart.claimed"
    version: Literal[1] = 1
    from_channel: str
    location_id: str | None = None
    claimed_by: str


class CartMerged(CartEvent):
    """``cart_id`` (the anonymous cart) was folded into ``into_cart_id`` at sign-in."""

    type: Literal["cart.merged"] = "cart.merged"
    version: Literal[1] = 1
    into_cart_id: str
