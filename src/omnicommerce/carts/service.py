"""Cart use cases. Each takes a unit of work and never commits.

Public functions other contexts call: :func:`get_cart`, :func:`quote_cart`, :func:`list_for_customer`,
:func:`merge_anonymous_cart` (sign-in), and the checkout hooks :func:`begin_checkout`,
:func:`finish_checkout`, :func:`begin_void`, :func:`abort_checkout` (orders).

Lock order: a use case takes the cart's row lock (its compare-and-set UPDATE) before it touches
the cart's holds (stock rows), so two writers of one cart cannot deadlock each other. A failure
after the UPDATE (InsufficientStock, …) is undone by the caller's rollback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from omnicommerce.carts import repository as repo
from omnicommerce.carts.domain import (
    ACTIVE,
    CHECKING_OUT,
    COMPLETED,
    MERGED,
    OPEN,
    QR_PREFIX,
    VOIDING,
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
    Line,
    SkuNotListed,
    UnknownSku,
    apply_quantity,
    display_name,
    hash_code,
    holds_move,
    merged_lines,
    new_handoff_code,
    normalize_code,
)
from omnicommerce.carts.events import CartClaimed, CartCreated, CartHandedOff, CartLineChanged, CartMerged
from omnicommerce.carts.schemas import CartCreate
from omnicommerce.catalog import service as catalog
from omnicommerce.customers import service as customers
from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.inventory import service as inventory
from omnicommerce.inventory.domain import InsufficientStock
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.channels import get_channel, resolve_channel
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
    return cart


def quote_cart(uow: UnitOfWork, cart: Cart) -> Quote:
    """The live price of the cart: the same pricing.quote the quote endpoint and checkout use,
    with the lines' categories as captured from the catalog (pricing then reads no catalog)."""
    return pricing.quote(
        uow,
        channel=cart.channel,
        currency=cart.currency,
        lines=[QuoteLine(sku=ln.sku, quantity=ln.quantity) for ln in cart.lines],
        customer_id=cart.customer_id,
        coupon_codes=list(cart.coupon_codes),
        categories=cart.categories,
    )


def list_for_customer(uow: UnitOfWork, actor: Principal, customer_id: str) -> list[Cart]:
    """The person's open (or checking-out) carts across every channel and every account of their
    profile (``customers.person_accounts``), with lines."""
    accounts, reader = customers.person_accounts(uow, actor, customer_id)
    return repo.list_for_customer(uow.conn, accounts, actor=reader, statuses=list(ACTIVE))


# --- opening -----------------------------------------------------------------------------------


def open_cart(uow: UnitOfWork, actor: Principal, cmd: CartCreate, *, ttl_seconds: int) -> tuple[Cart, bool]:
    """A new empty cart, or — one active cart per customer — the customer's existing one, moved
    to the caller's channel (and store). The flag says whether the cart is new."""
    channel_id = resolve_channel(actor.channel, cmd.channel)
    channel = get_channel(uow.conn, channel_id)
    if cmd.currency is not None and cmd.currency.upper() != channel.currency:
        raise CurrencyMismatch(f"channel {channel_id!r} sells in {channel.currency}, not {cmd.currency}")
    customer_id, email = _customer_for(uow, actor, cmd, channel_id)
    now = clock.now()
    new = Cart(
        id=new_id("crt"),
        channel=channel_id,
        customer_id=customer_id,
        email=email,
        currency=channel.currency,
        status=OPEN,
        location_id=actor.location,
        fulfillment=None,
        coupon_codes=(),
        version=1,
        created_at=now,
        updated_at=now,
        expires_at=None,
    )
    cart = repo.insert_open(uow.conn, new)
    if cart is not None:
        uow.emit(
            CartCreated(
                cart_id=cart.id,
                channel=cart.channel,
                customer_id=cart.customer_id,
                currency=cart.currency,
                location_id=cart.location_id,
            )
        )
        return cart, True
    # The customer has an active cart (only then is nothing inserted): theirs, on this channel.
    existing = repo.active_for_customer(uow.conn, customer_id) if customer_id is not None else None
    if existing is None:  # it checked out between the two statements
        raise CartChanged("the customer's cart changed; retry")
    location = actor.location if actor.location is not None else existing.location_id
    if existing.status != OPEN or (existing.channel, existing.location_id) == (channel_id, location):
        return existing, False
    return _move(uow, existing, channel=channel_id, location_id=location, ttl_seconds=ttl_seconds), False


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


