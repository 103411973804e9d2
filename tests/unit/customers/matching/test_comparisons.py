import numpy as np
import pytest

from omnicommerce.customers.matching import PersonRecord
from omnicommerce.customers.matching.comparisons import (
    CombinedComparison,
    Comparison,
    comparison_vectors,
    default_comparisons,
)
from omnicommerce.customers.matching.prepared import PairFrame, prepare

COMPARISONS: dict[str, Comparison] = {c.name: c for c in default_comparisons()}
# the parts of combined comparisons can be checked on their own too
COMPARISONS |= {
    p.name: p for c in default_comparisons() if isinstance(c, CombinedComparison) for p in c.parts
}


def level(field: str, left: str | None, right: str | None) -> str:
    """The level one comparison gives to two values of one field."""
    return combined_level(field, {field: left}, {field: right})


def combined_level(name: str, left: dict[str, str | None], right: dict[str, str | None]) -> str:
    frame = PairFrame(prepare([PersonRecord("l", **left)]), prepare([PersonRecord("r", **right)]))
    comparison = COMPARISONS[name]
    index = int(comparison.compute(frame, np.array([0]), np.array([0]))[0])
    return "missing" if index < 0 else comparison.levels[index]


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("Michaela", "michaela", "exact"),
        ("Bob", "Robert", "exact"),
        ("michaela", "micheala", "fuzzy_high"),
        ("jonathan", "jonothon", "fuzzy_low"),
        ("michaela", "courtney", "else"),
        ("michaela", None, "missing"),
        (None, None, "missing"),
    ],
)
def test_name_levels(left: str | None, right: str | None, expected: str) -> None:
    assert level("given_name", left, right) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1984-07-02", "19840702", "exact"),
        ("1984-07-02", "1984-02-07", "day_month_swapped"),
        ("1984-07-02", "1984-07-03", "one_digit"),
        ("1984-07-12", "1984-07-21", "one_digit"),  # two neighbouring digits swapped
        ("1984-07-02", "1948-07-02", "one_digit"),
        ("1984-07-02", "1991-11-23", "else"),
        ("1984-07-02", "sometime", "missing"),
    ],
)
def test_date_levels_see_through_transpositions_and_typos(left: str, right: str, expected: str) -> None:
    assert level("date_of_birth", left, right) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("12", "12", "exact"),
        ("12", "14", "near"),
        ("12", "21", "near"),
        ("12", "120", "near"),
        ("12", "48", "else"),
    ],
)
def test_street_numbers_compare_numerically(left: str, right: str, expected: str) -> None:
    assert level("street_number", left, right) == expected


def test_postcode_national_id_and_phone_allow_one_edit() -> None:
    assert level("postcode", "4223", "4232") == "one_edit"
    assert level("postcode", "4223", "2135") == "else"
    assert level("national_id", "5304218", "5304219") == "one_edit"
    assert level("phone", "+1 (415) 555-2671", "4155552671") == "exact"
    assert level("phone", "+14155552671", "+14155552672") == "one_edit"


def test_email_levels() -> None:
    assert level("email", "Ada@Example.com", "ada@example.com") == "exact"
    assert level("email", "ada.lovelace@example.com", "ada.lovelace@mail.test") == "same_mailbox"
    assert level("email", "ada.lovelace@example.com", "ada.lovelase@example.com") == "fuzzy_high"
    assert level("email", "ada@example.com", "zed@other.test") == "else"


def test_state_is_exact_or_else() -> None:
    assert level("state", "NSW", "nsw") == "exact"
    assert level("state", "nsw", "vic") == "else"


HOME = {"street_number": "12", "address_1": "stanley street"}


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (HOME, "exact"),
        ({"street_number": "14", "address_1": "stanley streett"}, "close"),
        ({"street_number": "300", "address_1": "stanley street"}, "same_street"),
        ({"street_number": None, "address_1": "stanley st"}, "same_street"),
        ({"street_number": "12", "address_1": "pinkerton circuit"}, "same_number"),
        ({"street_number": "77", "address_1": "pinkerton circuit"}, "else"),
        ({"street_number": None, "address_1": None}, "missing"),
    ],
)
def test_street_number_and_street_are_one_piece_of_evidence(
    other: dict[str, str | None], expected: str
) -> None:
    assert combined_level("address", HOME, other) == expected


TOWN = {"postcode": "4223", "suburb": "winston hills", "state": "nsw"}


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (TOWN, "exact"),
        ({"postcode": "4223", "suburb": "winston hils", "state": "nsw"}, "close"),
        ({"postcode": "4232", "suburb": "winston hills", "state": None}, "close"),
        ({"postcode": "4223", "suburb": "dapto", "state": "nsw"}, "same_postcode"),
        ({"postcode": "2135", "suburb": "winston hills", "state": "nsw"}, "same_suburb"),
        ({"postcode": "4228", "suburb": "dapto", "state": "vic"}, "near"),
        ({"postcode": "2135", "suburb": "dapto", "state": "nsw"}, "same_state"),
        ({"postcode": "2135", "suburb": "dapto", "state": "vic"}, "else"),
        ({"postcode": None, "suburb": None, "state": None}, "missing"),
    ],
)
def test_postcode_suburb_and_state_are_one_piece_of_evidence(
    other: dict[str, str | None], expected: str
) -> None:
    assert combined_level("locality", TOWN, other) == expected


def test_comparison_vectors_have_one_column_per_comparison_and_row_per_pair() -> None:
    left = prepare([PersonRecord("a", given_name="ann", surname="lee"), PersonRecord("b", given_name="bo")])
    right = prepare([PersonRecord("c", given_name="ann", surname="li")])
    vectors = comparison_vectors(
        default_comparisons(), PairFrame(left, right), np.array([0, 1]), np.array([0, 0])
    )
    names = [c.name for c in default_comparisons()]
    assert vectors.shape == (2, len(names))
    assert vectors[0, names.index("given_name")] == 0
    assert vectors[1, names.index("surname")] == -1
    assert vectors[0, names.index("email")] == -1
