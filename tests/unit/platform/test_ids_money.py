import time

from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.platform.ids import _ALPHABET, _encode, new_id
from omnicommerce.platform.money import Money, percent_of


def test_ids_are_prefixed_unique_and_sort_by_time() -> None:
    first = new_id("ord")
    time.sleep(0.002)
    later = [new_id("ord") for _ in range(1000)]
    assert first.startswith("ord_") and len(first) == 30
    assert len(set(later)) == 1000
    assert all(first < x for x in later)


@given(st.sampled_from([10, 16]), st.data())
def test_id_digits_are_the_value_in_crockford_base32(length: int, data: st.DataObject) -> None:
    value = data.draw(st.integers(min_value=0, max_value=32**length - 1))
    digits = _encode(value, length)
    assert len(digits) == length
    assert sum(_ALPHABET.index(c) * 32**i for i, c in enumerate(reversed(digits))) == value


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10_000))
def test_percent_of_rounds_half_up_within_half_a_minor_unit(amount: int, bp: int) -> None:
    exact = amount * bp / 10_000
    assert abs(percent_of(amount, bp) - exact) <= 0.5
    assert 0 <= percent_of(amount, bp) <= amount


@given(st.integers(-(10**9), 10**9), st.integers(-(10**9), 10**9), st.integers(0, 1000))
def test_money_arithmetic_is_exact(a: int, b: int, q: int) -> None:
    assert (Money(a, "USD") + Money(b, "USD")).amount == a + b
    assert (Money(a, "USD") - Money(b, "USD")).amount == a - b
    assert Money(a, "USD").times(q).amount == a * q


def test_money_refuses_mixing_currencies() -> None:
    import pytest

    from omnicommerce.platform.money import CurrencyMismatch

    with pytest.raises(CurrencyMismatch):
        Money(1, "USD") + Money(1, "EUR")
