"""Invariants over arbitrary input (Hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from omnicommerce.customers.matching import Matcher, PersonRecord
from omnicommerce.customers.matching.normalize import (
    clean_text,
    normalize_date,
    normalize_email,
    normalize_name,
)
from tests.unit.customers.matching.test_comparisons import level

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéø -'", max_size=12)
digits = st.text(alphabet="0123456789", min_size=8, max_size=8)


@given(st.text(max_size=30))
def test_normalising_twice_changes_nothing(raw: str) -> None:
    for normalise in (clean_text, normalize_name, normalize_email):
        once = normalise(raw)
        assert normalise(once) == once


@given(digits)
def test_eight_digit_dates_survive_normalisation_unchanged(raw: str) -> None:
    assert normalize_date(raw) == raw


@given(names, names)
def test_name_levels_are_symmetric(a: str, b: str) -> None:
    assert level("given_name", a, b) == level("given_name", b, a)


@given(digits, digits)
def test_date_levels_are_symmetric(a: str, b: str) -> None:
    assert level("date_of_birth", a, b) == level("date_of_birth", b, a)


people = st.builds(
    PersonRecord,
    id=st.uuids().map(str),
    given_name=st.sampled_from(["ann", "anne", "bob", "robert", "li", None]),
    surname=st.sampled_from(["lee", "leigh", "smith", "smyth", None]),
    date_of_birth=st.sampled_from(["1980-01-02", "1980-02-01", "1981-01-02", None]),
    postcode=st.sampled_from(["2000", "2001", None]),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(people, max_size=12), st.lists(people, max_size=12))
def test_linking_never_uses_a_record_twice_and_probabilities_are_probabilities(
    left: list[PersonRecord], right: list[PersonRecord]
) -> None:
    matcher = Matcher()
    pairs = matcher.match(left, right, min_probability=0.0)
    assert len({p.left_id for p in pairs}) == len(pairs) == len({p.right_id for p in pairs})
    assert all(0.0 <= p.probability <= 1.0 for p in pairs)
    assert [p.weight for p in pairs] == sorted((p.weight for p in pairs), reverse=True)
