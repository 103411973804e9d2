"""Cart rules: statuses, fulfillment choice, what a cart demands of inventory, hand-off codes.

Pure Python: no SQLAlchemy, FastAPI or I/O.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from omnicommerce.platform.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound

OPEN = "open"
CHECKING_OUT = "checking_out"
# A failed checkout whose payment is being voided: no attempt may complete it or reuse its
# payment key, and it reopens only once the void went through (a retry of checkout finishes it).
VOIDING = "voiding"
COMPLETED = "completed"
MERGED = "merged"
ABANDONED = "abandoned"
ACTIVE = (OPEN, CHECKING_OUT, VOIDING)  # a customer has at most one cart in these states

# No 0/O, 1/I/L: codes are read aloud at a till and typed by hand.
HANDOFF_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
HANDOFF_CODE_LENGTH = 8
QR_PREFIX = "omni:cart:"
MAX_LINE_QUANTITY = 10_000


@dataclass(frozen=True, slots=True)
class Line:
    """One cart line, with what the catalog said about the SKU when it was added or last set:
    its display name (for the order) and its categories (for pricing's category promotions)."""

    sku: str
    quantity: int
    name: str
    category_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cart:
    id: str
    channel: str
    customer_id: str | None
    email: str | None
    currency: str
    status: str
    location_id: str | None
    fulfillment: dict[str, Any] | None
    coupon_codes: tuple[str, ...]
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    lines: tuple[Line, ...] = ()  # ordered by SKU

    @property
    def demand(self) -> dict[str, int]:
        """SKU → units: what the cart's holds must cover."""
        return {ln.sku: ln.quantity for ln in self.lines}

    @property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """SKU → category ids as captured with the lines (pricing needs no catalog read)."""
        return {ln.sku: ln.category_ids for ln in self.lines}

    @property
    def names(self) -> dict[str, str]:
        return {ln.sku: ln.name for ln in self.lines}

    @property
    def effective_fulfillment(self) -> dict[str, Any] | None:
        """The chosen fulfillment; a store-bound cart without one is a carry-out from that store."""
        if self.fulfillment is not None:
            return self.fulfillment
        if self.location_id is not None:
            return {"type": "pickup", "location_id": self.location_id}
        return None

    @property
    def stock_location(self) -> str | None:
        """Where the cart's units are held: the pickup store, else the store the cart is bound to."""
        f = self.fulfillment
        if f is not None and f.get("type") == "pickup":
            return str(f["location_id"])
        return self.location_id

    @property
    def capability(self) -> str:
        f = self.effective_fulfillment
        return "pickup" if f is not None and f.get("type") == "pickup" else "ship"


def holds_move(before: Cart, after: Cart) -> bool:
    """Whether going from ``before`` to ``after`` changes where (or how) the units must be held."""
    return bool(after.lines) and (
        (before.stock_location, before.capability) != (after.stock_location, after.capability)
    )


def display_name(product_name: str, variant_name: str | None) -> str:
    """The name an order line carries: the product, and the variant when it says more."""
    if variant_name and variant_name != product_name:
        return f"{product_name} — {variant_name}"
    return product_name


def apply_quantity(
    lines: Sequence[Line], sku: str, quantity: int, *, add: bool, snapshot: Line | None = None
) -> tuple[Line, ...]:
    """The cart's lines after setting (or adding to) one SKU; a total of 0 removes the line.

    ``snapshot`` (the catalog's name and categories now) replaces what the line captured before.
    """
    by_sku = {ln.sku: ln for ln in lines}
    current = by_sku.get(sku)
    total = (current.quantity if current else 0) + quantity if add else quantity
    if total < 0:
        raise InvalidInput("quantity cannot make a line negative")
    if total > MAX_LINE_QUANTITY:
        raise InvalidInput(f"at most {MAX_LINE_QUANTITY} units of one SKU per cart")
    if total == 0:
        by_sku.pop(sku, None)
    else:
        base = snapshot or current or Line(sku, 0, sku)
        by_sku[sku] = replace(base, quantity=total)
    return tuple(sorted(by_sku.values(), key=lambda ln: ln.sku))


def merged_lines(into: Sequence[Line], extra: Sequence[Line]) -> tuple[Line, ...]:
    by_sku = {ln.sku: ln for ln in into}
    for ln in extra:
        have = by_sku.get(ln.sku)
        by_sku[ln.sku] = ln if have is None else replace(have, quantity=have.quantity + ln.quantity)
    return tuple(sorted(by_sku.values(), key=lambda ln: ln.sku))


def new_handoff_code() -> str:
    return "".join(secrets.choice(HANDOFF_ALPHABET) for _ in range(HANDOFF_CODE_LENGTH))


def normalize_code(raw: str) -> str:
    """Accept the QR payload or the code as typed (any case, spaces or dashes)."""
    code = raw.strip()
    if code.startswith(QR_PREFIX):
        code = code[len(QR_PREFIX) :]
    return "".join(ch for ch in code.upper() if ch not in " -")


def hash_code(code: str) -> str:
    # Codes are short-lived and single-use; a hash keeps a database reader from claiming carts.
    return hashlib.sha256(code.encode()).hexdigest()


# --- errors -----------------------------------------------------------------------------------


class CartNotFound(NotFound):
    code = "cart-not-found"
    title = "Cart not found"


class CartNotOpen(Conflict):
    code = "cart-not-open"
    title = "Cart is not open"


class CartChanged(Conflict):
    code = "cart-changed"
    title = "Cart changed concurrently; reload and retry"


class UnknownSku(InvalidInput):
    code = "unknown-sku"
    title = "Unknown SKU"


class SkuNotListed(InvalidInput):
    code = "sku-not-listed"
    title = "SKU not sold on this channel"


class EmptyCart(Conflict):
    code = "cart-empty"
    title = "Cart is empty"


class FulfillmentRequired(Conflict):
    code = "fulfillment-required"
    title = "Choose shipping or pickup first"


class HandoffCodeInvalid(NotFound):
    code = "handoff-code-invalid"
    title = "Unknown hand-off code"


class HandoffCodeUsed(Conflict):
    code = "handoff-code-used"
    title = "Hand-off code already used"


class HandoffCodeExpired(DomainError):
    code = "handoff-code-expired"
    status = 410
    title = "Hand-off code expired"


class ClaimNotAllowed(Forbidden):
    code = "claim-not-allowed"
    title = "Only a store or call-center credential can claim a cart"
