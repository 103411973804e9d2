"""Records turned into normalised columns, and pairs of record indexes into agreement levels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from omnicommerce.customers.matching.normalize import (
    clean_text,
    normalize_code,
    normalize_date,
    normalize_email,
    normalize_name,
    normalize_phone,
)
from omnicommerce.customers.matching.records import PersonRecord

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MISSING = -1


@dataclass(frozen=True, slots=True)
class Prepared:
    """One side of a comparison: record ids and each field normalised (None = missing)."""

    ids: tuple[str, ...]
    columns: dict[str, list[str | None]]

    def __len__(self) -> int:
        return len(self.ids)


def prepare(records: Sequence[PersonRecord], *, phone_region: str = "US") -> Prepared:
    """Normalise every field of every record once, column by column."""

    def column(field: str, normalise: Callable[[str | None], str | None]) -> list[str | None]:
        return [normalise(getattr(r, field)) for r in records]

    columns = {
        "given_name": column("given_name", normalize_name),
        "surname": column("surname", normalize_name),
        "date_of_birth": column("date_of_birth", normalize_date),
        "email": column("email", normalize_email),
        "phone": column("phone", lambda v: normalize_phone(v, phone_region)),
        "street_number": column("street_number", normalize_code),
        "address_1": column("address_1", clean_text),
        "address_2": column("address_2", clean_text),
        "suburb": column("suburb", clean_text),
        "postcode": column("postcode", normalize_code),
        "state": column("state", clean_text),
        "national_id": column("national_id", normalize_code),
    }
    return Prepared(ids=tuple(r.id for r in records), columns=columns)


class PairFrame:
    """Both sides' columns coded against one shared vocabulary per field.

    Equal codes mean equal values, so exact agreement is one vectorised comparison; similarity
    functions run once per distinct pair of values, not once per pair of records.
    """

    def __init__(self, left: Prepared, right: Prepared) -> None:
        self.left, self.right = left, right
        self._codes: dict[str | tuple[str, ...], tuple[IntArray, IntArray, list[str]]] = {}

    def codes(self, field: str | tuple[str, ...]) -> tuple[IntArray, IntArray, list[str]]:
        """Codes of one field, or of several read together (missing if any part is)."""
        if field not in self._codes:
            self._codes[field] = encode(_column(self.left, field), _column(self.right, field))
        return self._codes[field]

    def exact_and_present(self, field: str, il: IntArray, ir: IntArray) -> tuple[np.ndarray, np.ndarray]:
        """(both values present, values equal) for each pair."""
        cl, cr, _ = self.codes(field)
        a, b = cl[il], cr[ir]
        present = (a != MISSING) & (b != MISSING)
        return present, present & (a == b)

    def grade(
        self, field: str, il: IntArray, ir: IntArray, grader: Callable[[list[str], list[str]], IntArray]
    ) -> IntArray:
        """``grader(left values, right values)`` for pairs where both are present.

        The grader sees each distinct pair of values once, as two aligned lists, so it can
        run one batch call (rapidfuzz ``cpdist``) instead of a Python call per pair.
        """
        cl, cr, vocab = self.codes(field)
        keys = cl[il] * len(vocab) + cr[ir]
        distinct, inverse = np.unique(keys, return_inverse=True)
        lefts = [vocab[k] for k in (distinct // len(vocab)).tolist()]
        rights = [vocab[k] for k in (distinct % len(vocab)).tolist()]
        return np.asarray(grader(lefts, rights), dtype=np.int64)[inverse]


def _column(side: Prepared, field: str | tuple[str, ...]) -> list[str | None]:
    if isinstance(field, str):
        return side.columns[field]
    return [joined(values) for values in zip(*(side.columns[f] for f in field), strict=True)]


def joined(values: tuple[str | None, ...]) -> str | None:
    """Several values read as one (for joint codes and keys); None if any part is missing."""
    present = [v for v in values if v is not None]
    return "\x1f".join(present) if len(present) == len(values) else None


def encode(left: list[str | None], right: list[str | None]) -> tuple[IntArray, IntArray, list[str]]:
    """Integer codes for two lists of values from one shared vocabulary (None -> MISSING)."""
    index: dict[str, int] = {}

    def code(value: str | None) -> int:
        if value is None:
            return MISSING
        return index.setdefault(value, len(index))

    codes_left = np.fromiter((code(v) for v in left), dtype=np.int64, count=len(left))
    codes_right = np.fromiter((code(v) for v in right), dtype=np.int64, count=len(right))
    return codes_left, codes_right, list(index)
