"""Segment rules as data: a small JSON language over computed traits and event history.

A rule is one of
- ``{"all": [rule, ...]}`` / ``{"any": [rule, ...]}`` — every / at least one part holds;
- ``{"not": rule}``;
- ``{"trait": "order_count", "op": ">=", "value": 2}`` — a computed trait compared with a value
  (``lifetime_value`` and, optionally, ``order_count`` take a ``currency``; ``channels`` takes
  ``op: "contains"`` and a channel);
- ``{"event": "order.placed", "where": {"channel": "pos"}, "within_days": 90, "count": ">=1"}`` —
  how many of the profile's events match (``"*"`` is any event; ``where`` values may be lists).

Parsing collects every problem with its path, so a marketer fixes a rule in one round trip.
Pure Python: evaluation is compiled to SQL by the repository, and :func:`matches` is the same
semantics over in-memory facts (the reference the SQL is tested against).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias

from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound

COMPARISONS = ("=", "!=", ">", ">=", "<", "<=")
NUMERIC_TRAITS = ("event_count", "order_count", "lifetime_value")
CURRENCY_TRAITS = ("order_count", "lifetime_value")  # may (order_count) or must (lifetime_value) name one
SET_TRAITS = ("channels",)
EVENT_FILTERS = ("channel", "type", "source")  # customer event columns a ``where`` may test
PROPERTY_PREFIX = "properties."  # ``where: {"properties.category": "shoes"}`` tests an event property
_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
ANY_EVENT = "*"
MAX_CONDITIONS = 50
MAX_DEPTH = 6
MAX_WINDOW_DAYS = 3650
_COUNT = re.compile(r"^\s*(>=|<=|!=|==|=|>|<)?\s*(\d{1,9})\s*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class InvalidSegmentRule(InvalidInput):
    code = "invalid-segment-rule"
    title = "Invalid segment rule"


class SegmentNotFound(NotFound):
    code = "segment-not-found"
    title = "Segment not found"


class SegmentNameTaken(Conflict):
    code = "segment-name-taken"
    title = "Segment name already in use"


Comparison = Literal["=", "!=", ">", ">=", "<", "<="]


@dataclass(frozen=True, slots=True)
class TraitCondition:
    trait: str
    op: str  # a comparison, or "contains" for channels
    value: int | str
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class EventCondition:
    event: str  # a track name ("Order Placed"), a published type ("order.placed") or "*"
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    within_days: int | None = None
    op: Comparison = ">="
    count: int = 1


@dataclass(frozen=True, slots=True)
class Not:
    rule: Rule


@dataclass(frozen=True, slots=True)
class Group:
    kind: Literal["all", "any"]
    rules: tuple[Rule, ...]


Rule: TypeAlias = TraitCondition | EventCondition | Not | Group


def compare(left: int, op: str, right: int) -> bool:
    return {
        "=": left == right,
        "!=": left != right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[op]


# --- parsing -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Parser:
    errors: list[dict[str, str]] = field(default_factory=list)
    conditions: int = 0

    def fail(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "message": message})

    def rule(self, doc: Any, path: str, depth: int) -> Rule | None:
        if depth > MAX_DEPTH:
            self.fail(path, f"rules nest at most {MAX_DEPTH} levels deep")
            return None
        if not isinstance(doc, Mapping) or not doc:
            self.fail(path, "a rule is an object with one of all, any, not, trait or event")
            return None
        kinds = [k for k in ("all", "any", "not", "trait", "event") if k in doc]
        if len(kinds) != 1:
            self.fail(path, "a rule has exactly one of all, any, not, trait or event")
            return None
        kind = kinds[0]
        if kind in ("all", "any"):
            return self.group(doc, "all" if kind == "all" else "any", path, depth)
        if kind == "not":
            self.unknown_keys(doc, {"not"}, path)
            inner = self.rule(doc["not"], f"{path}.not", depth + 1)
            return Not(inner) if inner is not None else None
        self.conditions += 1
        if self.conditions == MAX_CONDITIONS + 1:
            self.fail(path, f"a segment has at most {MAX_CONDITIONS} conditions")
        return self.trait(doc, path) if kind == "trait" else self.event(doc, path)

    def group(
        self, doc: Mapping[str, Any], kind: Literal["all", "any"], path: str, depth: int
    ) -> Rule | None:
        self.unknown_keys(doc, {kind}, path)
        parts = doc[kind]
        if not isinstance(parts, list) or not parts:
            self.fail(f"{path}.{kind}", f"'{kind}' takes a non-empty list of rules")
            return None
        rules = [self.rule(p, f"{path}.{kind}[{i}]", depth + 1) for i, p in enumerate(parts)]
        kept = tuple(r for r in rules if r is not None)
        return Group(kind, kept) if len(kept) == len(rules) else None

    def trait(self, doc: Mapping[str, Any], path: str) -> Rule | None:
        self.unknown_keys(doc, {"trait", "op", "value", "currency"}, path)
        name, op, value, currency = doc.get("trait"), doc.get("op"), doc.get("value"), doc.get("currency")
        if name in SET_TRAITS:
            if op != "contains" or not isinstance(value, str) or not value:
                self.fail(path, f"trait '{name}' takes op 'contains' and a channel name as value")
                return None
            return TraitCondition(name, "contains", value)
        if name not in NUMERIC_TRAITS:
            known = ", ".join((*NUMERIC_TRAITS, *SET_TRAITS))
            self.fail(f"{path}.trait", f"unknown trait {name!r}; known traits: {known}")
            return None
        if op not in COMPARISONS:
            self.fail(f"{path}.op", f"op must be one of {', '.join(COMPARISONS)}")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{path}.value", f"trait '{name}' compares with an integer (money in minor units)")
            return None
        if currency is not None and (name not in CURRENCY_TRAITS or not _is_currency(currency)):
            self.fail(f"{path}.currency", "currency is an ISO 4217 code, for order_count or lifetime_value")
            return None
        if name == "lifetime_value" and currency is None:
            self.fail(f"{path}.currency", "lifetime_value needs a currency (amounts are never mixed)")
            return None
        return TraitCondition(name, op, value, currency)

    def event(self, doc: Mapping[str, Any], path: str) -> Rule | None:
        self.unknown_keys(doc, {"event", "where", "within_days", "count"}, path)
        name = doc.get("event")
        ok = isinstance(name, str) and 1 <= len(name) <= 200
        if not ok:
            self.fail(f"{path}.event", "event is an event name (1 to 200 characters) or '*'")
        where = self.where(doc.get("where", {}), f"{path}.where")
        days = doc.get("within_days")
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_WINDOW_DAYS
        ):
            self.fail(f"{path}.within_days", f"within_days is a whole number of days, 1 to {MAX_WINDOW_DAYS}")
            ok = False
        count = self.count(doc.get("count", ">=1"), f"{path}.count")
        if not ok or where is None or count is None:
            return None
        return EventCondition(str(name), where, days, count[0], count[1])

    def where(self, doc: Any, path: str) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
        if not isinstance(doc, Mapping):
            self.fail(path, f"where is an object of {', '.join(EVENT_FILTERS)} or properties.<name>")
            return None
        filters = []
        for key, value in sorted(doc.items()):
            values = value if isinstance(value, list) else [value]
            if key not in EVENT_FILTERS and property_name(key) is None:
                known = ", ".join(EVENT_FILTERS)
                self.fail(
                    f"{path}.{key}", f"events can be filtered by {known} or properties.<name> (A-Z a-z 0-9 _)"
                )
            elif not values or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in values):
                self.fail(f"{path}.{key}", "a filter value is a string or a non-empty list of strings")
            else:
                filters.append((key, tuple(sorted(set(values)))))
        return tuple(filters) if len(filters) == len(doc) else None

    def count(self, doc: Any, path: str) -> tuple[Comparison, int] | None:
        if isinstance(doc, int) and not isinstance(doc, bool) and doc >= 0:
            return "=", doc  # a bare number is exact: "count": 0 means never
        found = _COUNT.match(doc) if isinstance(doc, str) else None
        if found is None:
            self.fail(path, "count is a comparison with a whole number, such as '>=1', '=0' or '<3'")
            return None
        op = found.group(1) or "="
        return ("=" if op == "==" else op), int(found.group(2))  # type: ignore[return-value]

    def unknown_keys(self, doc: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in sorted(set(doc) - allowed):
            self.fail(f"{path}.{key}", f"unknown key {key!r} (allowed here: {', '.join(sorted(allowed))})")


def property_name(key: str) -> str | None:
    """The property a ``properties.<name>`` filter tests (None for any other key)."""
    if not key.startswith(PROPERTY_PREFIX):
        return None
    name = key[len(PROPERTY_PREFIX) :]
    return name if _PROPERTY_NAME.match(name) else None


def property_text(value: Any) -> str | None:
    """How a property filter sees a value: strings as they are, integers as decimal text, anything
    else (booleans, floats, objects, missing) matches no filter."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _is_currency(value: Any) -> bool:
    return isinstance(value, str) and _CURRENCY.match(value) is not None


