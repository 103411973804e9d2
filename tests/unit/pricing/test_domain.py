"""Pricing arithmetic: the stacking rule, coupons, and Hypothesis invariants of ``price_lines``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnicommerce.pricing.domain import (
    Coupon,
    CouponExhausted,
    InvalidCoupon,
    InvalidQuantity,
    NoPrice,
    Promotion,
    PromotionKind,
    Quote,
    QuoteLine,
    effective_prices,
    price_lines,
    validate_coupons,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
EARLIER = NOW - timedelta(days=1)
SKUS = ["A", "B", "C", "D"]
CATEGORIES = {"A": ("tees",), "B": ("tees", "sale"), "C": ("shoes",), "D": ()}


def pct(pid: str, bp: int, **kw: Any) -> Promotion:
    return Promotion(
        id=pid,
        name=f"{bp / 100}% off",
        kind=PromotionKind.PERCENTAGE,
        starts_at=EARLIER,
        basis_points=bp,
        **kw,
    )


def fixed(pid: str, off: int, **kw: Any) -> Promotion:
    return Promotion(
        id=pid,
        name=f"{off} off",
        kind=PromotionKind.FIXED,
        starts_at=EARLIER,
        amount_off=off,
        currency="USD",
        **kw,
    )


def bxgy(pid: str, x: int, y: int, **kw: Any) -> Promotion:
    return Promotion(
        id=pid,
        name=f"buy {x} get {y}",
        kind=PromotionKind.BUY_X_GET_Y,
        starts_at=EARLIER,
        buy_quantity=x,
        get_quantity=y,
        **kw,
    )


def run(
    lines: list[QuoteLine],
    promos: list[Promotion],
    prices: dict[str, int] | None = None,
    coupons: dict[str, str] | None = None,
    channel: str = "web",
) -> Quote:
    return price_lines(
        lines,
        prices or dict.fromkeys(SKUS, 1000),
        promos,
        coupons or {},
        channel,
        NOW,
        CATEGORIES,
        currency="USD",
    )


# --- examples ------------------------------------------------------------------------------------


def test_channel_override_wins_over_base_price() -> None:
    rows = [("A", None, 1000), ("A", "pos", 900), ("B", None, 500)]
    assert effective_prices(rows) == {"A": 900, "B": 500}


def test_only_the_best_automatic_promotion_applies() -> None:
    q = run([QuoteLine("A", 2)], [pct("pro_1", 1000), fixed("pro_2", 300)])
    line = q.lines[0]
    assert [a.promotion_id for a in line.adjustments] == ["pro_2"]
    assert (line.subtotal, line.total, q.discount_total) == (2000, 1400, -600)


def test_coupon_promotion_stacks_on_the_remainder_after_the_automatic_one() -> None:
    promos = [pct("pro_auto", 1000), pct("pro_cpn", 5000, requires_coupon=True)]
    q = run([QuoteLine("A", 1)], promos, coupons={"HALF": "pro_cpn"})
    assert [(a.promotion_id, a.amount, a.coupon_code) for a in q.lines[0].adjustments] == [
        ("pro_auto", -100, None),
        ("pro_cpn", -450, "HALF"),
    ]
    assert q.total == 450 and q.coupon_codes == ["HALF"]


def test_coupon_only_promotion_needs_its_code() -> None:
    assert run([QuoteLine("A", 1)], [pct("pro_1", 5000, requires_coupon=True)]).total == 1000


def test_scope_by_sku_or_category_and_channel() -> None:
    promos = [
        pct("pro_cat", 1000, category_ids=frozenset({"sale"})),
        pct("pro_sku", 2000, skus=frozenset({"C"})),
        pct("pro_pos", 5000, channels=frozenset({"pos"})),
    ]
    q = run([QuoteLine("A", 1), QuoteLine("B", 1), QuoteLine("C", 1)], promos)
    assert [ln.total for ln in q.lines] == [1000, 900, 800]
    assert run([QuoteLine("A", 1)], promos, channel="pos").total == 500


def test_scheduled_promotion_applies_only_in_its_window() -> None:
    later = replace(pct("pro_1", 1000), starts_at=NOW + timedelta(hours=1))
    ended = pct("pro_2", 1000, ends_at=NOW)
    assert run([QuoteLine("A", 1)], [later, ended]).total == 1000


def test_fixed_discount_only_in_its_currency_and_never_below_zero() -> None:
    assert run([QuoteLine("A", 3)], [fixed("pro_1", 5000)]).total == 0
    eur = Promotion(
        id="pro_2", name="eur", kind=PromotionKind.FIXED, starts_at=EARLIER, amount_off=100, currency="EUR"
    )
    assert run([QuoteLine("A", 1)], [eur]).total == 1000


def test_buy_two_get_one_free() -> None:
    q = run([QuoteLine("A", 7)], [bxgy("pro_1", 2, 1)])
    assert q.lines[0].adjustments[0].amount == -2000  # 7 // 3 = 2 free units


def test_missing_price_and_bad_quantity_are_refused() -> None:
    with pytest.raises(NoPrice):
        price_lines([QuoteLine("Z", 1)], {}, [], {}, "web", NOW, {}, currency="USD")
    with pytest.raises(InvalidQuantity):
        run([QuoteLine("A", 0)], [])


def test_coupons_are_checked_for_existence_expiry_and_uses() -> None:
    promo = pct("pro_1", 1000, requires_coupon=True)
    coupons = {
        "OK": Coupon("OK", "pro_1", None, 0),
        "OLD": Coupon("OLD", "pro_1", None, 0, expires_at=NOW),
        "DONE": Coupon("DONE", "pro_1", 2, 2),
        "GONE": Coupon("GONE", "pro_x", None, 0),
    }
    promos = {"pro_1": promo}
    assert validate_coupons([" ok "], coupons, promos, NOW) == {"OK": "pro_1"}
    for code, err in [
        ("nope", InvalidCoupon),
        ("old", InvalidCoupon),
        ("gone", InvalidCoupon),
        ("done", CouponExhausted),
    ]:
        with pytest.raises(err):
            validate_coupons([code], coupons, promos, NOW)


# --- properties ----------------------------------------------------------------------------------

lines_st = st.lists(st.builds(QuoteLine, st.sampled_from(SKUS), st.integers(1, 60)), min_size=1, max_size=8)
prices_st = st.fixed_dictionaries({s: st.integers(0, 100_000) for s in SKUS})
scope_st = st.fixed_dictionaries(
    {
        "skus": st.frozensets(st.sampled_from(SKUS), max_size=2),
        "category_ids": st.frozensets(st.sampled_from(["tees", "sale", "shoes"]), max_size=1),
        "channels": st.frozensets(st.sampled_from(["web", "pos"]), max_size=1),
        "priority": st.integers(-2, 2),
        "requires_coupon": st.booleans(),
    }
)
promo_st = st.one_of(
    st.builds(
        lambda i, bp, kw: pct(f"pro_p{i}", bp, **kw), st.integers(0, 99), st.integers(1, 10_000), scope_st
    ),
    st.builds(
        lambda i, off, kw: fixed(f"pro_f{i}", off, **kw), st.integers(0, 99), st.integers(1, 50_000), scope_st
    ),
    st.builds(
        lambda i, x, y, kw: bxgy(f"pro_b{i}", x, y, **kw),
        st.integers(0, 99),
        st.integers(1, 5),
        st.integers(1, 5),
        scope_st,
    ),
)
promos_st = st.lists(promo_st, max_size=6, unique_by=lambda p: p.id)


def _with_coupons(promos: list[Promotion]) -> dict[str, str]:
    return {f"C{i}": p.id for i, p in enumerate(promos) if p.requires_coupon}


@settings(max_examples=300)
@given(lines_st, prices_st, promos_st)
def test_totals_add_up_and_no_line_goes_negative(
    lines: list[QuoteLine], prices: dict[str, int], promos: list[Promotion]
) -> None:
    q = run(lines, promos, prices, _with_coupons(promos))
    assert q.total == q.subtotal + q.discount_total
    assert q.subtotal == sum(ln.subtotal for ln in q.lines)
    assert q.total == sum(ln.total for ln in q.lines)
    assert 0 <= -q.discount_total <= q.subtotal
    for ln in q.lines:
        assert ln.subtotal == ln.unit_price * ln.quantity
        assert ln.total == ln.subtotal + sum(a.amount for a in ln.adjustments)
        assert 0 <= ln.total <= ln.subtotal
        assert all(a.amount < 0 for a in ln.adjustments)
        assert sum(1 for a in ln.adjustments if a.coupon_code is None) <= 1


@given(lines_st, prices_st, promos_st, st.randoms(use_true_random=False))
def test_line_order_does_not_change_the_quote(
    lines: list[QuoteLine], prices: dict[str, int], promos: list[Promotion], rnd: object
) -> None:
    shuffled = list(lines)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a, b = (
        run(lines, promos, prices, _with_coupons(promos)),
        run(shuffled, promos, prices, _with_coupons(promos)),
    )
    assert (a.subtotal, a.discount_total, a.total) == (b.subtotal, b.discount_total, b.total)
    key = lambda ln: (ln.sku, ln.quantity, ln.total)  # noqa: E731
    assert sorted(a.lines, key=key) == sorted(b.lines, key=key)


@given(st.integers(1, 10_000), st.integers(0, 1_000_000), st.integers(1, 1000))
def test_percentage_rounds_within_one_minor_unit(bp: int, unit: int, qty: int) -> None:
    q = run([QuoteLine("A", qty)], [pct("pro_1", bp)], {"A": unit})
    exact_times_10k = unit * qty * bp
    assert abs(-q.discount_total * 10_000 - exact_times_10k) <= 10_000


@given(st.integers(1, 200), st.integers(1, 10), st.integers(1, 10), st.integers(1, 100_000), promos_st)
def test_buy_x_get_y_never_gives_more_than_its_free_units(
    qty: int, x: int, y: int, unit: int, others: list[Promotion]
) -> None:
    promos = [bxgy("pro_b", x, y), *others]
    q = run([QuoteLine("A", qty)], promos, {"A": unit}, _with_coupons(promos))
    free = sum(-a.amount for a in q.lines[0].adjustments if a.promotion_id == "pro_b")
    assert free <= qty // (x + y) * y * unit
