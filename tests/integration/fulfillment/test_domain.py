"""The pure rules (no database; kept here beside the flows they decide): the state machine table,
pickup codes, rule filters, same-day slots, refunds of returns, the ship-to point."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import product

import pytest

from omnicommerce.fulfillment.domain import (
    DONE,
    TRANSITIONS,
    Action,
    Filters,
    FoLine,
    FulfillmentOrder,
    Hours,
    IllegalTransition,
    Kind,
    Site,
    Slot,
    Status,
    bookable_slots,
    code_matches,
    is_expired,
    next_status,
    qr_payload,
    refund_for,
    rejection_reason,
    returnable,
    ship_to_point,
)

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_done_states_are_terminal_and_everything_unlisted_is_illegal() -> None:
    for kind, status, action in product(Kind, Status, Action):
        if (status, action) in TRANSITIONS[kind]:
            assert next_status(kind, status, action) == TRANSITIONS[kind][(status, action)]
            assert status not in DONE
        else:
            with pytest.raises(IllegalTransition):
                next_status(kind, status, action)


def test_each_kind_reaches_the_customer_only_its_own_way() -> None:
    def reachable(kind: Kind) -> set[Status]:
        seen, todo = {Status.PENDING}, [Status.PENDING]
        while todo:
            here = todo.pop()
            for (src, _), dst in TRANSITIONS[kind].items():
                if src == here and dst not in seen:
                    seen.add(dst)
                    todo.append(dst)
        return seen

    assert Status.DELIVERED in reachable(Kind.SHIP) and Status.PICKED_UP not in reachable(Kind.SHIP)
    assert Status.PICKED_UP in reachable(Kind.PICKUP) and Status.SHIPPED not in reachable(Kind.PICKUP)
    assert reachable(Kind.SAME_DAY) == reachable(Kind.SHIP)


def _pickup(
    code: str | None, expires: datetime | None, status: Status = Status.READY_FOR_PICKUP
) -> FulfillmentOrder:
    return FulfillmentOrder(
        "ful_1", "ord_1", "OC-1", "web", None, "store-1", Kind.PICKUP, status, 3, (FoLine("A", 1),), False,
        None, None, code, expires, None, None, None, None, None, None, NOON, NOON,
    )  # fmt: skip


def test_pickup_codes_and_expiry() -> None:
    fo = _pickup("K7M2QX", NOON + timedelta(hours=1))
    assert code_matches(fo, "k7m 2qx") and code_matches(fo, qr_payload("ful_1", "K7M2QX"))
    assert not code_matches(fo, "K7M2QY") and not code_matches(fo, qr_payload("ful_2", "K7M2QX"))
    assert not code_matches(_pickup(None, None), "K7M2QX")
    assert not is_expired(fo, NOON) and is_expired(fo, NOON + timedelta(hours=1))
    assert not is_expired(_pickup("K7M2QX", NOON, Status.PICKED_UP), NOON + timedelta(days=9))


def _site(**kw: object) -> Site:
    base: dict[str, object] = {
        "id": "store-1",
        "kind": "store",
        "active": True,
        "capabilities": frozenset({"ship"}),
        "lat": 40.75,
        "lon": -73.99,
        "visible_to_channel": True,
    }
    return Site(**{**base, **kw})  # type: ignore[arg-type]


def test_rule_filters_say_why() -> None:
    f = Filters(max_distance_km=10, opening_hours={"store": Hours(time(9), time(21))})
    near = (40.75, -73.99)
    assert rejection_reason(_site(), f, ship_to=near, now=NOON) is None
    assert rejection_reason(_site(active=False), f, ship_to=near, now=NOON) == "location inactive"
    assert (
        rejection_reason(_site(capabilities=frozenset()), f, ship_to=near, now=NOON)
        == "lacks capability 'ship'"
    )
    assert (
        rejection_reason(_site(visible_to_channel=False), f, ship_to=near, now=NOON)
        == "not eligible for this channel"
    )
    assert (
        rejection_reason(_site(), f, ship_to=near, now=NOON, also_excluded=frozenset({"store-1"}))
        == "excluded"
    )
    assert "closed now" in str(rejection_reason(_site(), f, ship_to=near, now=NOON.replace(hour=22)))
    assert "beyond 10 km" in str(rejection_reason(_site(), f, ship_to=(34.05, -118.24), now=NOON))
    assert (
        rejection_reason(_site(kind="dc"), f, ship_to=(34.05, -118.24), now=NOON) is None
    )  # DCs ship anywhere
    assert Hours(time(22), time(6)).is_open(time(23)) and not Hours(time(22), time(6)).is_open(time(12))


def test_same_day_slots_close_at_the_cutoff_and_when_they_begin() -> None:
    slots = [Slot(time(12), time(14), 5), Slot(time(16), time(18), 5)]
    assert bookable_slots(NOON.replace(hour=10), time(15), slots) == slots
    assert bookable_slots(NOON, time(15), slots) == slots[1:]  # the noon slot has begun
    assert bookable_slots(NOON.replace(hour=15), time(15), slots) == []


def test_refunds_and_what_can_come_back() -> None:
    paid = {"A": (2997, 3), "B": (1000, 3)}  # B had a discount spread over 3 units
    assert refund_for({"A": 2, "B": 1}, paid) == 1998 + 333
    assert returnable({"A": 3, "B": 1}, {"A": 1, "B": 1}) == {"A": 2}


def test_ship_to_point_from_zones_or_a_location_sharing_the_postal_code() -> None:
    zones = {"100": (40.7, -74.0), "1000": (40.75, -73.99)}
    assert ship_to_point("10001", zones, []) == (40.75, -73.99)  # the longest prefix
    assert ship_to_point("11201", {}, [("11205", 40.65, -73.95), ("90001", 34.0, -118.0)]) == (40.65, -73.95)
    assert ship_to_point("60601", {}, [("90001", 34.0, -118.0)]) is None
    assert ship_to_point(None, zones, []) is None
