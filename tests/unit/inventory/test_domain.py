"""Pure inventory rules: ATP, the hold state machine, planning — with Hypothesis over operation
sequences on an in-memory model that applies plans the way the database does."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnicommerce.inventory.domain import (
    HOLD_TRANSITIONS,
    RESERVING_STATES,
    ChannelRule,
    Hold,
    HoldAction,
    HoldState,
    IllegalHoldTransition,
    InsufficientStock,
    InvalidNear,
    LocationInfo,
    StockPosition,
    Strategy,
    atp,
    credit,
    eligible_locations,
    haversine_km,
    next_state,
    parse_near,
    plan_holds,
    rebalance,
    units_by_row,
)

LOCS = ["dc-east", "store-007", "store-008"]
SKUS = ["a", "b", "c"]
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_state_machine_is_exactly_the_table() -> None:
    for state in HoldState:
        for action in HoldAction:
            if (state, action) in HOLD_TRANSITIONS:
                assert next_state(state, action) == HOLD_TRANSITIONS[(state, action)]
            else:
                with pytest.raises(IllegalHoldTransition):
                    next_state(state, action)
    assert {s for s, _ in HOLD_TRANSITIONS} == {HoldState.HELD, HoldState.COMMITTED}


def test_only_a_cancel_gives_committed_units_back_and_only_once() -> None:
    assert next_state(HoldState.COMMITTED, HoldAction.CANCEL) is HoldState.RELEASED
    for action in (HoldAction.COMMIT, HoldAction.RELEASE, HoldAction.EXPIRE):
        with pytest.raises(IllegalHoldTransition):
            next_state(HoldState.COMMITTED, action)
    with pytest.raises(IllegalHoldTransition):
        next_state(HoldState.HELD, HoldAction.CANCEL)  # a cart's hold is released, not cancelled
    with pytest.raises(IllegalHoldTransition) as err:
        next_state(HoldState.RELEASED, HoldAction.CANCEL)  # cancelling twice
    assert err.value.status == 409 and err.value.code == "illegal-hold-transition"


@given(st.lists(st.sampled_from(list(HoldAction)), max_size=8))
def test_a_hold_gives_its_units_back_at_most_once(actions: list[HoldAction]) -> None:
    """Whatever actions are tried, in any order: the legal ones walk the table, and a hold leaves
    the reserving states at most once (so ``reserved`` falls by its units at most once)."""
    state, given_back = HoldState.HELD, 0
    for action in actions:
        try:
            after = next_state(state, action)
        except IllegalHoldTransition:
            assert (state, action) not in HOLD_TRANSITIONS
            continue
        assert HOLD_TRANSITIONS[(state, action)] is after
        given_back += state in RESERVING_STATES and after not in RESERVING_STATES
        state = after
    assert given_back <= 1
    assert (state in RESERVING_STATES) == (given_back == 0)


def test_atp_is_never_shown_negative() -> None:
    p = StockPosition("a", "dc-east", on_hand=2, reserved=5, safety_stock=1)
    assert atp(p) == 0
    assert atp(StockPosition("a", "dc-east", 10, 3, 2), buffer=2) == 3


def test_plan_prefers_most_atp_then_id_and_splits() -> None:
    positions = [
        StockPosition("a", "store-007", 3, 0),
        StockPosition("a", "dc-east", 3, 0),
        StockPosition("a", "store-008", 5, 0),
    ]
    plans = plan_holds({"a": 7}, positions, Strategy(frozenset(LOCS)))
    assert [(p.location_id, p.quantity) for p in plans] == [("dc-east", 2), ("store-008", 5)]


def test_plan_reports_every_shortage() -> None:
    positions = [StockPosition("a", "dc-east", 3, 1), StockPosition("b", "dc-east", 1, 0, 1)]
    with pytest.raises(InsufficientStock) as err:
        plan_holds({"a": 3, "b": 1, "c": 2}, positions, Strategy(frozenset(LOCS)))
    assert err.value.shortages == {"a": 1, "b": 1, "c": 2}
    assert err.value.status == 409 and err.value.code == "insufficient-stock"


def test_plan_respects_eligibility_and_buffer() -> None:
    positions = [StockPosition("a", "dc-east", 10, 0), StockPosition("a", "store-007", 4, 0)]
    plans = plan_holds({"a": 2}, positions, Strategy(frozenset({"store-007"}), buffer=2))
    assert [(p.location_id, p.quantity) for p in plans] == [("store-007", 2)]
    with pytest.raises(InsufficientStock):
        plan_holds({"a": 3}, positions, Strategy(frozenset({"store-007"}), buffer=2))


def test_eligible_locations_combine_rule_capability_and_choice() -> None:
    locs = [
        LocationInfo("dc-east", "dc", "DC", frozenset({"ship"}), None, None, ""),
        LocationInfo("store-007", "store", "S7", frozenset({"ship", "pickup"}), None, None, ""),
        LocationInfo("store-008", "store", "S8", frozenset({"pickup"}), None, None, "", active=False),
    ]
    assert eligible_locations(locs, ChannelRule("web"), "ship", None) == {"dc-east", "store-007"}
    assert eligible_locations(locs, ChannelRule("web", frozenset({"store-007"})), "ship", None) == {
        "store-007"
    }
    assert eligible_locations(locs, ChannelRule("web"), "pickup", "store-007") == {"store-007"}
    assert eligible_locations(locs, ChannelRule("web"), "pickup", "store-008") == frozenset()


def test_rebalance_keeps_what_fits_and_moves_the_rest() -> None:
    held = [
        Hold("h1", "c", "a", "dc-east", 2, HoldState.HELD, T0),
        Hold("h2", "c", "a", "store-007", 1, HoldState.HELD, T0),
        Hold("h3", "c", "b", "dc-east", 3, HoldState.HELD, T0),
    ]
    r = rebalance(held, {"a": 2, "b": 4}, frozenset({"dc-east"}))
    assert [h.id for h in r.keep] == ["h1", "h3"]
    assert [h.id for h in r.release] == ["h2"]
    assert r.missing == {"b": 1}


def test_haversine_and_near() -> None:
    assert haversine_km((40.71, -74.0), (40.71, -74.0)) == 0
    assert 300 < haversine_km((40.71, -74.0), (42.36, -71.06)) < 320
    assert parse_near("42.3,-71.1") == (42.3, -71.1)
    for bad in ["", "1", "a,b", "91,0", "1,2,3", "nan,1"]:
        with pytest.raises(InvalidNear):
            parse_near(bad)


# --- property-based: operation sequences on a model that mirrors the SQL ---------------------------


class Model:
    """Stock rows and holds; reservations apply a plan only if every row's conditional passes,
    exactly as ``try_reserve`` does."""

    def __init__(self) -> None:
        self.rows = {(s, loc): StockPosition(s, loc, 0, 0) for s in SKUS for loc in LOCS}
        self.holds: dict[str, Hold] = {}
        self.seq = 0

    def owner_holds(self, owner: str) -> list[Hold]:
        return [h for h in self.holds.values() if h.owner_id == owner and h.state is HoldState.HELD]

    def reserve(self, owner: str, demand: dict[str, int], buffer: int) -> None:
        mine = self.owner_holds(owner)
        moves = rebalance(mine, demand, frozenset(LOCS))
        positions = credit(self.rows.values(), units_by_row(moves.release))
        plans = plan_holds(moves.missing, positions, Strategy(frozenset(LOCS), buffer))
        deltas = units_by_row(plans)
        for k, n in units_by_row(moves.release).items():
            deltas[k] = deltas.get(k, 0) - n
        for k, d in deltas.items():  # the conditional UPDATE: refuse the whole thing if one row fails
            p = self.rows[k]
            assert d <= 0 or atp(p, buffer) >= d, "plan promised units the row does not have"
        for k, d in deltas.items():
            self.rows[k] = replace(self.rows[k], reserved=self.rows[k].reserved + d)
        for h in moves.release:
            self.holds[h.id] = replace(h, state=next_state(h.state, HoldAction.RELEASE))
        for plan in plans:
            self.seq += 1
            hid = f"h{self.seq}"
            self.holds[hid] = Hold(hid, owner, plan.sku, plan.location_id, plan.quantity, HoldState.HELD, T0)

    def finish(self, owner: str, action: HoldAction) -> None:
        self.seq += 1
        order = f"ord-{self.seq}" if action is HoldAction.COMMIT else None
        for h in self.owner_holds(owner):
            self.holds[h.id] = replace(h, state=next_state(h.state, action), order_id=order)
            if action is not HoldAction.COMMIT:
                k = h.key
                self.rows[k] = replace(self.rows[k], reserved=self.rows[k].reserved - h.quantity)

    def orders(self) -> list[str]:
        return sorted({h.order_id for h in self.holds.values() if h.order_id is not None})

    def cancel(self, order: str) -> dict[tuple[str, str], int]:
        """What ``release_allocations`` does: the order's committed holds → released, once."""
        given_back = units_by_row(
            h for h in self.holds.values() if h.order_id == order and h.state is HoldState.COMMITTED
        )
        for h in list(self.holds.values()):
            if h.order_id == order and h.state is HoldState.COMMITTED:
                self.holds[h.id] = replace(h, state=next_state(h.state, HoldAction.CANCEL))
        for k, n in given_back.items():
            self.rows[k] = replace(self.rows[k], reserved=self.rows[k].reserved - n)
        return given_back

    def receive(self, sku: str, loc: str, n: int) -> None:
        self.rows[(sku, loc)] = replace(self.rows[(sku, loc)], on_hand=self.rows[(sku, loc)].on_hand + n)

    def count(self, sku: str, loc: str, n: int) -> None:
        self.rows[(sku, loc)] = replace(self.rows[(sku, loc)], on_hand=n)

    def check(self) -> None:
        reserving = {HoldState.HELD, HoldState.COMMITTED}
        active = units_by_row(h for h in self.holds.values() if h.state in reserving)
        for k, p in self.rows.items():
            assert p.reserved >= 0
            assert atp(p) >= 0
            assert p.reserved == active.get(k, 0), "reserved drifted from the holds"


