"""Cart use cases. Each takes a unit of work and never commits.

Public functions other contexts call: :func:`get_cart`, :func:`quote_cart`, :func:`list_for_customer`,
:func:`merge_anonymous_cart` (sign-in), and the checkout hooks :func:`begin_checkout`,
:func:`finish_checkout`, :func:`abort_checkout` (orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from omnicommerce.carts import repository as repo
from omnicommerce.carts.domain import (
    ACTIVE,
    CHECKING_OUT,
    COMPLETED,
    MERGED,
    OPEN,
    QR_PREFIX,
    Cart,
    CartChanged,
    CartNotFound,
    CartNotOpen,
    ClaimNotAllowed,
    EmptyCart,
    FulfillmentRequired,
    HandoffCodeExpired,
    HandoffCodeInvalid,
    HandoffCodeUsed,
    SkuNotListed,
    UnknownSku,
    apply_quantity,
    hash_code,
    merged_lines,
    new_handoff_code,
    normalize_code,
)
from omnicommerce.carts.events import CartClaimed, CartCreated, CartHandedOff, CartLineChanged, CartMerged
from omnicommerce.carts.schemas import CartCreate
from omnicommerce.catalog import service as catalog
from omnicommerce.customers import service as customers
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import InsufficientStock
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.channels import get_channel, resolve_channel
from omnicommerce.platform.config import get_settings
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.money import CurrencyMismatch
from omnicommerce.pricing import service as pricing
from omnicommerce.pricing.domain import Quote, QuoteLine, normalize_codes

# --- reading -----------------------------------------------------------------------------------


def get_cart(uow: UnitOfWork, actor: Principal, cart_id: str) -> Cart:
    """The cart with its lines, if ``actor`` may reach it; otherwise :class:`CartNotFound`."""
    cart = repo.get(uow.conn, cart_id, actor=actor)
    if cart is None:
        raise CartNotFound(f"no cart {cart_id!r}")
    return repo.with_lines(cart, repo.lines_of(uow.conn, cart.id))


def quote_cart(uow: UnitOfWork, cart: Cart) -> Quote:
    """The live price of the cart: the same pricing.quote the quote endpoint and checkout use."""
    return pricing.quote(
        uow,
        channel=cart.channel,
        currency=cart.currency,
        lines=[QuoteLine(sku=s, quantity=q) for s, q in cart.lines.items()],
        customer_id=cart.customer_id,
        coupon_codes=list(cart.coupon_codes),
    )


def list_for_customer(uow: UnitOfWork, actor: Principal, customer_id: str) -> list[Cart]:
    """The customer's open (or checking-out) carts across every channel, with lines."""
    return repo.list_for_customer(uow.conn, customer_id, actor=actor, statuses=list(ACTIVE))


# --- opening -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CartOwner:
    """Who a new cart is for and where it lives, resolved from the caller and the request."""

    channel: str
    currency: str
    customer_id: str | None
    email: str | None
    location_id: str | None


def resolve_owner(uow: UnitOfWork, actor: Principal, cmd: CartCreate) -> CartOwner:
    channel_id = resolve_channel(actor.channel, cmd.channel)
    channel = get_channel(uow.conn, channel_id)
    if cmd.currency is not None and cmd.currency.upper() != channel.currency:
        raise CurrencyMismatch(f"channel {channel_id!r} sells in {channel.currency}, not {cmd.currency}")
    customer_id, email = _customer_for(uow, actor, cmd, channel_id)
    return CartOwner(channel_id, channel.currency, customer_id, email, actor.location)


def _customer_for(
    uow: UnitOfWork, actor: Principal, cmd: CartCreate, channel: str
) -> tuple[str | None, str | None]:
    if actor.is_customer:
        if cmd.customer_id not in (None, actor.customer_id):
            raise CartNotFound("a customer opens carts only for itself")
        return actor.customer_id, cmd.email
    if cmd.customer_id is not None:
        customers.get_customer(uow, SYSTEM, cmd.customer_id)  # 404 for an unknown customer
        return cmd.customer_id, cmd.email
    if cmd.email is not None:
        return customers.find_or_create_by_email(uow, email=cmd.email, channel=channel), cmd.email
    return None, None


