"""The segment rule language: what it accepts, every problem it reports (with its path), which
rules age with time, and the reference semantics the SQL is held to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from omnicommerce.customers.segments.domain import (
    EventCondition,
    EventFact,
    Group,
    InvalidSegmentRule,
    Not,
    ProfileFacts,
    TraitCondition,
    is_windowed,
    matches,
    parse_rule,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ALIASES = {"order.placed": "Order Placed"}
STORE_ONLY = {
    "all": [
        {"event": "order.placed", "where": {"channel": "pos"}, "within_days": 90, "count": ">=1"},
        {"not": {"event": "order.placed", "where": {"channel": ["web", "app"]}, "within_days": 90}},
    ]
}


def _errors(doc: object) -> list[dict[str, str]]:
    with pytest.raises(InvalidSegmentRule) as caught:
        parse_rule(doc)
    assert caught.value.status == 422
    return caught.value.extensions["errors"]


def test_the_store_only_example_parses_to_its_meaning() -> None:
    rule = parse_rule(STORE_ONLY)
    assert rule == Group(
        "all",
        (
            EventCondition("order.placed", (("channel", ("pos",)),), 90, ">=", 1),
            Not(EventCondition("order.placed", (("channel", ("app", "web")),), 90, ">=", 1)),
        ),
    )
    assert is_windowed(rule)


@pytest.mark.parametrize(
    ("count", "op", "n"),
    [
        (">=2", ">=", 2),
        ("=0", "=", 0),
        ("==3", "=", 3),
        ("< 5", "<", 5),
        ("4", "=", 4),
        (0, "=", 0),
        ("!=1", "!=", 1),
    ],
)
def test_counts_read_as_comparisons_and_bare_numbers_are_exact(count: object, op: str, n: int) -> None:
    rule = parse_rule({"event": "Store Visit", "count": count})
    assert isinstance(rule, EventCondition) and (rule.op, rule.count) == (op, n)


def test_trait_conditions_parse_with_currency_and_channels() -> None:
    assert parse_rule(
        {"trait": "lifetime_value", "op": ">", "value": 100, "currency": "EUR"}
    ) == TraitCondition("lifetime_value", ">", 100, "EUR")
    assert parse_rule({"trait": "channels", "op": "contains", "value": "pos"}) == TraitCondition(
        "channels", "contains", "pos"
    )
    assert not is_windowed(parse_rule({"not": {"trait": "order_count", "op": "=", "value": 0}}))


def test_every_problem_is_reported_with_its_path() -> None:
    errors = _errors(
        {
            "any": [
                {"trait": "shoe_size", "op": ">", "value": 1},
                {"event": "order.placed", "within_days": 0, "count": "lots", "where": {"colour": "red"}},
                {"trait": "lifetime_value", "op": ">", "value": 5},
                {"trait": "order_count", "op": "~", "value": 1},
                {"not": {"event": "x", "trait": "order_count"}},
                {"all": []},
            ]
        }
    )
    paths = {e["path"] for e in errors}
    assert paths == {
        "rules.any[0].trait",
        "rules.any[1].within_days",
        "rules.any[1].count",
        "rules.any[1].where.colour",
        "rules.any[2].currency",
        "rules.any[3].op",
        "rules.any[4].not",
        "rules.any[5].all",
    }
    assert any("known traits" in e["message"] for e in errors)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {},
        {"all": "x"},
        {"trait": "order_count", "op": ">=", "value": True},
        {"trait": "order_count", "op": ">=", "value": 1.5},
        {"trait": "channels", "op": "=", "value": "pos"},
        {"event": ""},
        {"event": "x", "where": {"channel": []}},
        {"event": "x", "where": {"channel": 3}},
        {"event": "x", "extra": 1},
        {"trait": "order_count", "op": ">=", "value": 1, "currency": "usd"},
        {"trait": "event_count", "op": ">=", "value": 1, "currency": "USD"},
    ],
)
def test_malformed_rules_are_refused(doc: object) -> None:
    assert _errors(doc)


def test_depth_and_size_are_bounded() -> None:
    deep: dict[str, object] = {"event": "x"}
    for _ in range(7):
        deep = {"not": deep}
    assert "nest" in _errors(deep)[0]["message"]
    wide = {"any": [{"event": f"e{i}"} for i in range(51)]}
    assert "at most 50" in _errors(wide)[0]["message"]


def _order(channel: str, days_ago: int) -> EventFact:
    return EventFact("Order Placed", "track", channel, "orders", NOW - timedelta(days=days_ago))


def test_reference_semantics_of_the_store_only_example() -> None:
    rule = parse_rule(STORE_ONLY)

    def member(*events: EventFact) -> bool:
        return matches(rule, ProfileFacts(events=events), NOW, ALIASES)

    assert member(_order("pos", 10))
    assert not member(_order("pos", 10), _order("web", 20))
    assert member(_order("pos", 10), _order("web", 91))  # the online order is outside the window
    assert not member(_order("pos", 90 + 1))
    assert member(_order("pos", 90))  # the window includes its first day


def test_reference_semantics_of_traits() -> None:
    facts = ProfileFacts(
        event_count=4, orders={"USD": (2, 9000), "EUR": (1, 500)}, channels=frozenset({"pos"})
    )
    assert matches(parse_rule({"trait": "order_count", "op": "=", "value": 3}), facts, NOW, ALIASES)
    assert matches(
        parse_rule({"trait": "order_count", "op": "=", "value": 2, "currency": "USD"}), facts, NOW, ALIASES
    )
    rich = {"trait": "lifetime_value", "op": ">=", "value": 9000, "currency": "USD"}
    assert matches(parse_rule(rich), facts, NOW, ALIASES)
    assert not matches(parse_rule({**rich, "currency": "EUR"}), facts, NOW, ALIASES)
    assert matches(parse_rule({"trait": "channels", "op": "contains", "value": "pos"}), facts, NOW, ALIASES)
    assert not matches(parse_rule({"trait": "event_count", "op": "<", "value": 4}), facts, NOW, ALIASES)
