import numpy as np
import pytest

from omnicommerce.customers.matching import PersonRecord, blocking
from omnicommerce.customers.matching.blocking import candidate_pairs, default_rules
from omnicommerce.customers.matching.prepared import prepare


def pairs(left: list[PersonRecord], right: list[PersonRecord] | None = None) -> set[tuple[str, str]]:
    pl = prepare(left)
    pr = prepare(right) if right is not None else None
    found = candidate_pairs(default_rules(), pl, pr)
    other = pr or pl
    return {(pl.ids[i], other.ids[j]) for i, j in zip(found.left.tolist(), found.right.tolist(), strict=True)}


def test_each_rule_alone_can_bring_a_pair_together() -> None:
    left = [
        PersonRecord("by-id", national_id="5304218"),
        PersonRecord("by-id-typo", national_id="5304299"),  # same first four digits
        PersonRecord("by-postcode", postcode="4223"),
        PersonRecord("by-name-sound", given_name="michaela", surname="neumann"),
        PersonRecord("by-swapped-names", given_name="neumann", surname="michaela"),
    ]
    right = [
        PersonRecord("r-id", national_id="5304218"),
        PersonRecord("r-postcode", postcode="4223"),
        PersonRecord("r-name", given_name="mikaela", surname="newman"),
    ]
    found = pairs(left, right)
    assert {("by-id", "r-id"), ("by-id-typo", "r-id"), ("by-postcode", "r-postcode")} <= found
    assert {("by-name-sound", "r-name"), ("by-swapped-names", "r-name")} <= found
    assert ("by-postcode", "r-id") not in found


def test_missing_values_never_block_together() -> None:
    assert pairs([PersonRecord("a"), PersonRecord("b")]) == set()


def test_within_one_list_each_pair_appears_once_and_never_with_itself() -> None:
    records = [PersonRecord(f"r{i}", postcode="2000", surname="lee") for i in range(4)]
    found = pairs(records)
    assert len(found) == 6
    assert all(a < b for a, b in found)


def test_oversized_blocks_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blocking, "MAX_BLOCK_SIZE", 3)
    crowd = [PersonRecord(f"c{i}", postcode="9999") for i in range(4)]
    couple = [PersonRecord("x", postcode="1000"), PersonRecord("y", postcode="1000")]
    assert pairs(crowd + couple) == {("x", "y")}


def test_each_rule_knows_which_candidates_it_brought() -> None:
    records = [
        PersonRecord("a", postcode="2000", date_of_birth="1980-01-01"),
        PersonRecord("b", postcode="2000", date_of_birth="1990-01-01"),
        PersonRecord("c", postcode="3000", date_of_birth="1980-01-01"),
    ]
    found = candidate_pairs(default_rules(), prepare(records), None)
    assert len(found) == 2
    by_postcode = found.by_rule["postcode"].tolist()
    by_birth = found.by_rule["date_of_birth"].tolist()
    assert [(int(found.left[k]), int(found.right[k])) for k in by_postcode] == [(0, 1)]
    assert [(int(found.left[k]), int(found.right[k])) for k in by_birth] == [(0, 2)]
    assert found.by_rule["email"].tolist() == []


def test_join_returns_every_matching_index_pair() -> None:
    il, ir = blocking._join(np.array([0, 1, -1, 2]), np.array([1, 1, 0, -1]))
    assert sorted(zip(il.tolist(), ir.tolist(), strict=True)) == [(0, 2), (1, 0), (1, 1)]
