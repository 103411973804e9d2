"""Blocking: which pairs are compared at all.

Several cheap keys, each a different way two records of one person can still agree despite
typos; a pair is a candidate when ANY rule gives both records the same key (the union keeps
recall that a single key would lose). Keys are joined with sorted arrays, not Python loops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from omnicommerce.customers.matching.normalize import soundex
from omnicommerce.customers.matching.prepared import MISSING, IntArray, Prepared, encode, joined

Columns = dict[str, list[str | None]]
Keys = list[str | None]
KeyFunction = Callable[[Columns], Keys]  # one key per record, None when it cannot be built

# A key shared by more records than this on one side (a shop's own postcode, a placeholder
# value) would explode into pairs that carry no signal: such blocks are skipped, the other
# rules still cover their members.
MAX_BLOCK_SIZE = 400


@dataclass(frozen=True, slots=True)
class BlockingRule:
    name: str
    keys: KeyFunction
    fields: tuple[str, ...]  # what the key reads: its pairs say little new about these


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate pairs as two index arrays, and which of them each rule brought together."""

    left: IntArray
    right: IntArray
    by_rule: dict[str, IntArray]  # rule name -> positions in left/right

    def __len__(self) -> int:
        return len(self.left)


def _field(name: str, start: int = 0, end: int | None = None) -> KeyFunction:
    shortest = max(abs(start), abs(end or 0))

    def keys(columns: Columns) -> Keys:
        return [v[start:end] if v and len(v) >= shortest else None for v in columns[name]]

    return keys


def _combined(*parts: KeyFunction) -> KeyFunction:
    def keys(columns: Columns) -> Keys:
        return [joined(values) for values in zip(*(part(columns) for part in parts), strict=True)]

    return keys


def _phonetic(name: str) -> KeyFunction:
    return lambda columns: [soundex(v) for v in columns[name]]


def _name_pair(columns: Columns) -> Keys:
    """Both names' Soundex codes, order-free: catches given name and surname swapped."""
    return [
        "|".join(sorted((g, s))) if g and s else None
        for g, s in zip(_phonetic("given_name")(columns), _phonetic("surname")(columns), strict=True)
    ]


def default_rules() -> tuple[BlockingRule, ...]:
    return (
        BlockingRule("national_id", _field("national_id"), ("national_id",)),
        BlockingRule("national_id_head", _field("national_id", 0, 4), ("national_id",)),
        BlockingRule("national_id_tail", _field("national_id", -4), ("national_id",)),
        BlockingRule("email", _field("email"), ("email",)),
        BlockingRule("phone", _field("phone"), ("phone",)),
        BlockingRule("postcode", _field("postcode"), ("postcode",)),
        BlockingRule("date_of_birth", _field("date_of_birth"), ("date_of_birth",)),
        BlockingRule(
            "surname_sound_birth_year",
            _combined(_phonetic("surname"), _field("date_of_birth", 0, 4)),
            ("surname", "date_of_birth"),
        ),
        BlockingRule(
            "given_name_suburb", _combined(_field("given_name"), _field("suburb")), ("given_name", "suburb")
        ),
        BlockingRule("name_sounds", _name_pair, ("given_name", "surname")),
        BlockingRule(
            "street",
            _combined(_field("street_number"), _phonetic("address_1")),
            ("street_number", "address_1"),
        ),
    )


def candidate_pairs(rules: tuple[BlockingRule, ...], left: Prepared, right: Prepared | None) -> Candidates:
    """Index pairs (left, right) blocked by any rule; within one list (right None) only i < j."""
    other = right if right is not None else left
    width = np.int64(len(other))
    packed: dict[str, IntArray] = {}
    for rule in rules:
        keys_left, keys_right = _rule_codes(rule, left, other)
        il, ir = _join(keys_left, keys_right)
        if right is None:
            keep = il < ir
            il, ir = il[keep], ir[keep]
        packed[rule.name] = il * width + ir
    union = np.unique(np.concatenate(list(packed.values()))) if packed else np.empty(0, np.int64)
    by_rule = {name: np.searchsorted(union, keys) for name, keys in packed.items()}
    return Candidates(union // width, union % width, by_rule)


def _rule_codes(rule: BlockingRule, left: Prepared, right: Prepared) -> tuple[IntArray, IntArray]:
    keys_left = rule.keys(left.columns)
    keys_right = keys_left if right is left else rule.keys(right.columns)
    codes_left, codes_right, _ = encode(keys_left, keys_right)
    return codes_left, codes_right


def _join(keys_left: IntArray, keys_right: IntArray) -> tuple[IntArray, IntArray]:
    """Every (i, j) with keys_left[i] == keys_right[j] != MISSING, skipping oversized blocks."""
    order = np.argsort(keys_right, kind="stable")
    sorted_right = keys_right[order]
    start = np.searchsorted(sorted_right, keys_left, side="left")
    end = np.searchsorted(sorted_right, keys_left, side="right")
    counts = end - start
    counts[(keys_left == MISSING) | (counts > MAX_BLOCK_SIZE)] = 0
    counts[_too_common_on_left(keys_left)] = 0
    total = int(counts.sum())
    il = np.repeat(np.arange(len(keys_left), dtype=np.int64), counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    ir = order[np.repeat(start, counts) + offsets]
    return il, ir


def _too_common_on_left(keys_left: IntArray) -> np.ndarray:
    _, inverse, sizes = np.unique(keys_left, return_inverse=True, return_counts=True)
    return sizes[inverse] > MAX_BLOCK_SIZE