owners = st.sampled_from(["cart-1", "cart-2", "cart-3"])
ops = st.one_of(
    st.tuples(st.just("receive"), st.sampled_from(SKUS), st.sampled_from(LOCS), st.integers(1, 5)),
    st.tuples(st.just("count"), st.sampled_from(SKUS), st.sampled_from(LOCS), st.integers(0, 5)),
    st.tuples(
        st.just("reserve"),
        owners,
        st.dictionaries(st.sampled_from(SKUS), st.integers(0, 6), max_size=3),
        st.integers(0, 2),
    ),
    st.tuples(st.just("release"), owners),
    st.tuples(st.just("commit"), owners),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40))
def test_operation_sequences_keep_the_invariants(sequence: list[tuple[Any, ...]]) -> None:
    m = Model()
    for op, *args in sequence:
        if op == "receive":
            m.receive(*args)
        elif op == "count":
            m.count(*args)  # may leave fewer on hand than reserved: recorded, ATP still shown >= 0
        elif op == "reserve":
            owner, demand, buffer = args
            before = {k: p.reserved for k, p in m.rows.items()}
            try:
                m.reserve(owner, demand, buffer)
            except InsufficientStock as err:
                assert all(n > 0 for n in err.shortages.values())
                assert {k: p.reserved for k, p in m.rows.items()} == before
            else:
                held = units_by_row(m.owner_holds(owner))
                assert {
                    s: sum(n for (sku, _), n in held.items() if sku == s) for s in demand if demand[s]
                } == {s: n for s, n in demand.items() if n}
        elif op == "release":
            m.finish(args[0], HoldAction.RELEASE)
        elif op == "commit":
            m.finish(args[0], HoldAction.COMMIT)
        else:  # cancel the n-th order so far (if any), then cancel it again: nothing more moves
            known = m.orders()
            if known:
                order = known[args[0] % len(known)]
                committed = units_by_row(
                    h for h in m.holds.values() if h.order_id == order and h.state is HoldState.COMMITTED
                )
                assert m.cancel(order) == committed
                before = {k: p.reserved for k, p in m.rows.items()}
                assert m.cancel(order) == {}
                assert {k: p.reserved for k, p in m.rows.items()} == before
        m.check()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(SKUS),
            st.sampled_from(LOCS),
            st.integers(-3, 8),
            st.integers(0, 8),
            st.integers(0, 2),
        ),
        max_size=9,
        unique_by=lambda t: (t[0], t[1]),
    ),
    st.dictionaries(st.sampled_from(SKUS), st.integers(1, 12), min_size=1),
    st.frozensets(st.sampled_from(LOCS), min_size=1),
    st.integers(0, 2),
)
def test_plan_never_promises_more_than_exists(rows, demand, eligible, buffer) -> None:
    positions = [
        StockPosition(s, loc, on_hand, reserved, safety) for s, loc, on_hand, reserved, safety in rows
    ]
    by_key = {p.key: p for p in positions}
    try:
        plans = plan_holds(demand, positions, Strategy(eligible, buffer))
    except InsufficientStock as err:
        for sku, missing in err.shortages.items():
            available = sum(atp(p, buffer) for p in positions if p.sku == sku and p.location_id in eligible)
            assert missing == demand[sku] - min(available, demand[sku])
        return
    for (sku, loc), n in units_by_row(plans).items():
        assert loc in eligible
        assert 0 < n <= atp(by_key[(sku, loc)], buffer)
    for sku, wanted in demand.items():
        assert sum(p.quantity for p in plans if p.sku == sku) == wanted