def switch_active_cart(uow: UnitOfWork, owner: CartOwner, *, ttl_seconds: int) -> Cart | None:
    """The customer's existing active cart, moved to the caller's channel (one cart per customer)."""
    if owner.customer_id is None:
        return None
    found = repo.active_for_customer(uow.conn, owner.customer_id)
    if found is None:
        return None
    cart = repo.with_lines(found, repo.lines_of(uow.conn, found.id))
    location = owner.location_id if owner.location_id is not None else cart.location_id
    if cart.status != OPEN or (cart.channel, cart.location_id) == (owner.channel, location):
        return cart
    return _move(uow, cart, channel=owner.channel, location_id=location, ttl_seconds=ttl_seconds)


def create_cart(uow: UnitOfWork, owner: CartOwner) -> Cart:
    now = clock.now()
    cart = Cart(
        id=new_id("crt"),
        channel=owner.channel,
        customer_id=owner.customer_id,
        email=owner.email,
        currency=owner.currency,
        status=OPEN,
        location_id=owner.location_id,
        fulfillment=None,
        coupon_codes=(),
        version=1,
        created_at=now,
        updated_at=now,
        expires_at=None,
    )
    try:
        with uow.conn.begin_nested():
            repo.insert_cart(uow.conn, cart)
    except IntegrityError:
        # A racing request opened the customer's cart first: one active cart per customer.
        winner = repo.active_for_customer(uow.conn, owner.customer_id) if owner.customer_id else None
        if winner is None:
            raise
        return repo.with_lines(winner, repo.lines_of(uow.conn, winner.id))
    uow.emit(
        CartCreated(
            cart_id=cart.id,
            channel=cart.channel,
            customer_id=cart.customer_id,
            currency=cart.currency,
            location_id=cart.location_id,
        )
    )
    return cart


# --- changing ----------------------------------------------------------------------------------


def set_line(
    uow: UnitOfWork, actor: Principal, cart_id: str, *, sku: str, quantity: int, add: bool, ttl_seconds: int
) -> Cart:
    """Set (or add to) one line; the holds follow. InsufficientStock leaves the cart unchanged."""
    cart = get_cart(uow, actor, cart_id)
    _require_open(cart)
    if quantity > 0:
        _check_sku(uow, sku, cart.channel)
    lines = apply_quantity(cart.lines, sku, quantity, add=add)
    cart = _lock(uow, cart)
    expires = _reserve(uow, cart, lines, ttl_seconds=ttl_seconds, previous=cart.lines)
    repo.replace_lines(uow.conn, cart.id, cart.lines, lines)
    repo.compare_and_set(uow.conn, cart.id, version=cart.version, status=OPEN, expires_at=expires)
    uow.emit(
        CartLineChanged(
            cart_id=cart.id,
            channel=cart.channel,
            customer_id=cart.customer_id,
            sku=sku,
            quantity=lines.get(sku, 0),
            previous_quantity=cart.lines.get(sku, 0),
        )
    )
    return replace(cart, lines=lines, version=cart.version + 1, expires_at=expires)


def set_fulfillment(
    uow: UnitOfWork, actor: Principal, cart_id: str, fulfillment: dict[str, Any], *, ttl_seconds: int
) -> Cart:
    """Ship to an address or pick up at a store; a pickup re-reserves at that store."""
    cart = get_cart(uow, actor, cart_id)
    _require_open(cart)
    if fulfillment["type"] == "pickup":
        inventory.get_location(uow, fulfillment["location_id"])  # 404 for an unknown store
    cart = _lock(uow, cart)
    moved = replace(cart, fulfillment=fulfillment)
    expires = _reserve(uow, moved, cart.lines, ttl_seconds=ttl_seconds) if cart.lines else cart.expires_at
    repo.compare_and_set(
        uow.conn, cart.id, version=cart.version, status=OPEN, fulfillment=fulfillment, expires_at=expires
    )
    return replace(moved, version=cart.version + 1, expires_at=expires)


