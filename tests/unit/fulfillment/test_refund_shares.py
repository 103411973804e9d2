"""Money back for units that never reach the customer: exact to the minor unit, never more than
was captured, however the cancellations (and returns) of an order are split."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.fulfillment.domain import refund_for, unfilled_refunds, unit_share


@st.composite
def lines(draw: st.DrawFn) -> dict[str, tuple[int, int]]:
    """sku → (line total after discounts and adjustments, quantity), like an order's lines."""
    out = {}
    for i in range(draw(st.integers(1, 5))):
        quantity = draw(st.integers(1, 12))
        subtotal = draw(st.integers(1, 500_000)) * quantity
        discount = draw(st.integers(0, subtotal))  # promotions never take a line below zero
        out[f"SKU-{i}"] = (subtotal - discount, quantity)
    return out


@st.composite
def order_with_cancellations(
    draw: st.DrawFn,
) -> tuple[dict[str, tuple[int, int]], list[dict[str, int]], dict[str, int]]:
    """Lines, then a random sequence of partial cancellations (each a few skus, a few units), and
    units returned on top of them — never more units in all than a line has."""
    paid = draw(lines())
    left = {sku: q for sku, (_, q) in paid.items()}
    cancellations = []
    for _ in range(draw(st.integers(1, 6))):
        open_skus = sorted(s for s, n in left.items() if n > 0)
        if not open_skus:
            break
        skus = draw(st.lists(st.sampled_from(open_skus), min_size=1, max_size=3, unique=True))
        step = {s: draw(st.integers(1, left[s])) for s in skus}
        for s, n in step.items():
            left[s] -= n
        cancellations.append(step)
    returned = {s: draw(st.integers(0, n)) for s, n in left.items()}
    return paid, cancellations, returned


def _run(
    paid: dict[str, tuple[int, int]], cancellations: list[dict[str, int]]
) -> tuple[list[int], dict[str, int], dict[str, int]]:
    """Each cancellation's refund as the service computes it, then per sku the units cancelled
    and the money they brought back."""
    before: dict[str, int] = {}
    back: dict[str, int] = {}
    refunds = []
    for step in cancellations:
        shares = unfilled_refunds(paid, before, step)
        refunds.append(sum(shares.values()))
        for sku, n in step.items():
            before[sku] = before.get(sku, 0) + n
            back[sku] = back.get(sku, 0) + shares[sku]
    return refunds, before, back


@given(order_with_cancellations())
def test_cancelled_units_get_exactly_their_share_back(
    case: tuple[dict[str, tuple[int, int]], list[dict[str, int]], dict[str, int]],
) -> None:
    paid, cancellations, _ = case
    refunds, cancelled, back = _run(paid, cancellations)
    captured = sum(total for total, _ in paid.values())

    assert all(r >= 0 for r in refunds)
    assert sum(refunds) <= captured
    for sku, n in cancelled.items():
        total, quantity = paid[sku]
        # However its cancellations were split, a line gives back the unfilled units' share...
        assert back[sku] == unit_share(total, quantity, n)
        # ...and, cancelled in full, its total exactly, to the minor unit.
        if n == quantity:
            assert back[sku] == total


@given(order_with_cancellations())
def test_refunds_with_returns_never_exceed_the_capture(
    case: tuple[dict[str, tuple[int, int]], list[dict[str, int]], dict[str, int]],
) -> None:
    paid, cancellations, returned = case
    captured = sum(total for total, _ in paid.values())
    refunds, _, _ = _run(paid, cancellations)
    # The shares alone stay within what was paid (the orders ledger caps them besides:
    # tests/integration/orders/test_refund_ledger.py).
    assert sum(refunds) + refund_for(returned, paid) <= captured