def parse_rule(doc: Any) -> Rule:
    """The rule a JSON document describes; :class:`InvalidSegmentRule` lists every problem."""
    parser = _Parser()
    rule = parser.rule(doc, "rules", 1)
    if parser.errors or rule is None:
        summary = "; ".join(f"{e['path']}: {e['message']}" for e in parser.errors[:5])
        raise InvalidSegmentRule(summary or "invalid rule", errors=parser.errors)
    return rule


def is_windowed(rule: Rule) -> bool:
    """Whether membership can change by time passing alone (a ``within_days`` condition)."""
    if isinstance(rule, EventCondition):
        return rule.within_days is not None
    if isinstance(rule, Not):
        return is_windowed(rule.rule)
    if isinstance(rule, Group):
        return any(is_windowed(r) for r in rule.rules)
    return False


def window_start(condition: EventCondition, now: datetime) -> datetime | None:
    return None if condition.within_days is None else now - timedelta(days=condition.within_days)


# --- reference semantics -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFact:
    name: str | None
    type: str
    channel: str | None
    source: str
    timestamp: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """What a rule can see of one profile (summed over its merged accounts)."""

    event_count: int = 0
    orders: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # currency → (count, value)
    channels: frozenset[str] = frozenset()
    events: Sequence[EventFact] = ()


