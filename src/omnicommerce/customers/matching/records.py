"""The values the matcher takes and gives back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Literal

Decision = Literal["merge", "review", "distinct"]


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One source record about a person; every field but ``id`` may be None or empty.

    ``date_of_birth`` is ISO (``1984-07-02``), ``YYYYMMDD`` or ``DD/MM/YYYY``; ``phone`` is
    read as E.164 when it starts with ``+`` and as the matcher's ``phone_region`` otherwise.
    """

    id: str
    given_name: str | None = None
    surname: str | None = None
    date_of_birth: str | None = None
    email: str | None = None
    phone: str | None = None
    street_number: str | None = None
    address_1: str | None = None
    address_2: str | None = None
    suburb: str | None = None
    postcode: str | None = None
    state: str | None = None
    national_id: str | None = None


# Field names a caller can map columns onto (everything but the id).
PERSON_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PersonRecord) if f.name != "id")


@dataclass(frozen=True, slots=True)
class MatchPair:
    """Two records the model scored, with the agreement level of each compared field.

    ``weight`` is the Fellegi-Sunter match weight in bits (log2 of the posterior odds, prior
    included); ``probability`` is the same number as a probability. ``evidence`` maps each
    comparison name to its level (``exact``, ``fuzzy_high``, ``else``, ``missing`` …);
    ``rarity`` holds the extra bits an exact agreement earned for a rare value (negative for
    a common one, such as Smith), per comparison.
    """

    left_id: str
    right_id: str
    probability: float
    weight: float
    evidence: Mapping[str, str] = field(default_factory=dict)
    rarity: Mapping[str, float] = field(default_factory=dict)
