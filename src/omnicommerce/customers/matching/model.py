"""The Fellegi-Sunter model: m and u per comparison level, estimated without labels.

* u (how often two *different* people agree at a level) comes from random pairs: exact
  agreement over every pair from value frequencies, the other levels from a random sample.
* m (how often two records of the *same* person agree at a level) comes from expectation
  maximisation, one session per blocking rule on the pairs that rule brought together. A
  session leaves out the comparisons of the fields its rule blocks on: those agree by
  construction there, and letting them in would let EM mistake "same postcode" or "same first
  name in the same town" for "same person". Sessions are pooled, each weighted by the matches
  it estimates it saw.
* The share of matches among all candidate pairs is then fitted by EM with m and u held.
* A pair's match weight is ``log2(prior odds) + sum(log2(m / u))`` over its non-missing levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from omnicommerce.customers.matching.comparisons import Comparison, LevelArray, comparison_vectors
from omnicommerce.customers.matching.prepared import MISSING, FloatArray, IntArray, PairFrame

# Dirichlet pseudo-counts pulling each estimate towards its starting value: keeps tiny inputs
# (a handful of candidate pairs) from producing zero or one probabilities.
PSEUDO_COUNT = 1.0
# u is smoothed the same way with this many pseudo pairs of a generic "1% chance agreement":
# negligible next to 100,000 random pairs, decisive when a tiny input has only a few pairs
# (most of which may be the very duplicates we look for).
U_PSEUDO_PAIRS = 1000.0
U_DEFAULT_EXACT = 0.01
MIN_PROBABILITY = 1e-6
MIN_PRIOR, MAX_PRIOR = 1e-6, 0.999
MAX_ITERATIONS = 200
TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class ComparisonParameters:
    name: str
    levels: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]

    def weights(self) -> dict[str, float]:
        """Bits of evidence each level adds (positive: for a match)."""
        return {lvl: float(np.log2(m / u)) for lvl, m, u in zip(self.levels, self.m, self.u, strict=True)}


@dataclass(frozen=True, slots=True)
class TrainingSession:
    """One EM run on the pairs of one blocking rule."""

    rule: str
    pairs: int
    match_share: float
    iterations: int
    converged: bool
    estimated: tuple[str, ...]  # comparisons whose m this session estimated


@dataclass(frozen=True, slots=True)
class FittedModel:
    comparisons: tuple[ComparisonParameters, ...]
    prior: float  # probability that a candidate pair is a match
    candidate_pairs: int
    sessions: tuple[TrainingSession, ...]

    @property
    def converged(self) -> bool:
        return all(s.converged for s in self.sessions)

    def match_weights(self, vectors: LevelArray) -> FloatArray:
        """Match weight in bits for each row of comparison levels."""
        total = np.full(len(vectors), np.log2(self.prior / (1 - self.prior)))
        for column, params in enumerate(self.comparisons):
            table = _log_ratio_table(np.asarray(params.m), np.asarray(params.u), np.log2)
            total += table[vectors[:, column]]
        return total


@dataclass(frozen=True, slots=True)
class Session:
    """What one EM session trains on: the rule's pairs and the fields it blocks on."""

    rule: str
    members: IntArray  # rows of the candidate vectors
    blocked_fields: frozenset[str]


def fit_model(
    comparisons: Sequence[Comparison],
    vectors: LevelArray,
    sessions: Sequence[Session],
    u: list[FloatArray],
) -> FittedModel:
    """m by EM per blocking rule (pooled), then the prior over all candidates with m and u held."""
    m_sum = [np.zeros(len(c.levels)) for c in comparisons]
    weight_sum = np.zeros(len(comparisons))
    done = []
    for session in sessions:
        active = [i for i, c in enumerate(comparisons) if not set(c.fields) & session.blocked_fields]
        if len(session.members) == 0 or not active:
            continue
        patterns, counts = _distinct_patterns(vectors[session.members][:, active])
        m_start = [initial_m(len(comparisons[i].levels)) for i in active]
        m, share, iterations, converged = _em(patterns, counts, m_start, [u[i] for i in active])
        expected_matches = share * len(session.members)
        for column, i in enumerate(active):
            m_sum[i] += expected_matches * m[column]
            weight_sum[i] += expected_matches
        done.append(
            TrainingSession(
                session.rule,
                len(session.members),
                share,
                iterations,
                converged,
                tuple(comparisons[i].name for i in active),
            )
        )
    m_final = [
        m_sum[i] / weight_sum[i] if weight_sum[i] > 0 else initial_m(len(c.levels))
        for i, c in enumerate(comparisons)
    ]
    patterns, counts = _distinct_patterns(vectors)
    _, prior, _, _ = _em(patterns, counts, m_final, u, estimate_m=False)
    parameters = tuple(
        ComparisonParameters(c.name, c.levels, tuple(map(float, mc)), tuple(map(float, uc)))
        for c, mc, uc in zip(comparisons, m_final, u, strict=True)
    )
    return FittedModel(parameters, prior, len(vectors), tuple(done))


def initial_m(levels: int) -> FloatArray:
    """A neutral start for EM: mostly exact, a little fuzz, rarely a flat disagreement."""
    if levels == 2:
        return np.array([0.95, 0.05])
    middle = np.full(levels - 2, 0.08 / (levels - 2))
    return np.concatenate(([0.9], middle, [0.02]))