def add_coupon(uow: UnitOfWork, actor: Principal, cart_id: str, code: str) -> Cart:
    """Attach a coupon after pricing accepts it for this cart (InvalidCoupon otherwise)."""
    cart = get_cart(uow, actor, cart_id)
    _require_open(cart)
    codes = tuple(normalize_codes([*cart.coupon_codes, code]))
    quote_cart(uow, replace(cart, coupon_codes=codes))  # validates the code now, not at checkout
    return _save_coupons(uow, cart, codes)


def remove_coupon(uow: UnitOfWork, actor: Principal, cart_id: str, code: str) -> Cart:
    cart = get_cart(uow, actor, cart_id)
    _require_open(cart)
    drop = code.strip().upper()
    return _save_coupons(uow, cart, tuple(c for c in cart.coupon_codes if c != drop))


def _save_coupons(uow: UnitOfWork, cart: Cart, codes: tuple[str, ...]) -> Cart:
    if not repo.compare_and_set(uow.conn, cart.id, version=cart.version, status=OPEN, coupon_codes=codes):
        raise CartChanged(f"cart {cart.id!r} changed; reload and retry")
    return replace(cart, coupon_codes=codes, version=cart.version + 1)


# --- hand-off across channels ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandoffCode:
    code: str
    qr_payload: str
    expires_at: datetime


def hand_off(uow: UnitOfWork, actor: Principal, cart_id: str, *, ttl_seconds: int) -> HandoffCode:
    """A short single-use code (and QR payload) a store associate or agent claims the cart with."""
    cart = get_cart(uow, actor, cart_id)
    _require_open(cart)
    code = new_handoff_code()
    expires = clock.now() + timedelta(seconds=ttl_seconds)
    repo.insert_handoff(uow.conn, code_hash=hash_code(code), cart_id=cart.id, expires_at=expires)
    uow.emit(
        CartHandedOff(cart_id=cart.id, channel=cart.channel, customer_id=cart.customer_id, expires_at=expires)
    )
    return HandoffCode(code, QR_PREFIX + code, expires)


def claim(uow: UnitOfWork, actor: Principal, code: str, *, ttl_seconds: int) -> Cart:
    """A POS (store-bound) or call-center key takes over a handed-off cart: its channel, its store."""
    if actor.is_customer or actor.channel is None:
        raise ClaimNotAllowed("claim with a key bound to a store POS or the call center")
    code_hash = hash_code(normalize_code(code))
    cart_id = repo.claim_handoff(uow.conn, code_hash=code_hash, claimed_by=actor.id)
    if cart_id is None:
        raise _why_unclaimable(uow, code_hash)
    cart = repo.get(uow.conn, cart_id, actor=None)
    if cart is None or cart.status != OPEN:
        raise CartNotOpen("the handed-off cart is no longer open")
    cart = repo.with_lines(cart, repo.lines_of(uow.conn, cart.id))
    location = actor.location if actor.location is not None else cart.location_id
    claimed = _move(uow, cart, channel=actor.channel, location_id=location, ttl_seconds=ttl_seconds)
    uow.emit(
        CartClaimed(
            cart_id=cart.id,
            channel=actor.channel,
            customer_id=cart.customer_id,
            from_channel=cart.channel,
            location_id=location,
            claimed_by=actor.id,
        )
    )
    return claimed


def _why_unclaimable(uow: UnitOfWork, code_hash: str) -> Exception:
    row = repo.get_handoff(uow.conn, code_hash)
    if row is None:
        return HandoffCodeInvalid("no cart was handed off with this code")
    if row.claimed_at is not None:
        return HandoffCodeUsed("this hand-off code was already used")
    return HandoffCodeExpired("this hand-off code expired; ask for a new one")