def event_names(condition: EventCondition, aliases: Mapping[str, str]) -> tuple[str, ...] | None:
    """The stored names an event condition matches (``None``: any event). A published event type
    (``order.placed``) also matches the track name it is recorded under (``Order Placed``)."""
    if condition.event == ANY_EVENT:
        return None
    alias = aliases.get(condition.event)
    return (condition.event, alias) if alias else (condition.event,)


def matches(rule: Rule, facts: ProfileFacts, now: datetime, aliases: Mapping[str, str]) -> bool:
    if isinstance(rule, Group):
        parts = (matches(r, facts, now, aliases) for r in rule.rules)
        return all(parts) if rule.kind == "all" else any(parts)
    if isinstance(rule, Not):
        return not matches(rule.rule, facts, now, aliases)
    if isinstance(rule, TraitCondition):
        return _trait_matches(rule, facts)
    return compare(_event_count(rule, facts, now, aliases), rule.op, rule.count)


def _trait_matches(rule: TraitCondition, facts: ProfileFacts) -> bool:
    if rule.trait == "channels":
        return rule.value in facts.channels
    if rule.trait == "event_count":
        actual = facts.event_count
    else:
        index = 0 if rule.trait == "order_count" else 1
        actual = sum(f[index] for cur, f in facts.orders.items() if rule.currency in (None, cur))
    return compare(actual, rule.op, int(rule.value))


def _event_count(rule: EventCondition, facts: ProfileFacts, now: datetime, aliases: Mapping[str, str]) -> int:
    names = event_names(rule, aliases)
    since = window_start(rule, now)
    filters = dict(rule.where)
    return sum(
        1
        for e in facts.events
        if (names is None or e.name in names)
        and (since is None or e.timestamp >= since)
        and all(_event_field(e, key) in values for key, values in filters.items())
    )


def _event_field(event: EventFact, key: str) -> str | None:
    name = property_name(key)
    if name is not None:
        return property_text(event.properties.get(name))
    value: str | None = getattr(event, key)
    return value
