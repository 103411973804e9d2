"""Catalog rules: listings, packed id columns, new-variant checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.catalog.domain import (
    DuplicateBarcode,
    DuplicateSku,
    VariantInfo,
    check_new_variants,
    pack_ids,
    unpack_ids,
)


def _info(hidden: frozenset[str]) -> VariantInfo:
    return VariantInfo(
        sku="A-1",
        product_id="prd_1",
        product_name="Tee",
        name="Tee M",
        barcode=None,
        category_ids=("tees",),
        hidden_channels=hidden,
        weight_grams=200,
        active=True,
    )


def test_variant_is_listed_everywhere_but_its_hidden_channels() -> None:
    info = _info(frozenset({"pos"}))
    assert info.listed_on("web")
    assert not info.listed_on("pos")


ids = st.lists(st.from_regex(r"[a-z0-9_\-]{1,12}", fullmatch=True), max_size=6)


@given(ids)
def test_packed_ids_round_trip_sorted_and_unique(values: list[str]) -> None:
    assert unpack_ids(pack_ids(values)) == tuple(sorted(set(values)))


@given(ids)
def test_each_packed_id_is_space_delimited_for_exact_like_matches(values: list[str]) -> None:
    packed = pack_ids(values)
    for v in values:
        assert f" {v} " in packed


def test_empty_ids_pack_to_empty_text() -> None:
    assert pack_ids([]) == ""
    assert unpack_ids("") == ()


def test_repeated_sku_in_one_batch_is_refused() -> None:
    with pytest.raises(DuplicateSku) as err:
        check_new_variants(["A", "B", "A"], [None, None, None])
    assert err.value.extensions["skus"] == ["A"]


def test_repeated_barcode_in_one_batch_is_refused_but_missing_ones_are_fine() -> None:
    check_new_variants(["A", "B"], [None, None])
    with pytest.raises(DuplicateBarcode):
        check_new_variants(["A", "B"], ["123", "123"])
