"""Pricing use cases on real SQLite and PostgreSQL: quotes, the price book, coupons under concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from omnicommerce.catalog import service as catalog
from omnicommerce.catalog.schemas import CategoryCreate, ProductCreate, VariantCreate
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database
from omnicommerce.platform.money import CurrencyMismatch
from omnicommerce.pricing import service
from omnicommerce.pricing.domain import (
    CouponExhausted,
    InvalidCoupon,
    InvalidQuantity,
    NoPrice,
    PromotionKind,
    QuoteLine,
    UnknownSku,
)
from omnicommerce.pricing.schemas import CouponCreate, PriceEntry, PromotionCreate
from tests.statements import count_statements

SKUS = [f"SKU-{i}" for i in range(10)]


@pytest.fixture
def priced(db: Database) -> Database:
    """Ten SKUs at 10.00 USD (SKU-0 at 8.00 on pos), SKU-9 unpriced in EUR; SKU-0..4 are tees."""
    with db.uow() as uow:
        catalog.import_catalog(
            uow,
            [CategoryCreate(id="tees", name="Tees")],
            [
                ProductCreate(
                    name=f"Product {s}",
                    category_ids=["tees"] if i < 5 else [],
                    variants=[VariantCreate(sku=s, name=s)],
                )
                for i, s in enumerate(SKUS)
            ],
        )
        service.set_prices(
            uow,
            [PriceEntry(sku=s, currency="USD", amount=1000) for s in SKUS]
            + [PriceEntry(sku="SKU-0", currency="USD", amount=800, channel="pos")],
        )
        uow.commit()
    return db


def promo(uow: Any, **kw: Any) -> str:
    return service.create_promotion(uow, SYSTEM, PromotionCreate(**{"name": "promo", **kw})).id


def quote(db: Database, *lines: tuple[str, int], channel: str = "web", codes: tuple[str, ...] = ()) -> Any:
    with db.uow() as uow:
        return service.quote(
            uow,
            channel=channel,
            currency="USD",
            lines=[QuoteLine(s, q) for s, q in lines],
            coupon_codes=codes,
        )


def test_channel_override_wins_and_totals_are_exact(priced: Database) -> None:
    assert quote(priced, ("SKU-0", 2), ("SKU-5", 1)).total == 3000
    q = quote(priced, ("SKU-0", 2), ("SKU-5", 1), channel="pos")
    assert [ln.unit_price for ln in q.lines] == [800, 1000]
    assert (q.subtotal, q.discount_total, q.total) == (2600, 0, 2600)


def test_category_promotion_and_coupon_stack(priced: Database) -> None:
    with priced.uow() as uow:
        promo(uow, kind=PromotionKind.PERCENTAGE, basis_points=1000, category_ids=["tees"])
        cpn = promo(uow, kind=PromotionKind.FIXED, amount_off=100, currency="USD", requires_coupon=True)
        service.create_coupon(uow, SYSTEM, CouponCreate(code="Take1", promotion_id=cpn))
        uow.commit()
    q = quote(priced, ("SKU-1", 1), ("SKU-6", 2), codes=("take1",))
    assert [ln.total for ln in q.lines] == [800, 1800]
    assert q.coupon_codes == ["TAKE1"] and q.total == 2600


def test_promotion_outside_its_schedule_does_not_apply(priced: Database) -> None:
    with priced.uow() as uow:
        promo(
            uow,
            kind=PromotionKind.BUY_X_GET_Y,
            buy_quantity=1,
            get_quantity=1,
            starts_at=clock.now() + timedelta(days=1),
        )
        uow.commit()
    assert quote(priced, ("SKU-1", 2)).total == 2000


def test_quote_refuses_bad_input(priced: Database) -> None:
    with pytest.raises(UnknownSku):
        quote(priced, ("NOPE", 1))
    with pytest.raises(InvalidQuantity):
        quote(priced, ("SKU-1", -1))
    with pytest.raises(InvalidCoupon):
        quote(priced, ("SKU-1", 1), codes=("NOPE",))
    with priced.uow() as uow, pytest.raises(CurrencyMismatch):
        service.quote(uow, channel="web", currency="EUR", lines=[QuoteLine("SKU-1", 1)])
    with priced.uow() as uow:
        catalog.import_catalog(
            uow, [], [ProductCreate(name="New", variants=[VariantCreate(sku="NEW", name="n")])]
        )
        with pytest.raises(NoPrice):
            service.quote(uow, channel="web", currency="USD", lines=[QuoteLine("NEW", 1)])


def test_quote_costs_the_same_statements_for_one_and_ten_lines(priced: Database) -> None:
    with priced.uow() as uow:
        cpn = promo(uow, kind=PromotionKind.PERCENTAGE, basis_points=500, requires_coupon=True)
        service.create_coupon(uow, SYSTEM, CouponCreate(code="FIVE", promotion_id=cpn))
        uow.commit()
    quote(priced, ("SKU-0", 1))  # warms the channel and promotion caches
    counts = []
    for lines in ([("SKU-0", 1)], [(s, 2) for s in SKUS]):
        for codes in ((), ("FIVE",)):
            with count_statements(priced) as stmts:
                quote(priced, *lines, codes=codes)
            counts.append(len(stmts))
    # the catalog's variants, the prices (with the promotions mark), the coupons when given
    assert counts == [2, 3, 2, 3]


def quote_with_categories(db: Database, *lines: tuple[str, int], codes: tuple[str, ...] = ()) -> Any:
    with db.uow() as uow:
        return service.quote(
            uow,
            channel="web",
            currency="USD",
            lines=[QuoteLine(s, q) for s, q in lines],
            coupon_codes=codes,
            categories={s: ["tees"] if int(s.split("-")[1]) < 5 else [] for s, _ in lines},
        )


def test_quote_with_categories_reads_only_the_prices(priced: Database) -> None:
    with priced.uow() as uow:
        promo(uow, kind=PromotionKind.PERCENTAGE, basis_points=1000, category_ids=["tees"])
        cpn = promo(uow, kind=PromotionKind.PERCENTAGE, basis_points=500, requires_coupon=True)
        service.create_coupon(uow, SYSTEM, CouponCreate(code="FIVE", promotion_id=cpn))
        uow.commit()
    with count_statements(priced) as cold:
        assert quote_with_categories(priced, ("SKU-1", 1), ("SKU-6", 1)).total == 900 + 1000
    assert len(cold) <= 3  # the channel and the promotions may have to be loaded
    counts = []
    for lines in ([("SKU-0", 1)], [(s, 2) for s in SKUS]):
        for codes in ((), ("FIVE",)):
            with count_statements(priced) as stmts:
                q = quote_with_categories(priced, *lines, codes=codes)
            counts.append(len(stmts))
            assert q == quote(priced, *lines, codes=codes)  # the same answer as with the catalog
    assert counts == [1, 2, 1, 2]


def test_quote_with_categories_still_refuses_unknown_and_unpriced_skus(priced: Database) -> None:
    with priced.uow() as uow, pytest.raises(UnknownSku):
        service.quote(
            uow, channel="web", currency="USD", lines=[QuoteLine("SKU-1", 1)], categories={"SKU-2": []}
        )
    with priced.uow() as uow, pytest.raises(NoPrice):
        service.quote(
            uow, channel="web", currency="USD", lines=[QuoteLine("NOPE", 1)], categories={"NOPE": []}
        )


def test_cached_promotions_see_new_ones_and_keep_schedules_exact(priced: Database) -> None:
    start = clock.now()
    clock.set_clock(lambda: start)
    assert quote(priced, ("SKU-1", 1)).total == 1000  # caches "no promotions"
    with priced.uow() as uow:  # created in this process: the cache is cleared
        promo(
            uow, kind=PromotionKind.FIXED, amount_off=100, currency="USD", ends_at=start + timedelta(hours=1)
        )
        promo(
            uow,
            kind=PromotionKind.FIXED,
            amount_off=300,
            currency="USD",
            starts_at=start + timedelta(hours=2),
        )
        uow.commit()
    assert quote(priced, ("SKU-1", 1)).total == 900
    clock.set_clock(lambda: start + timedelta(hours=1, minutes=30))  # the first is over, the second not begun
    assert quote(priced, ("SKU-1", 1)).total == 1000
    clock.set_clock(lambda: start + timedelta(hours=2))
    assert quote(priced, ("SKU-1", 1)).total == 700
    with priced.uow() as uow:  # a quote at an earlier time than the cache was loaded for
        past = service.quote(
            uow, channel="web", currency="USD", lines=[QuoteLine("SKU-1", 1)], at=start + timedelta(minutes=1)
        )
    assert past.total == 900


def test_cached_promotions_see_rows_written_behind_their_back(priced: Database) -> None:
    """Another process (here: plain SQL) adds or removes a promotion: the mark read with the
    prices changes, so the next quote reloads at once rather than after the TTL."""
    from sqlalchemy import delete, insert

    from omnicommerce.pricing.models import promotions

    assert quote(priced, ("SKU-1", 1)).total == 1000
    now = clock.now()
    row = {
        "id": "pro_behind",
        "name": "behind",
        "kind": "fixed",
        "amount_off": 50,
        "currency": "USD",
        "starts_at": now - timedelta(minutes=1),
        "channels": "",
        "skus": "",
        "category_ids": "",
        "created_at": now,
    }
    with priced.engine.begin() as conn:
        conn.execute(insert(promotions).values(row))
    assert quote(priced, ("SKU-1", 1)).total == 950
    with priced.engine.begin() as conn:
        conn.execute(delete(promotions))
    assert quote(priced, ("SKU-1", 1)).total == 1000


def test_set_prices_upserts_and_announces(priced: Database) -> None:
    with priced.uow() as uow:
        assert (
            service.set_prices(
                uow,
                [
                    PriceEntry(sku="SKU-1", currency="USD", amount=1200),
                    PriceEntry(sku="SKU-1", currency="USD", amount=1300),
                    PriceEntry(sku="SKU-1", currency="EUR", amount=1100),
                ],
            )
            == 2
        )
        assert sorted(e.type for e in uow.pending_events) == ["price.changed", "price.changed"]
        uow.commit()
    with priced.uow() as uow:
        prices = service.get_prices(uow, "SKU-1").prices
    assert [(p.currency, p.amount, p.channel) for p in prices] == [("EUR", 1100, None), ("USD", 1300, None)]
    with priced.uow() as uow, pytest.raises(UnknownSku):
        service.set_prices(uow, [PriceEntry(sku="NOPE", currency="USD", amount=1)])


@pytest.mark.parametrize("max_uses", [1, 3])
def test_concurrent_redemptions_succeed_exactly_max_uses_times(priced: Database, max_uses: int) -> None:
    with priced.uow() as uow:
        cpn = promo(uow, kind=PromotionKind.PERCENTAGE, basis_points=1000, requires_coupon=True)
        service.create_coupon(uow, SYSTEM, CouponCreate(code="RACE", promotion_id=cpn, max_uses=max_uses))
        uow.commit()
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def redeem(n: int) -> None:
        start.wait()
        with priced.uow() as uow:
            try:
                service.redeem_coupons(uow, codes=["race"], order_id=f"ord_{n}")
                uow.commit()
                outcomes.append("ok")
            except CouponExhausted:
                outcomes.append("exhausted")

    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["exhausted"] * (8 - max_uses) + ["ok"] * max_uses
    with pytest.raises(CouponExhausted):
        quote(priced, ("SKU-1", 1), codes=("RACE",))


def test_the_channel_is_cached_and_a_change_in_this_process_is_seen_at_once(priced: Database) -> None:
    from omnicommerce.platform.channels import Channel, get_channel, upsert_channel

    quote(priced, ("SKU-1", 1))
    with priced.uow() as uow:
        uow.conn  # noqa: B018
        with count_statements(priced) as stmts:
            assert get_channel(uow.conn, "web").currency == "USD"
        assert stmts == []
    with priced.uow() as uow:  # a change rolled back: the cache must not keep it
        upsert_channel(uow.conn, Channel("web", "Web shop", "online", "EUR"))
        assert get_channel(uow.conn, "web").currency == "EUR"  # its own write, read around the cache
    assert quote(priced, ("SKU-1", 1)).currency == "USD"
    with priced.uow() as uow:
        upsert_channel(uow.conn, Channel("web", "Web shop", "online", "EUR"))
        uow.commit()
    with priced.uow() as uow, pytest.raises(CurrencyMismatch):
        service.quote(uow, channel="web", currency="USD", lines=[QuoteLine("SKU-1", 1)])
