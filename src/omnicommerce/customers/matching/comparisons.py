"""Comparisons: how well two records agree on a piece of evidence, as a graded level.

A field comparison reads one field: level 0 is exact agreement (vectorised on shared codes),
the other levels come from a batch grader run once per distinct pair of differing values.
A combined comparison reads correlated fields together (street number with street; postcode
with suburb and state) so that one fact is not counted three times. ``MISSING`` (-1) means
there is nothing to compare: it weighs nothing either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cpdist

from omnicommerce.customers.matching.prepared import MISSING, FloatArray, IntArray, PairFrame

LevelArray = npt.NDArray[np.int8]

FUZZY_HIGH = 0.92
FUZZY_LOW = 0.80
NEAR_STREET_NUMBER = 2  # house numbers this close are likely the same door mistyped


@dataclass(frozen=True, slots=True)
class FieldComparison:
    name: str
    field: str
    levels: tuple[str, ...]  # levels[0] == "exact"; the last is the catch-all disagreement
    grade: Callable[[list[str], list[str]], IntArray]  # levels for aligned lists of differing values
    term_frequencies: bool = False  # exact agreement on a rare value counts more (see frequencies)

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    @property
    def exact_fields(self) -> tuple[str, ...]:
        return (self.field,)

    def compute(self, frame: PairFrame, il: IntArray, ir: IntArray) -> LevelArray:
        present, exact = frame.exact_and_present(self.field, il, ir)
        levels = np.full(len(il), MISSING, dtype=np.int8)
        levels[exact] = 0
        differing = present & ~exact
        if differing.any():
            levels[differing] = frame.grade(self.field, il[differing], ir[differing], self.grade)
        return levels


@dataclass(frozen=True, slots=True)
class CombinedComparison:
    """Correlated fields judged as one piece of evidence: its u comes from random pairs as a
    whole, so agreement on fields that always go together is not counted again and again."""

    name: str
    parts: tuple[FieldComparison, ...]
    levels: tuple[str, ...]
    combine: Callable[[Mapping[str, LevelArray]], LevelArray]  # part name -> part levels
    exact_fields: tuple[str, ...]  # level 0 means all of these agree exactly

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(p.field for p in self.parts)

    def compute(self, frame: PairFrame, il: IntArray, ir: IntArray) -> LevelArray:
        return self.combine({p.name: p.compute(frame, il, ir) for p in self.parts})


Comparison = FieldComparison | CombinedComparison


def _levels(n_levels: int, rules: list[tuple[np.ndarray, int]]) -> IntArray:
    """The first rule that holds gives the level; none holding is the last level."""
    return np.select([cond for cond, _ in rules], [lvl for _, lvl in rules], default=n_levels - 1)


def _similarity(a: list[str], b: list[str]) -> FloatArray:
    return cpdist(a, b, scorer=JaroWinkler.normalized_similarity, dtype=np.float64)


def _edits(a: list[str], b: list[str]) -> IntArray:
    """Optimal string alignment distance: a wrong, missing or extra character, or two
    neighbouring characters swapped, each count one."""
    return cpdist(a, b, scorer=OSA.distance, dtype=np.int64)


def _fuzzy_text_levels(a: list[str], b: list[str]) -> IntArray:
    similarity = _similarity(a, b)
    return _levels(4, [(similarity >= FUZZY_HIGH, 1), (similarity >= FUZZY_LOW, 2)])


def _date_levels(a: list[str], b: list[str]) -> IntArray:
    """Day and month swapped (US vs European order), then a single typed-digit slip."""
    swapped = np.fromiter(
        (x[:4] == y[:4] and x[4:6] == y[6:8] and x[6:8] == y[4:6] for x, y in zip(a, b, strict=True)),
        dtype=bool,
        count=len(a),
    )
    return _levels(4, [(swapped, 1), (_edits(a, b) <= 1, 2)])


def _one_edit_levels(a: list[str], b: list[str]) -> IntArray:
    return _levels(3, [(_edits(a, b) <= 1, 1)])


def _street_number_levels(a: list[str], b: list[str]) -> IntArray:
    near = np.fromiter(
        (
            x.isdigit() and y.isdigit() and abs(int(x) - int(y)) <= NEAR_STREET_NUMBER
            for x, y in zip(a, b, strict=True)
        ),
        dtype=bool,
        count=len(a),
    )
    return _levels(3, [(near | (_edits(a, b) <= 1), 1)])


def _email_levels(a: list[str], b: list[str]) -> IntArray:
    same_mailbox = np.fromiter(
        (x.split("@", 1)[0] == y.split("@", 1)[0] for x, y in zip(a, b, strict=True)),
        dtype=bool,
        count=len(a),
    )  # the same name at another provider
    return _levels(4, [(same_mailbox, 1), (_similarity(a, b) >= FUZZY_HIGH, 2)])


def _differs(a: list[str], b: list[str]) -> IntArray:
    return np.ones(len(a), dtype=np.int64)


_TEXT_LEVELS = ("exact", "fuzzy_high", "fuzzy_low", "else")
_EDIT_LEVELS = ("exact", "one_edit", "else")


def _select(n_levels: int, missing: np.ndarray, rules: list[tuple[np.ndarray, int]]) -> LevelArray:
    return np.where(missing, MISSING, _levels(n_levels, rules)).astype(np.int8)


ADDRESS_LEVELS = ("exact", "close", "same_street", "same_number", "else")


def _address_level(parts: Mapping[str, LevelArray]) -> LevelArray:
    number, street = parts["street_number"], parts["address_1"]
    street_agrees = (street == 0) | (street == 1)
    return _select(
        len(ADDRESS_LEVELS),
        (number == MISSING) & (street == MISSING),
        [
            ((number == 0) & (street == 0), 0),
            (street_agrees & ((number == 0) | (number == 1)), 1),
            (street_agrees, 2),
            (number == 0, 3),
        ],
    )


LOCALITY_LEVELS = ("exact", "close", "same_postcode", "same_suburb", "near", "same_state", "else")


def _locality_level(parts: Mapping[str, LevelArray]) -> LevelArray:
    postcode, suburb, state = parts["postcode"], parts["suburb"], parts["state"]
    return _select(
        len(LOCALITY_LEVELS),
        (postcode == MISSING) & (suburb == MISSING) & (state == MISSING),
        [
            ((postcode == 0) & (suburb == 0), 0),
            (((postcode == 0) & (suburb == 1)) | ((suburb == 0) & (postcode == 1)), 1),
            (postcode == 0, 2),
            ((suburb == 0) | (suburb == 1), 3),
            ((postcode == 1) | (suburb == 2), 4),
            (state == 0, 5),
        ],
    )


def default_comparisons() -> tuple[Comparison, ...]:
    """Every field a PersonRecord carries; a field absent from both inputs simply never scores."""
    return (
        FieldComparison("given_name", "given_name", _TEXT_LEVELS, _fuzzy_text_levels, term_frequencies=True),
        FieldComparison("surname", "surname", _TEXT_LEVELS, _fuzzy_text_levels, term_frequencies=True),
        FieldComparison(
            "date_of_birth",
            "date_of_birth",
            ("exact", "day_month_swapped", "one_digit", "else"),
            _date_levels,
        ),
        FieldComparison("national_id", "national_id", _EDIT_LEVELS, _one_edit_levels),
        FieldComparison("email", "email", ("exact", "same_mailbox", "fuzzy_high", "else"), _email_levels),
        FieldComparison("phone", "phone", _EDIT_LEVELS, _one_edit_levels),
        CombinedComparison(
            "address",
            (
                FieldComparison(
                    "street_number", "street_number", ("exact", "near", "else"), _street_number_levels
                ),
                FieldComparison("address_1", "address_1", _TEXT_LEVELS, _fuzzy_text_levels),
            ),
            ADDRESS_LEVELS,
            _address_level,
            exact_fields=("street_number", "address_1"),
        ),
        FieldComparison("address_2", "address_2", _TEXT_LEVELS, _fuzzy_text_levels),
        CombinedComparison(
            "locality",
            (
                FieldComparison("postcode", "postcode", _EDIT_LEVELS, _one_edit_levels),
                FieldComparison("suburb", "suburb", _TEXT_LEVELS, _fuzzy_text_levels),
                FieldComparison("state", "state", ("exact", "else"), _differs),
            ),
            LOCALITY_LEVELS,
            _locality_level,
            exact_fields=("postcode", "suburb"),
        ),
    )


def comparison_vectors(
    comparisons: tuple[Comparison, ...], frame: PairFrame, il: IntArray, ir: IntArray
) -> LevelArray:
    """One row per pair, one column per comparison: the level index, or MISSING."""
    out = np.empty((len(il), len(comparisons)), dtype=np.int8)
    for column, comparison in enumerate(comparisons):
        out[:, column] = comparison.compute(frame, il, ir)
    return out