# --- changing ----------------------------------------------------------------------------------


def set_line(
    uow: UnitOfWork, actor: Principal, cart_id: str, *, sku: str, quantity: int, add: bool, ttl_seconds: int
) -> Cart:
    """Set (or add to) one line; the holds follow. InsufficientStock: roll back, the cart is unchanged."""
    cart = get_cart(uow, actor, cart_id)
    _require_open(cart)
    snapshot = _catalog_line(uow, sku, cart.channel) if quantity > 0 else None
    lines = apply_quantity(cart.lines, sku, quantity, add=add, snapshot=snapshot)
    changed = replace(cart, lines=lines, version=cart.version + 1, expires_at=_expiry(ttl_seconds))
    _save(uow, cart, lines=lines, expires_at=changed.expires_at)
    _reserve(uow, changed, ttl_seconds=ttl_seconds, previous=cart)
    before = cart.demand.get(sku, 0)
    uow.emit(
        CartLineChanged(
            cart_id=cart.id,
            channel=cart.channel,
            customer_id=cart.customer_id,
            sku=sku,
            quantity=changed.demand.get(sku, 0),
            previous_quantity=before,
        )
    )
    return changed


def set_fulfillment(
    uow: UnitOfWork, actor: Principal, cart_id: str, fulfillment: dict[str, Any], *, ttl_seconds: int
) -> Cart:
    """Ship to an address or pick up at a store; the holds move when the store does.

    Shipping a cart whose holds stay put is one UPDATE (no read, no inventory call)."""
    if fulfillment["type"] == "ship":
        shipped = repo.ship_in_place(uow.conn, cart_id, actor=actor, fulfillment=fulfillment)
        if shipped is not None:
            return shipped
    cart = get_cart(uow, actor, cart_id)
    _require_open(cart)
    if fulfillment["type"] == "pickup":
        inventory.get_location(uow, fulfillment["location_id"])  # 404 for an unknown store
    moved = replace(cart, fulfillment=fulfillment, version=cart.version + 1)
    move = holds_move(cart, moved)
    if move:
        moved = replace(moved, expires_at=_expiry(ttl_seconds))
    _save(uow, cart, fulfillment=fulfillment, expires_at=moved.expires_at)
    if move:
        _reserve(uow, moved, ttl_seconds=ttl_seconds)
    return moved


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
    _save(uow, cart, coupon_codes=codes)
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
    moved = replace(
        cart, channel=channel, location_id=location_id, fulfillment=fulfillment, version=cart.version + 1
    )
    if cart.lines:  # holds are per channel too: re-reserve whenever the cart has any
        moved = replace(moved, expires_at=_expiry(ttl_seconds))
    _save(
        uow,
        cart,
        channel=channel,
        location_id=location_id,
        fulfillment=fulfillment,
        expires_at=moved.expires_at,
    )
    if cart.lines:
        _reserve(uow, moved, ttl_seconds=ttl_seconds)
    return moved


# --- sign-in -----------------------------------------------------------------------------------


