"""Segments evaluated in SQL on both databases: in full when saved, incrementally when a profile's
orders and events arrive (through the real subscribers, de-duplicated by event id), and as time
passes (the windowed job under a fixed clock). Every membership change is an outbox event."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from omnicommerce.customers import identity, ingestion, profile
from omnicommerce.customers.models import customer_events
from omnicommerce.customers.segments import jobs, service, subscribers
from omnicommerce.customers.segments.schemas import SegmentCreate, SegmentUpdate
from omnicommerce.customers.subscribers import record_commerce_event
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.outbox import Envelope, Relay, handle_once, load_subscribers, outbox

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STORE_ONLY = {
    "all": [
        {"event": "order.placed", "where": {"channel": "pos"}, "within_days": 90},
        {"not": {"event": "order.placed", "where": {"channel": ["web", "app"]}, "within_days": 90}},
    ]
}
COMMERCE_CONSUMER = "segments.reevaluate-order-placed"


def _profile(db: Database, user_id: str) -> str:
    """A profile made the way trackers make them: an identify call naming the user."""
    with db.uow() as uow:
        result = ingestion.ingest(uow, SYSTEM, [{"type": "identify", "userId": user_id, "channel": "web"}])
        uow.commit()
    customer_id = result.results[0].customer_id
    assert customer_id is not None, result
    return customer_id


def _envelope(
    customer_id: str, *, channel: str, days_ago: int = 0, total: int = 5000, currency: str = "USD"
) -> Envelope:
    """An order.placed as the relay delivers it."""
    return Envelope(
        id=new_id("evt"),
        type="order.placed",
        version=1,
        subject="omni.orders.order.placed",
        occurred_at=NOW - timedelta(days=days_ago),
        payload={"customer_id": customer_id, "channel": channel, "currency": currency, "total": total},
    )


def _order(
    db: Database, customer_id: str, *, channel: str, days_ago: int, total: int = 5000, currency: str = "USD"
) -> Envelope:
    """An order.placed delivered to the segments subscriber."""
    env = _envelope(customer_id, channel=channel, days_ago=days_ago, total=total, currency=currency)
    assert handle_once(db, COMMERCE_CONSUMER, subscribers.reevaluate_after_commerce_event, env)
    return env


def _create(db: Database, name: str, rules: dict[str, Any]) -> str:
    with db.uow() as uow:
        segment = service.create_segment(uow, SYSTEM, SegmentCreate(name=name, rules=rules))
        uow.commit()
    return segment.id


def _members(db: Database, segment_id: str) -> set[str]:
    with db.uow(readonly=True) as uow:
        return {m.customer_id for m in service.list_members(uow, segment_id, after=None, limit=1000)}


def _membership_events(db: Database) -> list[tuple[str, str, str]]:
    """(type, segment id, customer id) of every membership event in the outbox, in order."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.type, outbox.c.payload)
            .where(outbox.c.type.like("segment.member_%"))
            .order_by(outbox.c.seq)
        )
        return [
            (r.type, *(lambda p: (p["segment_id"], p["customer_id"]))(orjson.loads(r.payload))) for r in rows
        ]


def test_store_only_buyers_are_found_when_the_segment_is_saved(db: Database) -> None:
    clock.set_clock(lambda: NOW)
    store_only, both, lapsed, never = (_profile(db, u) for u in ("u-store", "u-both", "u-lapsed", "u-never"))
    _order(db, store_only, channel="pos", days_ago=10)
    _order(db, both, channel="pos", days_ago=5)
    _order(db, both, channel="web", days_ago=3)
    _order(db, lapsed, channel="pos", days_ago=120)
    segment_id = _create(db, "Store-only buyers", STORE_ONLY)
    assert _members(db, segment_id) == {store_only}
    assert _membership_events(db) == [("segment.member_added", segment_id, store_only)]
    with db.uow(readonly=True) as uow:
        segment = service.get_segment(uow, segment_id)
        assert (segment.size, segment.windowed) == (1, True)
        assert [s.id for s in service.segments_of(uow, store_only)] == [segment_id]
        assert service.segments_of(uow, never) == []


