"""Pricing use cases. They never commit; other contexts call only these functions.

``quote`` costs one statement whatever the number of lines — the prices with this channel's
overrides and a mark of the promotions table — plus one when coupon codes are given. The
channel comes from the channel cache (``platform.channels``), the categories from the caller
or one catalog read, and the promotions from an in-process cache:

Promotion cache (trade-off). Every active, not-yet-over promotion is kept per database for
``PROMOTION_CACHE_SECONDS`` (5 s; a module constant, as ``OMNI_PRICING_CACHE_SECONDS`` would
need ``platform.config``) and filtered by ``starts_at``/``ends_at`` at the quote's own time, so
scheduling stays exact. The list is reloaded when the promotions mark read with the prices
(row count, greatest id) differs — a promotion created or deleted, by any process, is seen at
once — when this process creates a promotion, and when the TTL runs out. What the mark cannot
see is an in-place UPDATE of a promotion row by another process (no code path does one today):
that is seen within the TTL. A quote at a time before the one the list was loaded for reloads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from omnicommerce.catalog import service as catalog
from omnicommerce.catalog.domain import UnknownSku as CatalogUnknownSku
from omnicommerce.catalog.domain import pack_ids, unpack_ids
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.channels import get_channel, list_channels
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.money import CurrencyMismatch, check_currency
from omnicommerce.platform.web import Page, decode_cursor, page_of
from omnicommerce.pricing import domain
from omnicommerce.pricing import repository as repo
from omnicommerce.pricing.domain import (
    CouponExhausted,
    InvalidCoupon,
    Quote,
    QuoteLine,
    UnknownPriceChannel,
    UnknownPromotion,
    UnknownSku,
    check_quantities,
    normalize_codes,
)
from omnicommerce.pricing.events import PriceChanged, PromotionCreated
from omnicommerce.pricing.schemas import (
    Coupon,
    CouponCreate,
    PriceEntry,
    Promotion,
    PromotionCreate,
    SkuPrices,
)

PROMOTION_CACHE_SECONDS = 5.0

# --- quotes ----------------------------------------------------------------------------------


def quote(
    uow: UnitOfWork,
    *,
    channel: str,
    currency: str,
    lines: Sequence[QuoteLine],
    customer_id: str | None = None,
    coupon_codes: Sequence[str] = (),
    at: datetime | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> Quote:
    """Price ``lines`` on ``channel`` at ``at`` (default now) under the rule in ``pricing.domain``.

    ``categories`` (sku → category ids, as the caller captured them from the catalog) spares the
    catalog read; it must name every sku of ``lines`` (one it does not name is ``UnknownSku``), and
    a sku without a price is ``NoPrice``. Without it the catalog is read and decides ``UnknownSku``.
    ``customer_id`` is accepted for customer-specific rules; today's rules are the same for everyone.
    """
    at = at or clock.now()
    check_quantities(lines)
    channel_currency = get_channel(uow.conn, channel).currency
    if currency != channel_currency:
        raise CurrencyMismatch(
            f"channel {channel!r} sells in {channel_currency}, not {currency}",
            channel_currency=channel_currency,
        )
    skus = {ln.sku for ln in lines}
    if categories is None:
        variants = catalog.get_variants(uow, skus)
        _require_known(skus, variants.keys())
        categories = {sku: v.category_ids for sku, v in variants.items()}
    else:
        _require_known(skus, categories.keys())
    rows, mark = repo.prices_and_promotions_mark(uow.conn, skus, currency, channel)
    prices = domain.effective_prices(rows)
    promotions = _running_promotions(uow, at, mark)
    unlocked = _unlock(uow, coupon_codes, promotions, at)
    return domain.price_lines(lines, prices, promotions, unlocked, channel, at, categories, currency=currency)


@dataclass(frozen=True, slots=True)
class _CachedPromotions:
    mark: tuple[int, str | None]  # of the promotions table when loaded
    since: datetime  # every active promotion not over at ``since`` is in ``items``
    until: float  # time.monotonic() deadline
    items: tuple[domain.Promotion, ...]


_promotions: dict[str, _CachedPromotions] = {}  # per database URL
_promotions_generation = 0
_promotions_lock = threading.Lock()


def clear_promotion_cache() -> None:
    """Forget the cached promotions (this process); called whenever a promotion is written."""
    global _promotions_generation
    with _promotions_lock:
        _promotions_generation += 1
        _promotions.clear()


def _running_promotions(
    uow: UnitOfWork, at: datetime, mark: tuple[int, str | None]
) -> list[domain.Promotion]:
    """The promotions running at ``at``, from the cache when it is still good (module docstring)."""
    key = str(uow.conn.engine.url)
    hit = _promotions.get(key)
    if hit is not None and hit.mark == mark and hit.until > time.monotonic() and at >= hit.since:
        return [p for p in hit.items if p.running_at(at)]
    generation = _promotions_generation
    items = tuple(_promotion(r) for r in repo.live_promotions(uow.conn, at))
    with _promotions_lock:
        if generation == _promotions_generation:
            _promotions[key] = _CachedPromotions(mark, at, time.monotonic() + PROMOTION_CACHE_SECONDS, items)
    return [p for p in items if p.running_at(at)]


def _require_known(wanted: Collection[str], known: Collection[str]) -> None:
    missing = sorted(set(wanted) - set(known))
    if missing:
        raise UnknownSku(f"unknown SKU(s): {', '.join(missing)}", skus=missing)


def _unlock(
    uow: UnitOfWork, codes: Sequence[str], promotions: Sequence[domain.Promotion], at: datetime
) -> dict[str, str]:
    normalized = normalize_codes(codes)
    if not normalized:
        return {}
    coupons = {r.code: _coupon(r) for r in repo.coupons_by_code(uow.conn, normalized)}
    return domain.validate_coupons(normalized, coupons, {p.id: p for p in promotions}, at)


def redeem_coupons(uow: UnitOfWork, *, codes: Sequence[str], order_id: str) -> None:
    """Use each code once for ``order_id``.

    One conditional UPDATE per code; CouponExhausted when it has no uses left."""
    normalized = normalize_codes(codes)
    for code in normalized:
        if not repo.try_use_coupon(uow.conn, code):
            if not repo.coupons_by_code(uow.conn, [code]):
                raise InvalidCoupon(f"coupon {code!r} does not exist", coupon_code=code)
            raise CouponExhausted(f"coupon {code!r} has been used up", coupon_code=code)
    if normalized:
        repo.record_redemptions(uow.conn, normalized, order_id, clock.now())


# --- the price book --------------------------------------------------------------------------


def set_prices(uow: UnitOfWork, entries: Sequence[PriceEntry]) -> int:
    """Bulk upsert of base prices and channel overrides (a later entry for the same key wins)."""
    latest = {(e.sku, e.currency, e.channel): e for e in entries}
    if not latest:
        return 0
    for currency in {e.currency for e in latest.values()}:
        check_currency(currency)
    skus = {e.sku for e in latest.values()}
    _require_known(skus, catalog.get_variants(uow, skus).keys())
    _require_channels(uow, {e.channel for e in latest.values() if e.channel})
    now = clock.now()
    rows = [{**e.model_dump(), "updated_at": now} for e in latest.values()]
    repo.upsert_prices(
        uow.conn,
        [_without_channel(r) for r in rows if r["channel"] is None],
        [r for r in rows if r["channel"] is not None],
    )
    for e in latest.values():
        uow.emit(PriceChanged(sku=e.sku, currency=e.currency, channel=e.channel, amount=e.amount))
    return len(latest)


def _without_channel(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "channel"}


def _require_channels(uow: UnitOfWork, ids: Collection[str]) -> None:
    if not ids:
        return
    missing = sorted(set(ids) - {c.id for c in list_channels(uow.conn)})
    if missing:
        raise UnknownPriceChannel(f"no such channel: {', '.join(missing)}", channels=missing)


def get_prices(uow: UnitOfWork, sku: str) -> SkuPrices:
    if sku not in catalog.get_variants(uow, [sku]):
        raise CatalogUnknownSku(f"no variant with SKU {sku!r}", sku=sku)
    rows = repo.all_prices_of(uow.conn, sku)
    return SkuPrices(
        sku=sku,
        prices=[PriceEntry(sku=r.sku, currency=r.currency, amount=r.amount, channel=r.channel) for r in rows],
    )


# --- promotions and coupons ------------------------------------------------------------------


def create_promotion(uow: UnitOfWork, actor: Principal, cmd: PromotionCreate) -> Promotion:
    now = clock.now()
    row = {
        **cmd.model_dump(exclude={"channels", "skus", "category_ids"}),
        "id": new_id("pro"),
        "kind": cmd.kind.value,
        "basis_points": cmd.basis_points or 0,
        "amount_off": cmd.amount_off or 0,
        "buy_quantity": cmd.buy_quantity or 0,
        "get_quantity": cmd.get_quantity or 0,
        "starts_at": cmd.starts_at or now,
        "channels": pack_ids(cmd.channels),
        "skus": pack_ids(cmd.skus),
        "category_ids": pack_ids(cmd.category_ids),
        "created_at": now,
    }
    repo.insert_promotion(uow.conn, row)
    clear_promotion_cache()
    uow.emit(
        PromotionCreated(
            promotion_id=row["id"],
            name=cmd.name,
            kind=cmd.kind.value,
            requires_coupon=cmd.requires_coupon,
            starts_at=row["starts_at"],
            ends_at=cmd.ends_at,
        )
    )
    return _promotion_out(row)


def list_promotions(
    uow: UnitOfWork,
    actor: Principal,
    *,
    running_at: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Promotion]:
    rows = repo.list_promotions(uow.conn, running_at=running_at, after=decode_cursor(cursor), limit=limit + 1)
    return page_of([_promotion_out(r._asdict()) for r in rows], limit, lambda p: p.id)


def create_coupon(uow: UnitOfWork, actor: Principal, cmd: CouponCreate) -> Coupon:
    if not repo.promotion_exists(uow.conn, cmd.promotion_id):
        raise UnknownPromotion(f"no promotion {cmd.promotion_id!r}", promotion_id=cmd.promotion_id)
    coupon = Coupon(
        code=cmd.code.upper(),
        promotion_id=cmd.promotion_id,
        max_uses=cmd.max_uses,
        uses=0,
        expires_at=cmd.expires_at,
    )
    repo.insert_coupon(uow.conn, {**coupon.model_dump(), "created_at": clock.now()})
    return coupon


# --- row mapping -----------------------------------------------------------------------------


def _promotion_out(row: dict[str, Any]) -> Promotion:
    packed = {k: list(unpack_ids(row[k])) for k in ("channels", "skus", "category_ids")}
    return Promotion.model_validate({**row, **packed})


def _promotion(row: Any) -> domain.Promotion:
    return domain.Promotion(
        id=row.id,
        name=row.name,
        kind=domain.PromotionKind(row.kind),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        basis_points=row.basis_points,
        amount_off=row.amount_off,
        currency=row.currency,
        buy_quantity=row.buy_quantity,
        get_quantity=row.get_quantity,
        channels=frozenset(unpack_ids(row.channels)),
        skus=frozenset(unpack_ids(row.skus)),
        category_ids=frozenset(unpack_ids(row.category_ids)),
        requires_coupon=row.requires_coupon,
        priority=row.priority,
        active=row.active,
    )


def _coupon(row: Any) -> domain.Coupon:
    return domain.Coupon(
        code=row.code,
        promotion_id=row.promotion_id,
        max_uses=row.max_uses,
        uses=row.uses,
        expires_at=row.expires_at,
    )