def merge_anonymous_cart(
    uow: UnitOfWork, *, anonymous_cart_id: str, customer_id: str, channel: str, ttl_seconds: int
) -> None:
    """Fold an anonymous cart into the customer's at sign-in.

    With no active cart the anonymous one simply becomes theirs. Otherwise its lines are added to
    the customer's cart, whose holds grow to cover them, and the anonymous cart is ``merged`` with
    its holds released — nothing stays reserved twice. If the stock cannot cover the sum, both
    carts are left as they were: sign-in never fails over a cart.
    """
    anon = repo.get(uow.conn, anonymous_cart_id, actor=None)
    if anon is None or anon.status != OPEN or anon.customer_id not in (None, customer_id):
        return
    ttl = ttl_seconds
    target = repo.active_for_customer(uow.conn, customer_id)
    if target is None or target.id == anon.id:
        _adopt(uow, anon, customer_id=customer_id, channel=channel)
        return
    if target.status != OPEN:
        return
    lines = merged_lines(target.lines, anon.lines)
    merged = replace(target, lines=lines, version=target.version + 1, expires_at=_expiry(ttl))
    try:
        with uow.conn.begin_nested():  # sign-in goes on without the merge if stock falls short
            if not repo.compare_and_set(
                uow.conn,
                target.id,
                version=target.version,
                status=OPEN,
                lines=lines,
                expires_at=merged.expires_at,
            ):
                return
            inventory.release(uow, owner_id=anon.id, reason="cart-merged")
            _reserve(uow, merged, ttl_seconds=ttl)
    except InsufficientStock:
        return
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
    """Take an open cart for checkout: ``open`` → ``checking_out`` (version + 1).

    One ``UPDATE … RETURNING`` claims and loads the cart. Its holds are left as they are unless
    ``fulfillment`` moves them: ``inventory.commit`` re-reserves whatever lapsed since (or raises
    InsufficientStock then). Returns the cart as it is when it was not open (``completed``: the
    order exists; ``checking_out``: an earlier attempt is in flight or crashed — the caller
    resumes it with the same payment key; ``voiding``: a failed attempt's void is unfinished —
    the caller finishes it). Raises EmptyCart, FulfillmentRequired,
    InsufficientStock: the caller rolls back and the cart stays open.
    """
    cart = repo.claim_for_checkout(uow.conn, cart_id, actor=actor)
    if cart is None:
        cart = get_cart(uow, actor, cart_id)
        if cart.status in (COMPLETED, CHECKING_OUT, VOIDING):
            return cart
        if cart.status == OPEN:  # a failed attempt reopened it between the two statements
            raise CartChanged(f"cart {cart.id!r} changed; retry")
        raise CartNotOpen(f"cart {cart.id!r} is {cart.status}")
    if not cart.lines:
        raise EmptyCart("add lines before checking out")
    chosen = replace(cart, fulfillment=fulfillment or cart.fulfillment, email=email or cart.email)
    if chosen.effective_fulfillment is None:
        raise FulfillmentRequired("choose shipping or pickup first (PUT /carts/{id}/fulfillment)")
    if (chosen.fulfillment, chosen.email) == (cart.fulfillment, cart.email):
        return cart
    if fulfillment is not None and fulfillment["type"] == "pickup":
        inventory.get_location(uow, fulfillment["location_id"])
    if holds_move(cart, chosen):
        chosen = replace(chosen, expires_at=_expiry(ttl_seconds))
        _reserve(uow, chosen, ttl_seconds=ttl_seconds)
    repo.compare_and_set(
        uow.conn,
        cart.id,
        version=cart.version,
        status=CHECKING_OUT,
        bump=False,  # this attempt's version (and payment key) stays
        fulfillment=chosen.fulfillment,
        email=chosen.email,
        expires_at=chosen.expires_at,
    )
    return chosen


def finish_checkout(uow: UnitOfWork, *, cart_id: str, version: int) -> bool:
    """``checking_out`` → ``completed`` (version + 1) iff still at ``version``; False if another
    attempt won."""
    return repo.compare_and_set(uow.conn, cart_id, version=version, status=CHECKING_OUT, to_status=COMPLETED)