def _move(uow: UnitOfWork, cart: Cart, *, channel: str, location_id: str | None, ttl_seconds: int) -> Cart:
    """Put the cart on another channel/store; its holds follow it there."""
    fulfillment = cart.fulfillment
    if location_id is not None and fulfillment is not None and fulfillment.get("type") == "pickup":
        fulfillment = {"type": "pickup", "location_id": location_id}  # picked up where it now lives
    cart = _lock(uow, cart)
    moved = replace(cart, channel=channel, location_id=location_id, fulfillment=fulfillment)
    expires = _reserve(uow, moved, cart.lines, ttl_seconds=ttl_seconds) if cart.lines else cart.expires_at
    repo.compare_and_set(
        uow.conn,
        cart.id,
        version=cart.version,
        status=OPEN,
        channel=channel,
        location_id=location_id,
        fulfillment=fulfillment,
        expires_at=expires,
    )
    return replace(moved, version=cart.version + 1, expires_at=expires)


# --- sign-in -----------------------------------------------------------------------------------


def merge_anonymous_cart(uow: UnitOfWork, *, anonymous_cart_id: str, customer_id: str, channel: str) -> None:
    """Fold an anonymous cart into the customer's at sign-in.

    With no active cart the anonymous one simply becomes theirs. Otherwise its lines are added to
    the customer's cart, whose holds grow to cover them, and the anonymous cart is ``merged`` with
    its holds released — nothing stays reserved twice. If the stock cannot cover the sum, both
    carts are left as they were: sign-in never fails over a cart.
    """
    anon = repo.get(uow.conn, anonymous_cart_id, actor=None)
    if anon is None or anon.status != OPEN or anon.customer_id not in (None, customer_id):
        return
    ttl = get_settings().reservation_ttl_seconds
    target = repo.active_for_customer(uow.conn, customer_id)
    if target is None or target.id == anon.id:
        _adopt(uow, anon, customer_id=customer_id, channel=channel)
        return
    if target.status != OPEN:
        return
    lines = repo.lines_of_many(uow.conn, [anon.id, target.id])
    target = _lock(uow, repo.with_lines(target, lines.get(target.id, {})))
    merged = merged_lines(target.lines, lines.get(anon.id, {}))
    try:
        with uow.conn.begin_nested():
            inventory.release(uow, owner_id=anon.id, reason="cart-merged")
            expires = _reserve(uow, target, merged, ttl_seconds=ttl)
    except InsufficientStock:
        return
    repo.replace_lines(uow.conn, target.id, target.lines, merged)
    repo.compare_and_set(uow.conn, target.id, version=target.version, status=OPEN, expires_at=expires)
    repo.compare_and_set(uow.conn, anon.id, version=anon.version, status=OPEN, to_status=MERGED)
    uow.emit(CartMerged(cart_id=anon.id, channel=channel, customer_id=customer_id, into_cart_id=target.id))


def _adopt(uow: UnitOfWork, anon: Cart, *, customer_id: str, channel: str) -> None:
    if not repo.compare_and_set(
        uow.conn, anon.id, version=anon.version, status=OPEN, customer_id=customer_id, channel=channel
    ):
        return
    uow.emit(CartMerged(cart_id=anon.id, channel=channel, customer_id=customer_id, into_cart_id=anon.id))


# --- checkout hooks (called by orders) ---------------------------------------------------------