def test_a_new_order_moves_a_profile_in_and_out_once_per_event(db: Database) -> None:
    clock.set_clock(lambda: NOW)
    ada, bob = _profile(db, "u-ada"), _profile(db, "u-bob")
    _order(db, ada, channel="pos", days_ago=1)
    segment_id = _create(db, "Store-only buyers", STORE_ONLY)
    assert _members(db, segment_id) == {ada}

    _order(db, bob, channel="pos", days_ago=0)  # bob joins on his first store purchase
    web = _order(db, ada, channel="web", days_ago=0)  # ada bought online: she leaves
    assert _members(db, segment_id) == {bob}
    # Redelivery of the same event changes nothing and emits nothing.
    assert not handle_once(db, COMMERCE_CONSUMER, subscribers.reevaluate_after_commerce_event, web)
    assert _membership_events(db) == [
        ("segment.member_added", segment_id, ada),
        ("segment.member_added", segment_id, bob),
        ("segment.member_removed", segment_id, ada),
    ]


def test_members_age_out_of_windowed_segments_when_the_job_runs(db: Database) -> None:
    clock.set_clock(lambda: NOW)
    ada, bob = _profile(db, "u-ada"), _profile(db, "u-bob")
    _order(db, ada, channel="pos", days_ago=85)
    _order(db, bob, channel="pos", days_ago=30)
    segment_id = _create(db, "Store-only buyers", STORE_ONLY)
    _create(db, "Big spenders", {"trait": "lifetime_value", "op": ">=", "value": 1, "currency": "USD"})
    assert _members(db, segment_id) == {ada, bob}

    clock.set_clock(lambda: NOW + timedelta(days=6))  # ada's store order is now 91 days old
    result = jobs.refresh_windowed_segments(db)
    assert (result.segments, result.added, result.removed) == (1, 0, 1)  # the unwindowed one is not re-run
    assert _members(db, segment_id) == {bob}
    assert _membership_events(db)[-1] == ("segment.member_removed", segment_id, ada)
    assert jobs.refresh_windowed_segments(db).removed == 0  # nothing more to age out


def test_trait_conditions_sum_a_profiles_orders_and_activity(db: Database) -> None:
    clock.set_clock(lambda: NOW)
    loyal, once, euro = _profile(db, "u-loyal"), _profile(db, "u-once"), _profile(db, "u-euro")
    _order(db, loyal, channel="web", days_ago=3, total=4000)
    _order(db, loyal, channel="pos", days_ago=2, total=7000)
    _order(db, once, channel="app", days_ago=1, total=20000)
    _order(db, euro, channel="web", days_ago=1, total=50000, currency="EUR")
    repeat = _create(db, "Repeat buyers", {"trait": "order_count", "op": ">=", "value": 2})
    high_usd = _create(
        db, "High value USD", {"trait": "lifetime_value", "op": ">", "value": 10000, "currency": "USD"}
    )
    in_store = _create(db, "Seen in store", {"trait": "channels", "op": "contains", "value": "pos"})
    busy = _create(db, "Busy", {"trait": "event_count", "op": ">=", "value": 3})  # identify + 2 orders
    assert _members(db, repeat) == {loyal}
    assert _members(db, high_usd) == {loyal, once}  # 11000 and 20000 USD; 50000 EUR is not USD
    assert _members(db, in_store) == {loyal}
    assert _members(db, busy) == {loyal}


def test_changing_the_rules_re_evaluates_everyone(db: Database) -> None:
    clock.set_clock(lambda: NOW)
    ada, bob = _profile(db, "u-ada"), _profile(db, "u-bob")
    _order(db, ada, channel="web", days_ago=1)
    segment_id = _create(db, "Online buyers", {"event": "order.placed", "where": {"channel": "web"}})
    assert _members(db, segment_id) == {ada}
    with db.uow() as uow:
        updated = service.update_segment(
            uow,
            SYSTEM,
            segment_id,
            SegmentUpdate(name="No orders", rules={"event": "Order Placed", "count": 0}),
        )
        uow.commit()
    assert (updated.version, updated.size, updated.windowed) == (2, 1, False)
    assert _members(db, segment_id) == {bob}
    assert _membership_events(db)[-2:] == [
        ("segment.member_removed", segment_id, ada),
        ("segment.member_added", segment_id, bob),
    ]