def estimate_u(
    comparisons: Sequence[Comparison],
    frame: PairFrame,
    *,
    within_one_list: bool,
    sample_size: int,
    rng: np.random.Generator,
) -> list[FloatArray]:
    """u per level from random pairs (almost all of which are different people)."""
    il, ir = _random_pairs(len(frame.left), len(frame.right), within_one_list, sample_size, rng)
    vectors = comparison_vectors(tuple(comparisons), frame, il, ir)
    estimates = []
    for column, comparison in enumerate(comparisons):
        agreeing, total = _exact_agreements(frame, comparison.exact_fields, within_one_list)
        exact = (agreeing + U_PSEUDO_PAIRS * U_DEFAULT_EXACT) / (total + U_PSEUDO_PAIRS)
        observed = vectors[:, column]
        counts = np.bincount(observed[observed > 0], minlength=len(comparison.levels))[1:]
        default = initial_u(len(comparison.levels))[1:] / (1 - U_DEFAULT_EXACT)
        share = (counts + U_PSEUDO_PAIRS * default) / (counts.sum() + U_PSEUDO_PAIRS)  # other levels
        estimates.append(np.concatenate(([exact], (1 - exact) * share)))
    return estimates


def initial_u(levels: int) -> FloatArray:
    """Generic chance agreement: 1% exact, 1% spread over the fuzzy levels, the rest else."""
    middle = np.full(levels - 2, U_DEFAULT_EXACT / max(levels - 2, 1))
    return np.concatenate(([U_DEFAULT_EXACT], middle, [1 - U_DEFAULT_EXACT - middle.sum()]))


def _exact_agreements(
    frame: PairFrame, fields: tuple[str, ...], within_one_list: bool
) -> tuple[float, float]:
    """(agreeing pairs, pairs with both values present) over all pairs, from value counts."""
    codes_left, codes_right, vocab = frame.codes(fields[0] if len(fields) == 1 else fields)
    left = np.bincount(codes_left[codes_left != MISSING], minlength=len(vocab)).astype(np.float64)
    right = np.bincount(codes_right[codes_right != MISSING], minlength=len(vocab)).astype(np.float64)
    if within_one_list:
        present = left.sum()
        return float((left * (left - 1)).sum() / 2), float(present * (present - 1) / 2)
    return float((left * right).sum()), float(left.sum() * right.sum())


def _random_pairs(
    n_left: int, n_right: int, within_one_list: bool, sample_size: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """All pairs when there are few, otherwise a uniform sample (self-pairs excluded)."""
    total = n_left * (n_left - 1) // 2 if within_one_list else n_left * n_right
    if total <= sample_size:
        grid_left, grid_right = np.meshgrid(np.arange(n_left), np.arange(n_right), indexing="ij")
        all_left, all_right = grid_left.ravel().astype(np.int64), grid_right.ravel().astype(np.int64)
        keep = all_left < all_right if within_one_list else np.ones(len(all_left), dtype=bool)
        return all_left[keep], all_right[keep]
    il = rng.integers(0, n_left, sample_size, dtype=np.int64)
    ir = rng.integers(0, n_right, sample_size, dtype=np.int64)
    if within_one_list:
        keep = il != ir
        il, ir = il[keep], ir[keep]
    return il, ir


def _em(
    patterns: LevelArray,
    counts: FloatArray,
    m_start: list[FloatArray],
    u: list[FloatArray],
    *,
    estimate_m: bool = True,
    prior_start: float = 0.1,
) -> tuple[list[FloatArray], float, int, bool]:
    """EM with u held: (m, match share, iterations, converged) on distinct level patterns."""
    m, prior = [x.copy() for x in m_start], prior_start
    total = counts.sum()
    if total == 0:
        return m, prior, 0, True
    for iteration in range(1, MAX_ITERATIONS + 1):
        posterior = _posterior(patterns, m, u, prior)
        new_prior = float(np.clip((counts * posterior).sum() / total, MIN_PRIOR, MAX_PRIOR))
        new_m = (
            [_level_shares(patterns[:, c], counts * posterior, m_start[c]) for c in range(len(m))]
            if estimate_m
            else m
        )
        m_change = max((float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True)), default=0.0)
        change = max(abs(new_prior - prior), m_change)
        m, prior = new_m, new_prior
        if change < TOLERANCE:
            return m, prior, iteration, True
    return m, prior, MAX_ITERATIONS, False


def _distinct_patterns(vectors: LevelArray) -> tuple[LevelArray, FloatArray]:
    """Each distinct row of levels once, with how many pairs share it (EM cost ∝ patterns)."""
    if len(vectors) == 0:
        return vectors, np.empty(0)
    shifted = vectors.astype(np.int64) + 1  # MISSING → 0
    radix = 1 + int(shifted.max())
    packed = shifted @ (radix ** np.arange(vectors.shape[1], dtype=np.int64))
    _, first, counts = np.unique(packed, return_index=True, return_counts=True)
    return vectors[first], counts.astype(np.float64)


def _log_ratio_table(m: FloatArray, u: FloatArray, log: np.ufunc) -> FloatArray:
    """log(m/u) per level plus a last slot of 0 that MISSING (-1) indexes."""
    return np.append(log(m / u), 0.0)


def _posterior(patterns: LevelArray, m: list[FloatArray], u: list[FloatArray], prior: float) -> FloatArray:
    log_odds = np.full(len(patterns), np.log(prior / (1 - prior)))
    for column, (mc, uc) in enumerate(zip(m, u, strict=True)):
        log_odds += _log_ratio_table(mc, uc, np.log)[patterns[:, column]]
    return 1 / (1 + np.exp(-np.clip(log_odds, -700, 700)))


def _level_shares(levels: LevelArray, weights: FloatArray, start: FloatArray) -> FloatArray:
    """Weighted share of each level among present values, smoothed towards ``start``."""
    present = levels != MISSING
    totals = np.bincount(levels[present], weights=weights[present], minlength=len(start))
    shares = (totals + PSEUDO_COUNT * start) / (totals.sum() + PSEUDO_COUNT)
    return np.clip(shares, MIN_PROBABILITY, 1.0)
