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
    Line,
    apply_quantity,
    display_name,
    hash_code,
    holds_move,
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


def _qty(lines: tuple[Line, ...]) -> dict[str, int]:
    return {ln.sku: ln.quantity for ln in lines}


def _lines(quantities: dict[str, int]) -> tuple[Line, ...]:
    return tuple(Line(sku, q, f"Name {sku}") for sku, q in sorted(quantities.items()))


def test_set_add_and_remove() -> None:
    assert _qty(apply_quantity((), "A", 2, add=False)) == {"A": 2}
    assert _qty(apply_quantity(_lines({"A": 2}), "A", 3, add=True)) == {"A": 5}
    assert _qty(apply_quantity(_lines({"A": 2, "B": 1}), "A", 0, add=False)) == {"B": 1}
    with pytest.raises(InvalidInput):
        apply_quantity(_lines({"A": 1}), "A", -2, add=True)


def test_a_line_keeps_what_the_catalog_said_until_it_is_set_again() -> None:
    snapshot = Line("B", 0, "Tee — M", ("cat_1",))
    lines = apply_quantity(_lines({"C": 1}), "B", 2, add=True, snapshot=snapshot)
    assert lines == (Line("B", 2, "Tee — M", ("cat_1",)), Line("C", 1, "Name C"))  # ordered by SKU
    again = apply_quantity(lines, "B", 1, add=True)  # no new snapshot: the captured one stays
    assert again[0] == Line("B", 3, "Tee — M", ("cat_1",))
    renamed = apply_quantity(again, "B", 1, add=False, snapshot=Line("B", 0, "Tee — Medium", ("cat_2",)))
    assert renamed[0] == Line("B", 1, "Tee — Medium", ("cat_2",))


def test_display_name() -> None:
    assert display_name("Tee", "M") == "Tee — M"
    assert display_name("Mug", "Mug") == "Mug"
    assert display_name("Mug", "") == "Mug"


@given(
    st.dictionaries(st.sampled_from("ABCD"), st.integers(1, 50)),
    st.dictionaries(st.sampled_from("ABCD"), st.integers(1, 50)),
)
def test_merge_adds_every_unit_once(a: dict[str, int], b: dict[str, int]) -> None:
    merged = _qty(merged_lines(_lines(a), _lines(b)))
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


def test_holds_move_only_when_the_store_or_capability_changes() -> None:
    lines = _lines({"A": 1})
    ship = _cart(lines=lines, fulfillment={"type": "ship", "address": {}})
    assert not holds_move(_cart(lines=lines), ship)  # no choice yet → ship: still from anywhere
    assert not holds_move(ship, _cart(lines=lines, fulfillment={"type": "ship", "address": {"x": 1}}))
    pickup = _cart(lines=lines, fulfillment={"type": "pickup", "location_id": "store-2"})
    assert holds_move(ship, pickup) and holds_move(pickup, ship)
    pos = _cart(lines=lines, location_id="store-2")
    assert not holds_move(pos, _cart(lines=lines, location_id="store-2", fulfillment=pickup.fulfillment))
    assert not holds_move(_cart(), _cart(fulfillment=pickup.fulfillment))  # nothing held, nothing moves
