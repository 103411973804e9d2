"""Cart rules without a database: line arithmetic, hand-off codes, where units are held."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.carts.domain import (
    HANDOFF_ALPHABET,
    HANDOFF_CODE_LENGTH,
    Cart,
    apply_quantity,
    hash_code,
    merged_lines,
    new_handoff_code,
    normalize_code,
)
from omnicommerce.platform.errors import InvalidInput

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _cart(**kw: object) -> Cart:
    base: dict[str, object] = dict(
        id="crt_1",
        channel="web",
        customer_id=None,
        email=None,
        currency="USD",
        status="open",
        location_id=None,
        fulfillment=None,
        coupon_codes=(),
        version=1,
        created_at=NOW,
        updated_at=NOW,
        expires_at=None,
    )
    return Cart(**{**base, **kw})  # type: ignore[arg-type]


def test_set_add_and_remove() -> None:
    assert apply_quantity({}, "A", 2, add=False) == {"A": 2}
    assert apply_quantity({"A": 2}, "A", 3, add=True) == {"A": 5}
    assert apply_quantity({"A": 2, "B": 1}, "A", 0, add=False) == {"B": 1}
    with pytest.raises(InvalidInput):
        apply_quantity({"A": 1}, "A", -2, add=True)


@given(
    st.dictionaries(st.sampled_from("ABCD"), st.integers(1, 50)),
    st.dictionaries(st.sampled_from("ABCD"), st.integers(1, 50)),
)
def test_merge_adds_every_unit_once(a: dict[str, int], b: dict[str, int]) -> None:
    merged = merged_lines(a, b)
    assert sum(merged.values()) == sum(a.values()) + sum(b.values())
    assert set(merged) == set(a) | set(b)


def test_handoff_codes_are_short_unambiguous_and_forgiving() -> None:
    code = new_handoff_code()
    assert len(code) == HANDOFF_CODE_LENGTH and set(code) <= set(HANDOFF_ALPHABET)
    assert not set("01IOL") & set(HANDOFF_ALPHABET)
    assert normalize_code(f"omni:cart:{code}") == code
    assert normalize_code(" " + code[:4].lower() + "-" + code[4:] + " ") == code
    assert hash_code(code) != code and len(hash_code(code)) == 64


def test_where_units_are_held() -> None:
    assert (_cart().stock_location, _cart().capability, _cart().effective_fulfillment) == (None, "ship", None)
    pos = _cart(location_id="store-1")
    assert (pos.stock_location, pos.capability) == ("store-1", "pickup")
    pickup = _cart(fulfillment={"type": "pickup", "location_id": "store-2"}, location_id="store-1")
    assert (pickup.stock_location, pickup.capability) == ("store-2", "pickup")
    ship = _cart(fulfillment={"type": "ship", "address": {}})
    assert (ship.stock_location, ship.capability) == (None, "ship")