def test_merge_and_unmerge_move_memberships_with_the_accounts(db: Database) -> None:
    """Real identity resolution and the real relay: a store shopper known by phone and a web
    shopper known by email meet in one event and are merged; the survivor is now "seen in
    store" (traits are summed over accounts) and the merged profile leaves. Unmerging splits
    them back, memberships included."""
    clock.set_clock(lambda: NOW)
    relay = Relay(db)
    relay.subscribe_all(load_subscribers())
    in_store = _create(db, "Seen in store", {"trait": "channels", "op": "contains", "value": "pos"})
    web = _identify(db, {"email": "ada@example.com"}, channel="web")
    pos = _identify(db, {"phone": "+14155550100"}, channel="pos")
    relay.drain()
    assert _members(db, in_store) == {pos}
    both = _identify(db, {"email": "ada@example.com", "phone": "+14155550100"}, channel="web")
    assert both == web  # merged into the web profile
    relay.drain()
    assert _members(db, in_store) == {web}
    with db.uow(readonly=True) as uow:
        assert [s.id for s in service.segments_of(uow, pos)] == [in_store]  # read through its root
    with db.uow() as uow:
        identity.unmerge(uow, SYSTEM, pos)
        uow.commit()
    relay.drain()
    assert _members(db, in_store) == {pos}
    assert _membership_events(db) == [
        ("segment.member_added", in_store, pos),
        ("segment.member_removed", in_store, pos),
        ("segment.member_added", in_store, web),
        ("segment.member_removed", in_store, web),
        ("segment.member_added", in_store, pos),
    ]


def _identify(db: Database, traits: dict[str, str], *, channel: str) -> str:
    with db.uow() as uow:
        result = ingestion.ingest(uow, SYSTEM, [{"type": "identify", "traits": traits, "channel": channel}])
        uow.commit()
    customer_id = result.results[0].customer_id
    assert customer_id is not None, result
    return customer_id


def test_racing_evaluations_add_a_member_once_with_one_event(db: Database) -> None:
    """Eight deliveries of news about the same profile, racing a full re-evaluation of the
    segment: one membership row, one member_added event (conflict-safe writes, RETURNING)."""
    clock.set_clock(lambda: NOW)
    ada = _profile(db, "u-ada")
    segment_id = _create(db, "Store buyers", {"event": "order.placed", "where": {"channel": "pos"}})
    with db.uow() as uow:  # the order lands on the timeline without any evaluation yet
        record_commerce_event(uow, _envelope(ada, channel="pos"))
        uow.commit()
    barrier = threading.Barrier(9, timeout=60)  # a thread that fails early must not hang the rest
    errors: list[BaseException] = []

    def work(full: bool) -> None:
        try:
            with db.uow() as uow:
                if db.dialect == "postgresql":  # connected and in a transaction: the race starts level
                    uow.conn.exec_driver_sql("SELECT 1")  # (SQLite's BEGIN IMMEDIATE would queue here)
                barrier.wait()
                if full:
                    service.evaluate_segment(uow, segment_id)
                else:
                    service.reevaluate_customers(uow, [ada])
                uow.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i == 0,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _members(db, segment_id) == {ada}
    assert _membership_events(db) == [("segment.member_added", segment_id, ada)]


def test_an_anonymous_sale_touches_no_segment(db: Database) -> None:
    clock.set_clock(lambda: NOW)
    segment_id = _create(db, "Anyone without orders", {"event": "order.placed", "count": 0})
    walk_in = _envelope("", channel="pos")
    assert handle_once(db, COMMERCE_CONSUMER, subscribers.reevaluate_after_commerce_event, walk_in)
    with db.engine.connect() as conn:
        assert conn.execute(select(customer_events.c.id)).first() is None  # nothing on any timeline
    assert _members(db, segment_id) == set() and _membership_events(db) == []


def test_the_customer_360_lists_the_segments_of_the_profile(db: Database) -> None:
    clock.set_clock(lambda: NOW)
    ada, bob = _profile(db, "u-ada"), _profile(db, "u-bob")
    _order(db, ada, channel="pos", days_ago=3)
    segment_id = _create(db, "Store buyers", {"event": "order.placed", "where": {"channel": "pos"}})
    with db.uow(readonly=True) as uow:
        ada_profile = profile.get_profile(uow, SYSTEM, ada)
        bob_profile = profile.get_profile(uow, SYSTEM, bob)
    assert [(s.id, s.name) for s in ada_profile.segments] == [(segment_id, "Store buyers")]
    assert bob_profile.segments == []
