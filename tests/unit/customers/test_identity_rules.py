"""Identity rules as data: validation, priorities, limits, blocked values, trust (pure)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnicommerce.customers.domain import (
    IDENTIFIER_TYPES,
    Identifier,
    IdentityRules,
    InvalidIdentityRules,
    normalize_identifier,
    survivor_order,
)
from omnicommerce.platform.errors import InvalidInput


def test_defaults_round_trip_through_the_document() -> None:
    rules = IdentityRules()
    again = IdentityRules.from_document(rules.to_document())
    assert again.to_document() == rules.to_document()
    assert rules.limits["device_id"] == 5 and rules.limits["email"] == 1


@pytest.mark.parametrize(
    "doc",
    [
        {"priority": ["email", "user_id"]},
        {"priority": [*IDENTIFIER_TYPES[:-1], "email"]},
        {"limits": {"device_id": 0}},
        {"limits": {"shoe_size": 2}},
        {"limits": {"email": "many"}},
        {"blocked": {"shoe_size": ["x"]}},
        {"sources": {"key_1": "sometimes"}},
        {"default_trust": "maybe"},
    ],
)
def test_bad_documents_are_refused(doc: dict) -> None:
    with pytest.raises(InvalidIdentityRules):
        IdentityRules.from_document(doc)


def test_blocked_values_compare_normalised_and_phones_by_digits() -> None:
    rules = IdentityRules.from_document(
        {"blocked": {"email": [" Test@Test.com"], "phone": ["(415) 555-0000"]}}
    )
    assert rules.is_blocked(Identifier("email", "test@test.com"))
    assert rules.is_blocked(Identifier("phone", "4155550000"))
    assert not rules.is_blocked(Identifier("email", "ada@example.com"))


def test_trust_per_source_with_a_default() -> None:
    rules = IdentityRules.from_document({"sources": {"key_pos": "trusted"}, "default_trust": "untrusted"})
    assert rules.may_merge("key_pos") and not rules.may_merge("key_web")


def test_survivor_is_matched_by_the_highest_priority_identifier() -> None:
    rules = IdentityRules()
    matches = {
        "cus_B": [Identifier("anonymous_id", "a"), Identifier("device_id", "d")],
        "cus_A": [Identifier("email", "ada@example.com")],
    }
    assert survivor_order(rules, matches) == ["cus_A", "cus_B"]
    custom = IdentityRules.from_document({"priority": list(reversed(IDENTIFIER_TYPES))})
    assert survivor_order(custom, matches) == ["cus_B", "cus_A"]


def test_identifiers_are_normalised_or_refused() -> None:
    assert normalize_identifier("email", " Ada@Example.COM ") == Identifier("email", "ada@example.com")
    assert normalize_identifier("phone", "(415) 555-0123") == Identifier("phone", "+14155550123")
    assert normalize_identifier("loyalty_id", 1234) == Identifier("loyalty_id", "1234")
    for bad in [
        ("email", "nope"),
        ("phone", "12"),
        ("device_id", ""),
        ("user_id", True),
        ("user_id", "x" * 201),
    ]:
        with pytest.raises(InvalidInput):
            normalize_identifier(*bad)


@given(
    counts=st.dictionaries(st.sampled_from(IDENTIFIER_TYPES), st.integers(0, 10)),
    extra=st.dictionaries(st.sampled_from(IDENTIFIER_TYPES), st.integers(0, 10)),
)
def test_fits_means_no_type_goes_over_its_limit(counts: dict[str, int], extra: dict[str, int]) -> None:
    rules = IdentityRules()
    over = any(counts.get(t, 0) + n > rules.limits[t] for t, n in extra.items() if n)
    assert rules.fits(counts, extra) is (not over)