def begin_checkout(
    uow: UnitOfWork,
    actor: Principal,
    cart_id: str,
    *,
    fulfillment: dict[str, Any] | None,
    email: str | None,
    ttl_seconds: int,
) -> Cart:
    """Move an open cart to ``checking_out`` (version + 1) and top up its holds.

    Returns the cart as loaded when it is not open (``completed``: the order exists;
    ``checking_out``: an earlier attempt is in flight or crashed — the caller resumes it).
    Raises EmptyCart, FulfillmentRequired, InsufficientStock (cart stays open: roll back).
    """
    cart = get_cart(uow, actor, cart_id)
    if cart.status in (COMPLETED, CHECKING_OUT):
        return cart
    _require_open(cart)
    if not cart.lines:
        raise EmptyCart("add lines before checking out")
    cart = replace(cart, fulfillment=fulfillment or cart.fulfillment, email=email or cart.email)
    if cart.effective_fulfillment is None:
        raise FulfillmentRequired("choose shipping or pickup first (PUT /carts/{id}/fulfillment)")
    if fulfillment is not None and fulfillment["type"] == "pickup":
        inventory.get_location(uow, fulfillment["location_id"])
    if not repo.compare_and_set(
        uow.conn,
        cart.id,
        version=cart.version,
        status=OPEN,
        to_status=CHECKING_OUT,
        fulfillment=cart.fulfillment,
        email=cart.email,
    ):
        # A concurrent attempt moved it first: join that attempt (the caller resumes or returns its order).
        now = get_cart(uow, actor, cart_id)
        if now.status in (COMPLETED, CHECKING_OUT):
            return now
        raise CartChanged(f"cart {cart.id!r} changed; retry")
    expires = _reserve(uow, cart, cart.lines, ttl_seconds=ttl_seconds)
    return replace(cart, status=CHECKING_OUT, version=cart.version + 1, expires_at=expires)


def finish_checkout(uow: UnitOfWork, *, cart_id: str, version: int) -> bool:
    """``checking_out`` → ``completed`` iff still at ``version``; False if another attempt won."""
    return repo.compare_and_set(uow.conn, cart_id, version=version, status=CHECKING_OUT, to_status=COMPLETED)


def abort_checkout(uow: UnitOfWork, *, cart_id: str, version: int) -> bool:
    """Back to ``open`` with every hold released (a failed payment keeps nothing reserved)."""
    if not repo.compare_and_set(uow.conn, cart_id, version=version, status=CHECKING_OUT, to_status=OPEN):
        return False
    inventory.release(uow, owner_id=cart_id, reason="checkout-failed")
    return True


# --- helpers -----------------------------------------------------------------------------------


def _require_open(cart: Cart) -> None:
    if cart.status != OPEN:
        raise CartNotOpen(f"cart {cart.id!r} is {cart.status}")


def _check_sku(uow: UnitOfWork, sku: str, channel: str) -> None:
    info = catalog.get_variants(uow, [sku]).get(sku)
    if info is None or not info.active:
        raise UnknownSku(f"no sellable SKU {sku!r}", sku=sku)
    if not info.listed_on(channel):
        raise SkuNotListed(f"SKU {sku!r} is not sold on channel {channel!r}", sku=sku)


def _lock(uow: UnitOfWork, cart: Cart) -> Cart:
    """Take the cart's row lock (version + 1) before touching its holds.

    Every line change bumps the version under this lock, so lines read at the old version are
    still the cart's lines when the compare-and-set succeeds.
    """
    if not repo.compare_and_set(uow.conn, cart.id, version=cart.version, status=OPEN):
        raise CartChanged(f"cart {cart.id!r} changed; reload and retry")
    return replace(cart, version=cart.version + 1)


def _reserve(
    uow: UnitOfWork,
    cart: Cart,
    lines: Mapping[str, int],
    *,
    ttl_seconds: int,
    previous: Mapping[str, int] | None = None,
) -> datetime:
    """Make the cart's holds cover exactly ``lines``; returns when they lapse."""
    demand = {**dict.fromkeys(previous or {}, 0), **lines}
    inventory.reserve(
        uow,
        owner_id=cart.id,
        channel=cart.channel,
        demand=demand,
        location_id=cart.stock_location,
        capability=cart.capability,
        ttl_seconds=ttl_seconds,
    )
    return clock.now() + timedelta(seconds=ttl_seconds)
