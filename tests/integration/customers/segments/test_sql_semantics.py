"""The SQL a rule compiles to answers exactly what the rule language means: for random rules
(Hypothesis) over a varied set of profiles, the members the database finds are the profiles the
pure reference (``domain.matches``) accepts, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from omnicommerce.customers import ingestion
from omnicommerce.customers.segments import repository as repo
from omnicommerce.customers.segments import subscribers
from omnicommerce.customers.segments.domain import (
    COMPARISONS,
    EventFact,
    ProfileFacts,
    matches,
    parse_rule,
)
from omnicommerce.customers.segments.service import EVENT_ALIASES
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.outbox import Envelope, handle_once

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CHANNELS = ["web", "app", "pos"]
NAMES = ["Product Viewed", "Store Visit"]
CATEGORIES = ["shoes", "bags", "42"]
SIZES = [38, 42, "42", True, 4.5, None]  # only strings and integers take part in property filters
ODD_TEXTS = ["1", "true", "4.5", "None", "null"]  # how other values might read as text: never matches


def _dataset(db: Database, profiles: int = 12) -> dict[str, ProfileFacts]:
    """Profiles with tracked events and orders in several channels, times and currencies; the
    facts are kept as sent, independently of what the database stores."""
    rnd = random.Random(20260601)
    facts: dict[str, ProfileFacts] = {}
    for n in range(profiles):
        events: list[dict[str, Any]] = [
            {"type": "identify", "userId": f"user-{n}", "channel": "web", "timestamp": NOW.isoformat()},
            # Every kind of property value is present somewhere, whatever the random draws.
            {
                "type": "track",
                "event": "Size Picked",
                "userId": f"user-{n}",
                "properties": {"size": SIZES[n % 6]},
            },
        ]
        for _ in range(rnd.randint(0, 4)):
            at = NOW - timedelta(days=rnd.randint(0, 200))
            channel = rnd.choice([*CHANNELS, None])
            events.append(
                {
                    "type": "track",
                    "event": rnd.choice(NAMES),
                    "userId": f"user-{n}",
                    "timestamp": at.isoformat(),
                    "properties": {"category": rnd.choice(CATEGORIES), "size": rnd.choice(SIZES)},
                }
                | ({"channel": channel} if channel else {})
            )
        with db.uow() as uow:
            result = ingestion.ingest(uow, SYSTEM, events)
            uow.commit()
        customer_id = result.results[0].customer_id
        assert customer_id and result.accepted == len(events)
        seen = [
            EventFact(
                e.get("event"),
                e["type"],
                e.get("channel"),
                SYSTEM.id,
                datetime.fromisoformat(e["timestamp"]) if "timestamp" in e else NOW,
                e.get("properties", {}),
            )
            for e in events
        ]
        orders: dict[str, tuple[int, int]] = {}
        for _ in range(rnd.randint(0, 3)):
            channel, currency = rnd.choice(CHANNELS), rnd.choice(["USD", "EUR"])
            total, at = rnd.randint(100, 20000), NOW - timedelta(days=rnd.randint(0, 200))
            props = _deliver_order(db, customer_id, channel, currency, total, at)
            seen.append(EventFact("Order Placed", "track", channel, "orders", at, props))
            count, value = orders.get(currency, (0, 0))
            orders[currency] = (count + 1, value + total)
        facts[customer_id] = ProfileFacts(
            event_count=len(seen),
            orders=orders,
            channels=frozenset(e.channel for e in seen if e.channel),
            events=seen,
        )
    return facts


def _deliver_order(
    db: Database, customer_id: str, channel: str, currency: str, total: int, at: datetime
) -> dict[str, Any]:
    """Deliver an order.placed to the segments subscriber; returns its properties on the timeline."""
    payload = {"customer_id": customer_id, "channel": channel, "currency": currency, "total": total}
    env = Envelope(new_id("evt"), "order.placed", 1, "omni.orders.order.placed", at, payload)
    handle_once(db, "segments.reevaluate-order-placed", subscribers.reevaluate_after_commerce_event, env)
    return payload


_counts = st.sampled_from([">=1", "=0", "<2", ">=2", 0, 1, "!=1", ">0", "<=1", "3"])
_where = st.dictionaries(
    st.sampled_from(
        ["channel", "type", "source", "properties.category", "properties.size", "properties.currency"]
    ),
    st.sampled_from(
        ["web", "pos", "app", "track", "identify", "orders", "system", "USD", "shoes", "42", "38"]
    )
    | st.lists(st.sampled_from([*CHANNELS, *CATEGORIES, "EUR", *ODD_TEXTS]), min_size=1, max_size=2),
    max_size=2,
)
_event = st.fixed_dictionaries(
    {"event": st.sampled_from(["*", "order.placed", "Order Placed", *NAMES])},
    optional={"where": _where, "within_days": st.integers(1, 200), "count": _counts},
)
_trait = st.one_of(
    st.fixed_dictionaries(
        {
            "trait": st.sampled_from(["event_count", "order_count"]),
            "op": st.sampled_from(COMPARISONS),
            "value": st.integers(0, 6),
        }
    ),
    st.fixed_dictionaries(
        {
            "trait": st.just("lifetime_value"),
            "op": st.sampled_from(COMPARISONS),
            "value": st.integers(0, 30000),
            "currency": st.sampled_from(["USD", "EUR"]),
        }
    ),
    st.fixed_dictionaries(
        {"trait": st.just("channels"), "op": st.just("contains"), "value": st.sampled_from(CHANNELS)}
    ),
)
RULES = st.recursive(
    st.one_of(_event, _trait),
    lambda inner: st.one_of(
        st.builds(lambda r: {"not": r}, inner),
        st.builds(lambda rs: {"all": rs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda rs: {"any": rs}, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=6,
)


def test_sql_members_equal_the_reference_semantics(db: Database) -> None:
    clock.set_clock(lambda: NOW)
    facts = _dataset(db)

    def agree(doc: dict[str, Any]) -> None:
        rule = parse_rule(doc)
        expected = {cid for cid, f in facts.items() if matches(rule, f, NOW, EVENT_ALIASES)}
        with db.uow(readonly=True) as uow:
            predicate = repo.condition(rule, now=NOW, aliases=EVENT_ALIASES, dialect=uow.dialect)
            found = set(uow.conn.execute(repo.matching(predicate)).scalars())
            assert repo.count_matching(uow.conn, predicate) == len(expected)
        assert found == expected, doc

    settings(max_examples=150, deadline=None, database=None)(given(RULES)(agree))()
    # Property values that are neither strings nor integers, on both databases, explicitly.
    for odd in ODD_TEXTS:
        agree({"event": "*", "where": {"properties.size": odd}})
    # The data is varied enough for the comparison to mean something: these rules split profiles.
    for splitting in (
        {"event": "order.placed", "where": {"channel": "pos"}},
        {"event": "*", "where": {"properties.size": "42"}},  # the integer 42 and the string "42"
        {"event": "order.placed", "where": {"properties.currency": "EUR"}},
    ):
        rule = parse_rule(splitting)
        assert 0 < sum(matches(rule, f, NOW, EVENT_ALIASES) for f in facts.values()) < len(facts)
        agree(splitting)
