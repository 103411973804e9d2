"""Prices, promotions and coupons: the pure arithmetic of a quote.

Price book: one per currency. A channel override for (sku, currency, channel) wins over the
base price for (sku, currency).

Stacking rule (deterministic, per line; every line is priced on its own, so line order never
changes a result):

1. ``subtotal = unit_price * quantity``.
2. Automatic promotions are those running at ``at`` (active, ``starts_at <= at < ends_at``),
   on the channel (empty ``channels`` = all), covering the line (SKU in ``skus`` or one of its
   categories in ``category_ids``; both empty = everything), not requiring a coupon and not
   unlocked by a code in this quote. Of these, at most ONE applies: the one giving the largest
   discount on the subtotal; ties go to the higher ``priority``, then the smaller id.
3. Then each promotion unlocked by a coupon code in the quote that covers the line applies, in
   order of higher ``priority``, then smaller promotion id (one promotion counts once even if
   two codes unlock it; the lexically first code is recorded).
4. Each discount is computed on what is left of the line after the previous ones and is capped
   there, so a line never goes below zero:
   - ``percentage``: ``basis_points`` of the remainder, rounded half up (``money.percent_of``);
   - ``fixed``: ``amount_off`` per unit, only for a promotion in the quote's currency;
   - ``buy_x_get_y``: for every ``x + y`` units of the SKU on the line, ``y`` are free
     (``floor(q / (x + y)) * y`` units at the unit price).
5. Adjustments carry negative amounts. ``discount_total`` is their sum (<= 0) and
   ``total = subtotal + discount_total``; quote totals are exact sums of the lines.
All arithmetic is on integers in minor units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from omnicommerce.catalog.domain import UnknownSku as CatalogUnknownSku
from omnicommerce.platform.errors import Conflict, InvalidInput
from omnicommerce.platform.money import percent_of

COUPON_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{2,39}$"


class UnknownSku(CatalogUnknownSku):
    """A SKU named in a quote or price list that the catalog does not know: bad input, not a missing page."""

    status = 422


class NoPrice(InvalidInput):
    code = "no-price"
    title = "No price"


class InvalidQuantity(InvalidInput):
    code = "invalid-quantity"
    title = "Invalid quantity"


class InvalidCoupon(InvalidInput):
    code = "invalid-coupon"
    title = "Invalid coupon"


class CouponExhausted(Conflict):
    code = "coupon-exhausted"
    title = "Coupon used up"


class DuplicateCoupon(Conflict):
    code = "duplicate-coupon"
    title = "Coupon code already exists"


class UnknownPromotion(InvalidInput):
    code = "unknown-promotion"
    title = "Unknown promotion"


class UnknownPriceChannel(InvalidInput):
    code = "unknown-channel"
    title = "Unknown channel"


class BadLine(InvalidInput):
    code = "bad-line"
    title = "Bad quote line"


class PromotionKind(StrEnum):
    PERCENTAGE = "percentage"
    FIXED = "fixed"
    BUY_X_GET_Y = "buy_x_get_y"


@dataclass(frozen=True, slots=True)
class QuoteLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Adjustment:
    reason: str
    amount: int  # negative = discount
    promotion_id: str | None = None
    coupon_code: str | None = None


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku: str
    quantity: int
    unit_price: int
    subtotal: int
    adjustments: list[Adjustment]
    total: int


@dataclass(frozen=True, slots=True)
class Quote:
    currency: str
    lines: list[PricedLine]
    subtotal: int
    discount_total: int  # <= 0
    total: int
    coupon_codes: list[str]


@dataclass(frozen=True, slots=True)
class Promotion:
    id: str
    name: str
    kind: PromotionKind
    starts_at: datetime
    ends_at: datetime | None = None
    basis_points: int = 0
    amount_off: int = 0
    currency: str | None = None  # of amount_off (fixed only)
    buy_quantity: int = 0
    get_quantity: int = 0
    channels: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    category_ids: frozenset[str] = frozenset()
    requires_coupon: bool = False
    priority: int = 0
    active: bool = True

    def running_at(self, at: datetime) -> bool:
        return self.active and self.starts_at <= at and (self.ends_at is None or at < self.ends_at)

    def covers(self, sku: str, categories: Iterable[str], channel: str, currency: str) -> bool:
        if self.channels and channel not in self.channels:
            return False
        if self.kind is PromotionKind.FIXED and self.currency != currency:
            return False
        if not self.skus and not self.category_ids:
            return True
        return sku in self.skus or not self.category_ids.isdisjoint(categories)

    def free_units(self, quantity: int) -> int:
        return quantity // (self.buy_quantity + self.get_quantity) * self.get_quantity

    def discount(self, unit_price: int, quantity: int, remaining: int) -> int:
        """The (positive) amount off a line with ``remaining`` left to pay, never more than that."""
        if self.kind is PromotionKind.PERCENTAGE:
            raw = percent_of(remaining, self.basis_points)
        elif self.kind is PromotionKind.FIXED:
            raw = self.amount_off * quantity
        else:
            raw = self.free_units(quantity) * unit_price
        return max(0, min(raw, remaining))


@dataclass(frozen=True, slots=True)
class Coupon:
    code: str
    promotion_id: str
    max_uses: int | None
    uses: int
    expires_at: datetime | None = None


def normalize_codes(codes: Iterable[str]) -> list[str]:
    """Coupon codes are case-insensitive: stored upper-case; a quote lists each once, sorted."""
    return sorted({c.strip().upper() for c in codes if c.strip()})


def check_quantities(lines: Sequence[QuoteLine]) -> None:
    bad = sorted({ln.sku for ln in lines if ln.quantity <= 0})
    if bad:
        raise InvalidQuantity(f"quantity must be at least 1 (sku {', '.join(bad)})", skus=bad)


def effective_prices(rows: Iterable[tuple[str, str | None, int]]) -> dict[str, int]:
    """(sku, override channel or None, amount) rows → unit price per SKU; an override wins."""
    base: dict[str, int] = {}
    override: dict[str, int] = {}
    for sku, channel, amount in rows:
        (base if channel is None else override)[sku] = amount
    return base | override


def validate_coupons(
    codes: Iterable[str], coupons: Mapping[str, Coupon], promotions: Mapping[str, Promotion], at: datetime
) -> dict[str, str]:
    """Usable codes → the promotion each unlocks; raises on the first unusable one."""
    unlocked: dict[str, str] = {}
    for code in normalize_codes(codes):
        coupon = coupons.get(code)
        if coupon is None:
            raise InvalidCoupon(f"coupon {code!r} does not exist", coupon_code=code)
        promo = promotions.get(coupon.promotion_id)
        expired = coupon.expires_at is not None and at >= coupon.expires_at
        if expired or promo is None or not promo.running_at(at):
            raise InvalidCoupon(
                f"coupon {code!r} is expired or its promotion is not running", coupon_code=code
            )
        if coupon.max_uses is not None and coupon.uses >= coupon.max_uses:
            raise CouponExhausted(f"coupon {code!r} has been used up", coupon_code=code)
        unlocked[code] = coupon.promotion_id
    return unlocked


def price_lines(
    lines: Sequence[QuoteLine],
    base_prices: Mapping[str, int],
    promotions: Sequence[Promotion],
    coupon_codes: Mapping[str, str],
    channel: str,
    at: datetime,
    categories_by_sku: Mapping[str, Iterable[str]],
    *,
    currency: str,
) -> Quote:
    """Price ``lines`` under the stacking rule in the module docstring.

    ``base_prices`` is SKU → unit price (overrides already applied, see ``effective_prices``);
    ``coupon_codes`` is each validated code → the promotion it unlocks.
    """
    check_quantities(lines)
    missing = sorted({ln.sku for ln in lines} - base_prices.keys())
    if missing:
        raise NoPrice(f"no {currency} price for SKU(s) {', '.join(missing)}", skus=missing, currency=currency)
    running = [p for p in promotions if p.running_at(at)]
    by_id = {p.id: p for p in running}
    unlocked = _unlocked(coupon_codes, by_id)
    automatic = [p for p in running if not p.requires_coupon and p.id not in unlocked]
    priced = [
        _price_line(
            ln,
            base_prices[ln.sku],
            automatic,
            unlocked,
            channel,
            currency,
            tuple(categories_by_sku.get(ln.sku, ())),
        )
        for ln in lines
    ]
    subtotal = sum(p.subtotal for p in priced)
    discount = sum(a.amount for p in priced for a in p.adjustments)
    return Quote(
        currency=currency,
        lines=priced,
        subtotal=subtotal,
        discount_total=discount,
        total=subtotal + discount,
        coupon_codes=normalize_codes(coupon_codes),
    )


def _unlocked(
    coupon_codes: Mapping[str, str], by_id: Mapping[str, Promotion]
) -> dict[str, tuple[Promotion, str]]:
    """Promotion id → (promotion, first code unlocking it), for running promotions only."""
    out: dict[str, tuple[Promotion, str]] = {}
    for code in sorted(coupon_codes):
        promo = by_id.get(coupon_codes[code])
        if promo is not None and promo.id not in out:
            out[promo.id] = (promo, code)
    return out


def _price_line(
    line: QuoteLine,
    unit_price: int,
    automatic: Sequence[Promotion],
    unlocked: Mapping[str, tuple[Promotion, str]],
    channel: str,
    currency: str,
    categories: tuple[str, ...],
) -> PricedLine:
    subtotal = unit_price * line.quantity
    adjustments: list[Adjustment] = []
    remaining = subtotal
    best = _best_automatic(line, unit_price, subtotal, automatic, channel, currency, categories)
    stack: list[tuple[Promotion, str | None]] = [(best, None)] if best else []
    coupon_promos = sorted(unlocked.values(), key=lambda pc: (-pc[0].priority, pc[0].id))
    stack += [(p, code) for p, code in coupon_promos if p.covers(line.sku, categories, channel, currency)]
    for promo, code in stack:
        off = promo.discount(unit_price, line.quantity, remaining)
        if off > 0:
            remaining -= off
            adjustments.append(
                Adjustment(reason=promo.name, amount=-off, promotion_id=promo.id, coupon_code=code)
            )
    return PricedLine(
        sku=line.sku,
        quantity=line.quantity,
        unit_price=unit_price,
        subtotal=subtotal,
        adjustments=adjustments,
        total=remaining,
    )


def _best_automatic(
    line: QuoteLine,
    unit_price: int,
    subtotal: int,
    automatic: Sequence[Promotion],
    channel: str,
    currency: str,
    categories: tuple[str, ...],
) -> Promotion | None:
    scored = [
        (p.discount(unit_price, line.quantity, subtotal), p)
        for p in automatic
        if p.covers(line.sku, categories, channel, currency)
    ]
    scored = [(off, p) for off, p in scored if off > 0]
    if not scored:
        return None
    return min(scored, key=lambda sp: (-sp[0], -sp[1].priority, sp[1].id))[1]
