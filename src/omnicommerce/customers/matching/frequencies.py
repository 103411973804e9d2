"""Term-frequency adjustment: agreeing on "Neumann" says more than agreeing on "Smith".

The model's u for exact agreement is an average over all values. For a pair that agrees
exactly on value v, the chance that two different people share v is the frequency of v
itself, so the pair gets ``log2(u_exact / frequency(v))`` extra bits: positive for a rare
value, negative for a common one. As in Splink, EM learns m and u without this adjustment; it
is applied when scoring.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omnicommerce.customers.matching.comparisons import Comparison, FieldComparison, LevelArray
from omnicommerce.customers.matching.model import FittedModel
from omnicommerce.customers.matching.prepared import MISSING, FloatArray, IntArray, PairFrame


def rarity_bits(
    comparisons: Sequence[Comparison],
    model: FittedModel,
    frame: PairFrame,
    il: IntArray,
    ir: IntArray,
    vectors: LevelArray,
) -> dict[str, FloatArray]:
    """Per comparison with term frequencies on: extra bits for each candidate pair (0 if not exact)."""
    out = {}
    for column, comparison in enumerate(comparisons):
        if not (isinstance(comparison, FieldComparison) and comparison.term_frequencies):
            continue
        frequency = _value_frequencies(frame, comparison.field)
        codes_left, _, _ = frame.codes(comparison.field)
        exact = vectors[:, column] == 0
        bits = np.zeros(len(il))
        u_exact = model.comparisons[column].u[0]
        bits[exact] = np.log2(u_exact / frequency[codes_left[il[exact]]])
        out[comparison.name] = bits
    return out


def _value_frequencies(frame: PairFrame, field: str) -> FloatArray:
    """Share of present values equal to each vocabulary entry, over both sides."""
    codes_left, codes_right, vocab = frame.codes(field)
    counts = np.bincount(codes_left[codes_left != MISSING], minlength=len(vocab)).astype(np.float64)
    if frame.right is not frame.left:  # linking two lists: both count; dedupe: once
        counts += np.bincount(codes_right[codes_right != MISSING], minlength=len(vocab))
    return counts / max(counts.sum(), 1.0)
