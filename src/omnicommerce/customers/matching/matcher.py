"""The matcher: fit without labels, score candidate pairs, decide merge / review / distinct."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from omnicommerce.customers.matching.blocking import BlockingRule, Candidates, candidate_pairs, default_rules
from omnicommerce.customers.matching.comparisons import (
    Comparison,
    LevelArray,
    comparison_vectors,
    default_comparisons,
)
from omnicommerce.customers.matching.frequencies import rarity_bits
from omnicommerce.customers.matching.model import FittedModel, Session, estimate_u, fit_model
from omnicommerce.customers.matching.prepared import MISSING, FloatArray, IntArray, PairFrame, prepare
from omnicommerce.customers.matching.records import Decision, MatchPair, PersonRecord

# Members of one household share surname, address and often phone: what tells them apart is
# their first name and date of birth. A pair whose first names differ beyond a typo may be
# merged automatically only if the birth dates agree (exactly or day/month swapped) or an
# identifier that belongs to one person agrees; otherwise it is proposed for review at most,
# however much the shared address and phone add up.
DIFFERENT_FIRST_NAME = ("fuzzy_low", "else")  # Ella / Emma, Noah / Flynn
SAME_BIRTH_DATE = ("exact", "day_month_swapped")
PERSONAL_IDENTIFIER_AGREES = {"national_id": ("exact", "one_edit"), "email": ("exact",)}


@dataclass(frozen=True, slots=True)
class MatcherConfig:
    """Thresholds are posterior match probabilities (see docs/matching.md)."""

    merge_at: float = 0.95
    review_at: float = 0.5
    phone_region: str = "US"  # for phone numbers written without a country code
    u_sample_size: int = 100_000
    seed: int = 0
    comparisons: tuple[Comparison, ...] = field(default_factory=default_comparisons)
    rules: tuple[BlockingRule, ...] = field(default_factory=default_rules)

    def __post_init__(self) -> None:
        if not 0 < self.review_at <= self.merge_at < 1:
            raise ValueError("thresholds must satisfy 0 < review_at <= merge_at < 1")


@dataclass(frozen=True, slots=True)
class _Scored:
    """Candidate pairs of one input and their comparison levels, kept from fit for match."""

    key: tuple[tuple[PersonRecord, ...], tuple[PersonRecord, ...] | None]
    frame: PairFrame
    candidates: Candidates
    vectors: LevelArray


class Matcher:
    """Fellegi-Sunter record matcher for people.

    ``fit`` learns the model from the records themselves (no labels); ``match`` scores the
    candidate pairs within one list (dedupe) or between two (link, one-to-one by default);
    ``decide`` turns a scored pair into ``merge``, ``review`` or ``distinct``.
    """

    def __init__(self, config: MatcherConfig | None = None) -> None:
        self.config = config or MatcherConfig()
        self._model: FittedModel | None = None
        self._scored: _Scored | None = None

    @property
    def model(self) -> FittedModel:
        if self._model is None:
            raise RuntimeError("the matcher is not fitted yet: call fit() or match() first")
        return self._model

    def fit(self, left: Sequence[PersonRecord], right: Sequence[PersonRecord] | None = None) -> Matcher:
        scored = self._score_candidates(left, right)
        u_start = estimate_u(
            self.config.comparisons,
            scored.frame,
            within_one_list=right is None,
            sample_size=self.config.u_sample_size,
            rng=np.random.default_rng(self.config.seed),
        )
        sessions = [
            Session(rule.name, scored.candidates.by_rule[rule.name], frozenset(rule.fields))
            for rule in self.config.rules
        ]
        self._model = fit_model(self.config.comparisons, scored.vectors, sessions, u_start)
        return self

    def match(
        self,
        left: Sequence[PersonRecord],
        right: Sequence[PersonRecord] | None = None,
        *,
        one_to_one: bool | None = None,
        min_probability: float | None = None,
    ) -> list[MatchPair]:
        """Scored pairs at or above ``min_probability`` (default: the review threshold), best first.

        Without ``right`` the records are deduplicated among themselves; with it, each left
        record is linked to at most one right record and vice versa unless ``one_to_one=False``
        (greedy by weight: two files that are each free of duplicates can share a person once).
        An unfitted matcher fits itself on the same records first.
        """
        if self._model is None:
            self.fit(left, right)
        scored = self._score_candidates(left, right)
        pairs = scored.candidates
        rarity = rarity_bits(
            self.config.comparisons, self.model, scored.frame, pairs.left, pairs.right, scored.vectors
        )
        weights = self.model.match_weights(scored.vectors) + sum(rarity.values(), np.zeros(len(pairs)))
        probabilities = 1 / (1 + np.exp2(-np.clip(weights, -1000, 1000)))
        floor = self.config.review_at if min_probability is None else min_probability
        kept = np.flatnonzero(probabilities >= floor)
        kept = kept[np.argsort(-weights[kept], kind="stable")]
        if one_to_one if one_to_one is not None else right is not None:
            kept = _greedy_one_to_one(kept, pairs.left, pairs.right)
        return [
            self._pair(scored, k, float(probabilities[k]), float(weights[k]), rarity) for k in kept.tolist()
        ]

    def decide(self, pair: MatchPair) -> Decision:
        """``merge`` at ``merge_at`` or above, ``review`` at ``review_at`` or above, else ``distinct``.

        The household guard caps a pair at ``review`` when the given names differ beyond a typo
        (``fuzzy_low`` or ``else``), the birth dates are not the same (exact or day/month
        swapped) and no personal identifier agrees (national id exact or one edit, email exact).
        """
        if pair.probability < self.config.review_at:
            return "distinct"
        if pair.probability < self.config.merge_at or _household_conflict(pair):
            return "review"
        return "merge"

    def explain(self, pair: MatchPair) -> dict[str, float]:
        """Bits each comparison added to the pair's weight (and ``prior``): the evidence to journal."""
        bits = {"prior": float(np.log2(self.model.prior / (1 - self.model.prior)))}
        for params in self.model.comparisons:
            level = pair.evidence.get(params.name, "missing")
            bits[params.name] = params.weights()[level] if level != "missing" else 0.0
            bits[params.name] += pair.rarity.get(params.name, 0.0)
        return bits

    def merge_groups(self, pairs: Sequence[MatchPair]) -> list[list[str]]:
        """Connected groups of ids joined by pairs decided ``merge`` (for deduplicating a file)."""
        parent: dict[str, str] = {}

        def root(x: str) -> str:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for pair in pairs:
            if self.decide(pair) == "merge":
                parent[root(pair.left_id)] = root(pair.right_id)
        groups: dict[str, list[str]] = {}
        for member in parent:
            groups.setdefault(root(member), []).append(member)
        return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])

    def _score_candidates(
        self, left: Sequence[PersonRecord], right: Sequence[PersonRecord] | None
    ) -> _Scored:
        key = (tuple(left), tuple(right) if right is not None else None)
        if self._scored is not None and self._scored.key == key:
            return self._scored
        prepared_left = prepare(left, phone_region=self.config.phone_region)
        prepared_right = (
            prepare(right, phone_region=self.config.phone_region) if right is not None else prepared_left
        )
        candidates = candidate_pairs(
            self.config.rules, prepared_left, prepared_right if right is not None else None
        )
        frame = PairFrame(prepared_left, prepared_right)
        vectors = comparison_vectors(self.config.comparisons, frame, candidates.left, candidates.right)
        self._scored = _Scored(key, frame, candidates, vectors)
        return self._scored

    def _pair(
        self, scored: _Scored, k: int, probability: float, weight: float, rarity: dict[str, FloatArray]
    ) -> MatchPair:
        evidence = {
            c.name: "missing" if level == MISSING else c.levels[level]
            for c, level in zip(self.config.comparisons, scored.vectors[k].tolist(), strict=True)
        }
        return MatchPair(
            left_id=scored.frame.left.ids[int(scored.candidates.left[k])],
            right_id=scored.frame.right.ids[int(scored.candidates.right[k])],
            probability=probability,
            weight=weight,
            evidence=evidence,
            rarity={name: float(bits[k]) for name, bits in rarity.items() if bits[k] != 0.0},
        )


def _greedy_one_to_one(order: IntArray, il: IntArray, ir: IntArray) -> IntArray:
    """Walk pairs best first; keep one only if neither of its records is already taken."""
    used_left: set[int] = set()
    used_right: set[int] = set()
    kept = []
    for k, a, b in zip(order.tolist(), il[order].tolist(), ir[order].tolist(), strict=True):
        if a not in used_left and b not in used_right:
            used_left.add(a)
            used_right.add(b)
            kept.append(k)
    return np.asarray(kept, dtype=np.int64)


def _household_conflict(pair: MatchPair) -> bool:
    evidence = pair.evidence
    if (
        evidence.get("given_name") not in DIFFERENT_FIRST_NAME
        or evidence.get("date_of_birth") in SAME_BIRTH_DATE
    ):
        return False
    return not any(evidence.get(name) in levels for name, levels in PERSONAL_IDENTIFIER_AGREES.items())