def begin_void(uow: UnitOfWork, *, cart_id: str, version: int) -> bool:
    """A failed checkout at ``version`` whose payment may stand: ``checking_out`` → ``voiding``
    (same version), so that no attempt completes it under that payment key any more. True when
    the payment under ``version`` must be voided: no order was placed with it, and now none can be.
    """
    if repo.compare_and_set(
        uow.conn, cart_id, version=version, status=CHECKING_OUT, to_status=VOIDING, bump=False
    ):
        return True
    cart = repo.get(uow.conn, cart_id, actor=None)
    # Completed by the attempt that held ``version``: finish_checkout made it version + 1.
    return not (cart is not None and cart.status == COMPLETED and cart.version == version + 1)


def stalled_checkouts(uow: UnitOfWork, *, older_than: timedelta, limit: int) -> list[Cart]:
    """Carts ``checking_out`` or ``voiding`` untouched for ``older_than``: checkouts cut off
    between the payment and the order (process gone, client gone), oldest first."""
    return repo.stalled_in_checkout(uow.conn, updated_before=clock.now() - older_than, limit=limit)


def abort_checkout(uow: UnitOfWork, *, cart_id: str, version: int, status: str = CHECKING_OUT) -> bool:
    """``status`` (``checking_out`` when nothing was charged, ``voiding`` once the void went
    through) → ``open`` with every hold released (a failed payment keeps nothing reserved)."""
    if not repo.compare_and_set(uow.conn, cart_id, version=version, status=status, to_status=OPEN):
        return False
    inventory.release(uow, owner_id=cart_id, reason="checkout-failed")
    return True


# --- helpers -----------------------------------------------------------------------------------


def _require_open(cart: Cart) -> None:
    if cart.status != OPEN:
        raise CartNotOpen(f"cart {cart.id!r} is {cart.status}")


def _catalog_line(uow: UnitOfWork, sku: str, channel: str) -> Line:
    """What the line captures from the catalog now; UnknownSku / SkuNotListed when it cannot sell."""
    info = catalog.get_variants(uow, [sku]).get(sku)
    if info is None or not info.active:
        raise UnknownSku(f"no sellable SKU {sku!r}", sku=sku)
    if not info.listed_on(channel):
        raise SkuNotListed(f"SKU {sku!r} is not sold on channel {channel!r}", sku=sku)
    return Line(sku, 0, display_name(info.product_name, info.name), tuple(info.category_ids))


def _save(uow: UnitOfWork, cart: Cart, **values: Any) -> None:
    """Compare-and-set on the version the cart was read at (takes the row lock); CartChanged if
    another request changed it first."""
    if not repo.compare_and_set(uow.conn, cart.id, version=cart.version, status=OPEN, **values):
        raise CartChanged(f"cart {cart.id!r} changed; reload and retry")


def _expiry(ttl_seconds: int) -> datetime:
    return clock.now() + timedelta(seconds=ttl_seconds)


def _reserve(uow: UnitOfWork, cart: Cart, *, ttl_seconds: int, previous: Cart | None = None) -> None:
    """Make the cart's holds cover exactly its lines (SKUs only in ``previous`` go to 0)."""
    demand: Mapping[str, int] = {**dict.fromkeys(previous.demand if previous else {}, 0), **cart.demand}
    inventory.reserve(
        uow,
        owner_id=cart.id,
        channel=cart.channel,
        demand=demand,
        location_id=cart.stock_location,
        capability=cart.capability,
        ttl_seconds=ttl_seconds,
    )


# --- privacy (called by customers.privacy for export and erasure requests) --------------------------


def customer_data(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    """The person's carts (theirs, or guest carts under their email), as stored."""
    return repo.customer_rows(uow.conn, subject)


def erase_customer_pii(uow: UnitOfWork, subject: Subject) -> int:
    """Email and delivery address out of the person's carts; lines, coupons and ids stay. The
    version moves, so a request holding the old cart cannot write the address back."""
    return repo.erase_customer_pii(uow.conn, subject)
