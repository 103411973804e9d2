"""Inventory use cases. Each takes the caller's unit of work and never commits.

Other contexts call only: :func:`reserve`, :func:`release`, :func:`commit`,
:func:`release_allocations`, :func:`record_sale`, :func:`availability`, :func:`get_location` (and
the demo loaders :func:`upsert_locations`, :func:`set_stock_bulk`, :func:`set_channel_rule`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from omnicommerce.inventory import repository as repo
from omnicommerce.inventory.domain import (
    Allocation,
    ChannelRule,
    Hold,
    HoldAction,
    HoldPlan,
    HoldState,
    InsufficientStock,
    InvalidStockChange,
    LedgerEntry,
    LocationAtp,
    LocationExists,
    LocationInfo,
    Rebalance,
    RowKey,
    SkuAvailability,
    StockPosition,
    Strategy,
    UnknownLocation,
    atp,
    credit,
    eligible_locations,
    haversine_km,
    next_state,
    plan_holds,
    rebalance,
    shortfall,
    units_by_row,
)
from omnicommerce.inventory.events import (
    AllocationLine,
    AllocationReleased,
    CountLine,
    HoldExpired,
    HoldLine,
    HoldReleased,
    InventoryShortfall,
    Line,
    StockAdjusted,
    StockCommitted,
    StockCounted,
    StockReceived,
    StockReserved,
    StockTransferred,
)
from omnicommerce.inventory.schemas import (
    AdjustmentCreate,
    CycleCountCreate,
    LocationCreate,
    Position,
    ReceiptCreate,
    StockChange,
    TransferCreate,
)
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.channels import get_channel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import Forbidden, InvalidInput
from omnicommerce.platform.ids import new_id

MAX_ATTEMPTS = 5  # re-plans after a lost race or after expired holds gave units back
SYSTEM_ACTOR = "system"


# === reservations ===============================================================================


@dataclass(frozen=True, slots=True)
class _Settlement:
    """A plan the stock rows accepted, with every hold and ledger row written."""

    rebalance: Rebalance
    kept: list[Hold]
    new: list[Hold]


@dataclass(frozen=True, slots=True)
class _Finish:
    """How a settled plan leaves the owner's holds: kept ones move to ``keep_state`` with
    ``keep_values``; new ones are born ``new_state`` until ``expires_at`` (for ``order_id``)."""

    keep_state: HoldState
    keep_values: dict[str, Any]
    new_state: HoldState
    expires_at: datetime
    order_id: str | None = None
    commit_ledger: bool = False  # a zero-delta ``commit`` ledger row per kept and new hold


Sited = tuple[list[tuple[StockPosition, LocationInfo]], ChannelRule]


def reserve(
    uow: UnitOfWork,
    *,
    owner_id: str,
    channel: str,
    demand: Mapping[str, int],
    location_id: str | None = None,
    capability: str = "ship",
    ttl_seconds: int,
) -> list[Hold]:
    """Make the owner's held units cover exactly ``demand`` (sku → units; 0 releases) and
    return its active holds. Only the missing units are reserved, surplus is released, holds
    at locations this demand may not use (another ``location_id``, a missing capability) move.

    On ``InsufficientStock`` nothing of the owner's changed: the error is raised before any
    hold or stock write (only other owners' *expired* holds may have been released, which is
    correct on its own). Statements on the happy path do not grow with the number of lines:
    PostgreSQL 3 (lock the rows with the channel rule, read the owner's holds, one statement
    for stock + holds + ledger), SQLite 5 (the last one split in three)."""
    if ttl_seconds <= 0:
        raise InvalidInput("ttl_seconds must be positive")
    expires_at = clock.now() + timedelta(seconds=ttl_seconds)
    demand = _checked(demand)
    sited = repo.sited_positions_with_rule(
        uow.conn, channel=channel, skus=demand, held_by=owner_id, lock=True
    )
    done = _settle(
        uow,
        owner_id=owner_id,
        sited=sited,
        demand=demand,
        location_id=location_id,
        capability=capability,
        keep_expired=False,
        finish=_Finish(HoldState.HELD, {"expires_at": expires_at}, HoldState.HELD, expires_at),
    )
    if done.new:
        uow.emit(
            StockReserved(owner_id=owner_id, channel=channel, holds=_lines(done.new), expires_at=expires_at)
        )
    return sorted(done.kept + done.new, key=lambda h: (h.sku, h.location_id, h.id))


def commit(
    uow: UnitOfWork,
    *,
    owner_id: str,
    order_id: str,
    demand: Mapping[str, int],
    channel: str,
    location_id: str | None,
    capability: str,
) -> list[Allocation]:
    """Turn the owner's holds into the order's allocations, re-reserving units whose holds
    expired and were released. Holds past ``expires_at`` but still held count: their units are
    still in ``reserved``. A repeat for the same order returns the first allocations. Raises
    ``InsufficientStock`` before any write of the owner's.

    Happy path (the held holds cover ``demand`` exactly at usable locations): lock the rows,
    then one conditional UPDATE of the holds (with the ledger on PostgreSQL) — 2 statements
    (3 on SQLite). Anything else falls back to re-planning under the same locks."""
    demand = _checked(demand)
    sited = repo.sited_positions_with_rule(
        uow.conn, channel=channel, skus=demand, held_by=owner_id, lock=True
    )
    wanted = {sku: n for sku, n in demand.items() if n > 0}
    eligible = eligible_locations((loc for _, loc in sited[0]), sited[1], capability, location_id)
    committed = repo.commit_held(
        uow.conn, owner_id=owner_id, order_id=order_id, demand=wanted, eligible=eligible
    )
    if committed is not None:
        if _by_sku(committed) != wanted:
            raise RuntimeError("holds changed under a row lock; refusing to continue")
        return _committed(uow, owner_id, order_id, committed)
    previous = [
        h for h in repo.owner_holds(uow.conn, owner_id, [HoldState.COMMITTED]) if h.order_id == order_id
    ]
    if previous:
        return _allocations(previous)
    now = clock.now()
    done = _settle(
        uow,
        owner_id=owner_id,
        sited=sited,
        demand=demand,
        location_id=location_id,
        capability=capability,
        keep_expired=True,
        finish=_Finish(
            HoldState.COMMITTED,
            {"order_id": order_id},
            HoldState.COMMITTED,
            now,
            order_id,
            commit_ledger=True,
        ),
    )
    return _committed(uow, owner_id, order_id, [*done.kept, *done.new])


def _by_sku(holds: Iterable[Hold]) -> dict[str, int]:
    out: dict[str, int] = {}
    for h in holds:
        out[h.sku] = out.get(h.sku, 0) + h.quantity
    return out


def _allocation_lines(allocations: Sequence[Allocation]) -> list[AllocationLine]:
    return [AllocationLine(sku=a.sku, location_id=a.location_id, quantity=a.quantity) for a in allocations]


def _committed(uow: UnitOfWork, owner_id: str, order_id: str, committed: list[Hold]) -> list[Allocation]:
    allocations = _allocations(committed)
    uow.emit(
        StockCommitted(
            owner_id=owner_id,
            order_id=order_id,
            allocations=_allocation_lines(allocations),
        )
    )
    return allocations


def release(uow: UnitOfWork, *, owner_id: str, reason: str) -> None:
    """Give back every active hold of the owner (cart abandoned, emptied, or checked out elsewhere)."""
    held = repo.owner_holds(uow.conn, owner_id, [HoldState.HELD])
    if not held:
        return
    repo.lock_rows(uow.conn, {h.key for h in held})
    moved = repo.transition(
        uow.conn, [h.id for h in held], from_state=HoldState.HELD, to_state=HoldState.RELEASED
    )
    # A hold a competitor expired meanwhile already gave its units back: skip it.
    released = [h for h in held if h.id in moved]
    repo.shift_reserved(uow.conn, {k: -n for k, n in units_by_row(released).items()})
    repo.append_ledger(uow.conn, _hold_ledger(released, "release", owner_id))
    if released:
        uow.emit(HoldReleased(owner_id=owner_id, reason=reason, holds=_lines(released)))


def release_allocations(uow: UnitOfWork, *, order_id: str, reason: str) -> list[Allocation]:
    """Give an order's allocations back (the order was cancelled): its committed holds become
    released and ``reserved`` falls by their units. Returns the allocations given back.

    Idempotent: a repeat, or a racing call for the same order, finds nothing committed (or loses
    the compare-and-set) and returns ``[]``; the units go back once. An order without holds (a
    POS sale, whose units already left the store) is left alone. Five statements whatever the
    number of lines — read the holds, lock their rows in (sku, location_id) order, move the
    holds, move ``reserved``, append the ledger — and one when there is nothing to give back."""
    committed = repo.order_holds(uow.conn, order_id, [HoldState.COMMITTED])
    if not committed:
        return []
    repo.lock_rows(uow.conn, {h.key for h in committed})
    moved = repo.transition(
        uow.conn,
        [h.id for h in committed],
        from_state=HoldState.COMMITTED,
        to_state=next_state(HoldState.COMMITTED, HoldAction.CANCEL),
    )
    # A concurrent call for the same order moved a hold first: it gave those units back.
    released = [h for h in committed if h.id in moved]
    repo.shift_reserved(uow.conn, {k: -n for k, n in units_by_row(released).items()})
    repo.append_ledger(
        uow.conn,
        [
            LedgerEntry(
                h.sku, h.location_id, 0, -h.quantity, HoldAction.CANCEL.value, order_id, SYSTEM_ACTOR, h.id
            )
            for h in released
        ],
    )
    if not released:
        return []
    allocations = _allocations(released)
    uow.emit(
        AllocationReleased(
            order_id=order_id,
            reason=reason,
            allocations=_allocation_lines(allocations),
        )
    )
    return allocations


def _settle(
    uow: UnitOfWork,
    *,
    owner_id: str,
    sited: Sited,
    demand: dict[str, int],
    location_id: str | None,
    capability: str,
    keep_expired: bool,
    finish: _Finish,
) -> _Settlement:
    """Decide which of the owner's holds stay, which go and what new units come from where,
    then write it all (:func:`repo.settle`: one statement on PostgreSQL).

    ``sited`` is the locked rows — of the demanded skus and of every sku the owner held when
    they were locked — with the channel rule. The owner's holds are read under those locks,
    where nothing else can change them — not a competitor expiring them, nor the owner's own
    concurrent request; holds of skus not locked are left alone. Expired holds of others on
    short rows are released and the plan redone, a bounded number of times."""
    conn = uow.conn
    skus = set(demand) | {p.sku for p, _ in sited[0]}
    missing: Mapping[str, int] = demand
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            sited = repo.sited_positions_with_rule(conn, channel=sited[1].channel, skus=skus, lock=True)
        rows, rule = sited
        holds = [h for h in repo.owner_holds(conn, owner_id, [HoldState.HELD]) if h.sku in skus]
        now = clock.now()
        eligible = eligible_locations((loc for _, loc in rows), rule, capability, location_id)
        # Reserving afresh never leans on the owner's own expired holds; committing converts them.
        stale = [] if keep_expired else [h for h in holds if h.expires_at < now]
        kept = rebalance([h for h in holds if h not in stale], demand, eligible)
        moves = Rebalance(kept.keep, kept.release + stale, kept.missing)
        missing = moves.missing
        positions = credit([p for p, _ in rows], units_by_row(moves.release))
        try:
            plans = plan_holds(moves.missing, positions, Strategy(eligible, rule.buffer))
        except InsufficientStock as short:
            if _expire_others(uow, owner_id, [p for p in positions if p.sku in short.shortages], now):
                continue
            raise
        done = _apply(uow, owner_id, moves, plans, rule.buffer, finish, now)
        if done is not None:
            return done
    raise InsufficientStock({sku: n for sku, n in missing.items() if n > 0})


def _apply(
    uow: UnitOfWork,
    owner_id: str,
    moves: Rebalance,
    plans: list[HoldPlan],
    buffer: int,
    finish: _Finish,
    now: datetime,
) -> _Settlement | None:
    """Move ``reserved`` by (new - released) per row and, if every row took it, write the holds
    and the ledger; on a row that refuses, undo the others, release expired holds there and
    return None so the caller re-plans."""
    conn = uow.conn
    deltas = units_by_row(plans)
    for key, n in units_by_row(moves.release).items():
        deltas[key] = deltas.get(key, 0) - n
    new = [
        Hold(
            new_id("hld"),
            owner_id,
            p.sku,
            p.location_id,
            p.quantity,
            finish.new_state,
            finish.expires_at,
            finish.order_id,
        )
        for p in plans
    ]
    kept = [replace(h, state=finish.keep_state, **finish.keep_values) for h in moves.keep]
    ledger = [*_hold_ledger(moves.release, "release", owner_id), *_hold_ledger(new, "reserve", owner_id)]
    if finish.commit_ledger:
        ledger += [
            LedgerEntry(h.sku, h.location_id, 0, 0, "commit", finish.order_id, owner_id, h.id)
            for h in [*kept, *new]
        ]
    writes = repo.HoldWrites(
        deltas=deltas,
        buffer=buffer,
        release=moves.release,
        keep=moves.keep,
        keep_state=finish.keep_state,
        keep_values=finish.keep_values,
        new=new,
        ledger=ledger,
    )
    settled = repo.settle(conn, writes)
    if settled.complete(writes):
        _expect(settled.released, moves.release)
        _expect(settled.kept, moves.keep)
        if moves.release:
            uow.emit(HoldReleased(owner_id=owner_id, reason="rebalanced", holds=_lines(moves.release)))
        return _Settlement(moves, kept, new)
    repo.shift_reserved(conn, {k: -deltas[k] for k in settled.applied})
    _expire_others(
        uow, owner_id, [StockPosition(k[0], k[1], 0, 0) for k in writes.wanted - settled.applied], now
    )
    return None


def _expire_others(uow: UnitOfWork, owner_id: str, rows: Iterable[StockPosition], now: datetime) -> bool:
    """Release expired holds of other owners on ``rows`` (already locked); True if any was."""
    keys = {p.key for p in rows}
    if not keys:
        return False
    expired = repo.expire_due(uow.conn, now, rows=keys, except_owner=owner_id)
    _record_expiry(uow, expired)
    return bool(expired)


def _record_expiry(uow: UnitOfWork, expired: list[Hold]) -> None:
    repo.append_ledger(uow.conn, _hold_ledger(expired, "expire", SYSTEM_ACTOR))
    for owner in sorted({h.owner_id for h in expired}):
        uow.emit(HoldExpired(owner_id=owner, holds=_lines(h for h in expired if h.owner_id == owner)))


def _checked(demand: Mapping[str, int]) -> dict[str, int]:
    bad = sorted(sku for sku, n in demand.items() if n < 0)
    if bad:
        raise InvalidInput(f"negative quantity for {', '.join(bad)}")
    return dict(demand)


def _expect(moved: set[str], holds: Sequence[Hold]) -> None:
    """Holds on rows this transaction locked cannot change under it; if one did, stop."""
    if moved != {h.id for h in holds}:
        raise RuntimeError("holds changed under a row lock; refusing to continue")


def _hold_ledger(holds: Iterable[Hold], reason: str, actor: str) -> list[LedgerEntry]:
    sign = 1 if reason == "reserve" else -1
    return [LedgerEntry(h.sku, h.location_id, 0, sign * h.quantity, reason, h.id, actor) for h in holds]


def _lines(holds: Iterable[Hold]) -> list[HoldLine]:
    return [HoldLine(hold_id=h.id, sku=h.sku, location_id=h.location_id, quantity=h.quantity) for h in holds]


def _allocations(holds: Iterable[Hold]) -> list[Allocation]:
    return [Allocation(sku, loc, n) for (sku, loc), n in sorted(units_by_row(holds).items())]


# === expiry (also run by jobs.expire_holds) =====================================================


def expire_holds(uow: UnitOfWork, *, limit: int = 500) -> int:
    """Release up to ``limit`` holds past their expiry; returns how many."""
    now = clock.now()
    due = repo.due_hold_rows(uow.conn, now, limit)
    if not due:
        return 0
    repo.lock_rows(uow.conn, {key for _, key in due})
    expired = repo.expire_due(uow.conn, now, ids=[hold_id for hold_id, _ in due])
    _record_expiry(uow, expired)
    return len(expired)


# === sales and availability =====================================================================


def record_sale(uow: UnitOfWork, *, location_id: str, lines: Mapping[str, int], order_id: str) -> None:
    """A POS sale: the units left the store now. Never refused; a resulting negative ATP is
    flagged with ``inventory.shortfall``."""
    repo.get_location(uow.conn, location_id)
    deltas = {(sku, location_id): -n for sku, n in _checked(lines).items() if n > 0}
    after = repo.add_on_hand(uow.conn, deltas)
    repo.append_ledger(
        uow.conn,
        [
            LedgerEntry(sku, loc, d, 0, "sale", order_id, SYSTEM_ACTOR)
            for (sku, loc), d in sorted(deltas.items())
        ],
    )
    uow.emit(
        StockAdjusted(location_id=location_id, lines=_qty_lines(deltas), reason="sale", reference=order_id)
    )
    _flag_shortfalls(uow, after.values(), "sale")


def availability(
    uow: UnitOfWork, *, skus: Iterable[str], channel: str, near: tuple[float, float] | None = None
) -> list[SkuAvailability]:
    """ATP per sku and location as ``channel`` sees it (its visible locations, less its buffer);
    nearest first when ``near`` is given, otherwise most units first."""
    wanted = sorted(set(skus))
    sited, rule = repo.sited_positions_with_rule(uow.conn, channel=channel, skus=wanted, lock=False)
    by_sku: dict[str, list[LocationAtp]] = {sku: [] for sku in wanted}
    for p, loc in sited:
        if loc.active and rule.sees(loc.id):
            by_sku[p.sku].append(LocationAtp(loc.id, loc.kind, atp(p, rule.buffer), _distance(loc, near)))
    return [
        SkuAvailability(sku, sum(x.atp for x in rows), sorted(rows, key=_order_for(near)))
        for sku, rows in by_sku.items()
    ]


def _distance(loc: LocationInfo, near: tuple[float, float] | None) -> float | None:
    if near is None or loc.lat is None or loc.lon is None:
        return None
    return round(haversine_km(near, (loc.lat, loc.lon)), 3)


def _order_for(near: tuple[float, float] | None) -> Any:
    if near is None:
        return lambda x: (-x.atp, x.location_id)
    return lambda x: (x.distance_km is None, x.distance_km or 0.0, x.location_id)


def get_location(uow: UnitOfWork, location_id: str) -> LocationInfo:
    return repo.get_location(uow.conn, location_id)


# === locations, rules, bulk loading =============================================================


def create_location(uow: UnitOfWork, actor: Principal, cmd: LocationCreate) -> LocationInfo:
    if actor.location is not None:
        raise Forbidden("a location-bound credential cannot create locations")
    if repo.existing_location_ids(uow.conn, [cmd.id]):
        raise LocationExists(f"location {cmd.id!r} already exists")
    loc = _location_of(cmd)
    repo.insert_location(uow.conn, loc)
    return loc


def list_locations(uow: UnitOfWork, actor: Principal, *, after: str | None, limit: int) -> list[LocationInfo]:
    return repo.list_locations(uow.conn, actor, after=after, limit=limit)


def read_location(uow: UnitOfWork, actor: Principal, location_id: str) -> LocationInfo:
    repo.in_reach(actor, location_id)
    return repo.get_location(uow.conn, location_id)


def upsert_locations(uow: UnitOfWork, locations: Sequence[LocationInfo]) -> None:
    if locations:
        repo.upsert_locations(uow.conn, locations)


def set_channel_rule(
    uow: UnitOfWork, channel: str, visible_locations: Iterable[str], buffer: int
) -> ChannelRule:
    get_channel(uow.conn, channel)
    visible = frozenset(visible_locations)
    if buffer < 0:
        raise InvalidInput("buffer must not be negative")
    _require_locations(uow, visible)
    rule = ChannelRule(channel, visible, buffer)
    repo.write_rule(uow.conn, rule)
    return rule


def set_stock_bulk(uow: UnitOfWork, rows: Iterable[tuple[str, str, int] | tuple[str, str, int, int]]) -> None:
    """Demo/ERP loading: absolute on_hand (and safety stock when given) per (sku, location).
    Multi-row upserts in chunks; the ledger records each change as a ``cycle_count``."""
    levels: dict[RowKey, tuple[int, int | None]] = {}
    for row in rows:
        sku, loc, on_hand = row[0], row[1], row[2]
        if on_hand < 0 or (len(row) > 3 and row[3] < 0):
            raise InvalidInput(f"negative level for {sku!r} at {loc!r}")
        levels[(sku, loc)] = (on_hand, row[3] if len(row) > 3 else None)
    _require_locations(uow, {loc for _, loc in levels})
    items = sorted(levels.items())
    for start in range(0, len(items), 1000):
        chunk = dict(items[start : start + 1000])
        before = repo.lock_rows(uow.conn, chunk.keys())
        repo.set_levels(uow.conn, chunk)
        repo.append_ledger(
            uow.conn,
            [
                LedgerEntry(
                    sku,
                    loc,
                    on_hand - (before[(sku, loc)].on_hand if (sku, loc) in before else 0),
                    0,
                    "cycle_count",
                    None,
                    SYSTEM_ACTOR,
                    "bulk load",
                )
                for (sku, loc), (on_hand, _) in chunk.items()
            ],
        )


def _require_locations(uow: UnitOfWork, ids: set[str] | frozenset[str]) -> None:
    missing = sorted(set(ids) - repo.existing_location_ids(uow.conn, ids)) if ids else []
    if missing:
        raise UnknownLocation(f"unknown location(s): {', '.join(missing)}")


def _location_of(cmd: LocationCreate) -> LocationInfo:
    return LocationInfo(
        id=cmd.id,
        kind=cmd.kind,
        name=cmd.name,
        capabilities=frozenset(cmd.capabilities),
        lat=cmd.lat,
        lon=cmd.lon,
        postal_code=cmd.postal_code,
        address_line=cmd.address_line,
        city=cmd.city,
        country=cmd.country.upper(),
        active=cmd.active,
    )


# === stock movements from the API ===============================================================


def receive(uow: UnitOfWork, actor: Principal, cmd: ReceiptCreate) -> StockChange:
    """Units arrived; unknown skus are welcome (inventory does not depend on the catalog)."""
    _reachable(uow, actor, cmd.location_id)
    deltas = {(line.sku, cmd.location_id): line.quantity for line in cmd.lines}
    after = repo.add_on_hand(uow.conn, deltas)
    receipt_id = new_id("rcv")
    repo.append_ledger(
        uow.conn,
        [
            LedgerEntry(sku, loc, d, 0, "receive", cmd.reference or receipt_id, actor.id)
            for (sku, loc), d in sorted(deltas.items())
        ],
    )
    uow.emit(StockReceived(location_id=cmd.location_id, lines=_qty_lines(deltas), reference=cmd.reference))
    return _change(receipt_id, "receipt", after.values())


def adjust(uow: UnitOfWork, actor: Principal, cmd: AdjustmentCreate) -> StockChange:
    """A correction stated by staff (damage, found units). Refused only if on_hand would go
    negative; eating into reserved units is recorded and flagged, not refused."""
    _reachable(uow, actor, cmd.location_id)
    key = (cmd.sku, cmd.location_id)
    after = repo.add_on_hand(uow.conn, {key: cmd.delta})
    if after[key].on_hand < 0:
        raise InvalidStockChange(
            f"{cmd.sku!r} at {cmd.location_id!r} has fewer than {-cmd.delta} units on hand"
        )
    adjustment_id = new_id("adj")
    repo.append_ledger(
        uow.conn,
        [LedgerEntry(cmd.sku, cmd.location_id, cmd.delta, 0, "adjust", adjustment_id, actor.id, cmd.reason)],
    )
    uow.emit(
        StockAdjusted(
            location_id=cmd.location_id,
            lines=_qty_lines({key: cmd.delta}),
            reason=cmd.reason,
            reference=adjustment_id,
        )
    )
    _flag_shortfalls(uow, after.values(), "adjust")
    return _change(adjustment_id, "adjustment", after.values())


def transfer(uow: UnitOfWork, actor: Principal, cmd: TransferCreate) -> StockChange:
    """Move units between locations in one upsert, rows in lock order. Only available units
    leave (ATP covers them); otherwise ``InsufficientStock`` and the caller rolls back."""
    _reachable(uow, actor, cmd.from_location_id)
    _require_locations(uow, {cmd.to_location_id})
    deltas: dict[RowKey, int] = {}
    for line in cmd.lines:
        deltas[(line.sku, cmd.from_location_id)] = -line.quantity
        deltas[(line.sku, cmd.to_location_id)] = line.quantity
    after = repo.add_on_hand(uow.conn, deltas, guard_atp=True)
    short = {
        line.sku: line.quantity
        for line in cmd.lines
        if (line.sku, cmd.from_location_id) not in after
        or after[(line.sku, cmd.from_location_id)].on_hand < 0
    }
    if short:
        raise InsufficientStock(short)
    transfer_id = new_id("trf")
    repo.append_ledger(
        uow.conn,
        [
            LedgerEntry(sku, loc, d, 0, "transfer_out" if d < 0 else "transfer_in", transfer_id, actor.id)
            for (sku, loc), d in sorted(deltas.items())
        ],
    )
    uow.emit(
        StockTransferred(
            transfer_id=transfer_id,
            from_location_id=cmd.from_location_id,
            to_location_id=cmd.to_location_id,
            lines=[Line(sku=x.sku, quantity=x.quantity) for x in cmd.lines],
        )
    )
    return _change(transfer_id, "transfer", after.values())


def cycle_count(uow: UnitOfWork, actor: Principal, cmd: CycleCountCreate) -> StockChange:
    """Set on_hand to what was counted; the ledger keeps the difference. Counting fewer units
    than are reserved is recorded as found and flagged with ``inventory.shortfall``."""
    _reachable(uow, actor, cmd.location_id)
    counted = {(c.sku, cmd.location_id): c.counted for c in cmd.counts}
    before = repo.lock_rows(uow.conn, counted.keys())
    repo.set_levels(uow.conn, {k: (n, None) for k, n in counted.items()})
    diffs = {k: n - (before[k].on_hand if k in before else 0) for k, n in counted.items()}
    count_id = new_id("cnt")
    repo.append_ledger(
        uow.conn,
        [
            LedgerEntry(sku, loc, d, 0, "cycle_count", count_id, actor.id)
            for (sku, loc), d in sorted(diffs.items())
        ],
    )
    after = [
        replace(before[k], on_hand=n) if k in before else StockPosition(k[0], k[1], n, 0)
        for k, n in sorted(counted.items())
    ]
    uow.emit(
        StockCounted(
            location_id=cmd.location_id,
            counts=[
                CountLine(sku=sku, counted=counted[(sku, loc)], difference=d)
                for (sku, loc), d in sorted(diffs.items())
            ],
        )
    )
    _flag_shortfalls(uow, after, "cycle_count")
    return _change(count_id, "cycle_count", after)


def list_positions(
    uow: UnitOfWork,
    actor: Principal,
    *,
    sku: str | None,
    location_id: str | None,
    after: RowKey | None,
    limit: int,
) -> list[StockPosition]:
    if location_id is not None:
        _reachable(uow, actor, location_id)
    return repo.list_positions(uow.conn, actor, sku=sku, location_id=location_id, after=after, limit=limit)


def list_ledger(
    uow: UnitOfWork,
    actor: Principal,
    *,
    sku: str | None,
    location_id: str | None,
    after: str | None,
    limit: int,
) -> list[Any]:
    if location_id is not None:
        _reachable(uow, actor, location_id)
    return repo.list_ledger(uow.conn, actor, sku=sku, location_id=location_id, after=after, limit=limit)


def _reachable(uow: UnitOfWork, actor: Principal, location_id: str) -> None:
    repo.in_reach(actor, location_id)
    _require_locations(uow, {location_id})


def _flag_shortfalls(uow: UnitOfWork, positions: Iterable[StockPosition], cause: str) -> None:
    for p in positions:
        if shortfall(p) > 0:
            uow.emit(
                InventoryShortfall(
                    sku=p.sku,
                    location_id=p.location_id,
                    on_hand=p.on_hand,
                    reserved=p.reserved,
                    safety_stock=p.safety_stock,
                    missing=shortfall(p),
                    cause=cause,
                )
            )


def _qty_lines(deltas: Mapping[RowKey, int]) -> list[Line]:
    return [Line(sku=sku, quantity=d) for (sku, _), d in sorted(deltas.items())]


def _change(change_id: str, kind: Any, positions: Iterable[StockPosition]) -> StockChange:
    return StockChange(
        id=change_id,
        kind=kind,
        positions=[
            Position(
                sku=p.sku,
                location_id=p.location_id,
                on_hand=p.on_hand,
                reserved=p.reserved,
                safety_stock=p.safety_stock,
                atp=atp(p),
            )
            for p in sorted(positions, key=lambda p: p.key)
        ],
    )


# === fulfillment: routing reads, moving and consuming an order's allocations ====================


def order_allocations(uow: UnitOfWork, *, order_id: str) -> list[Allocation]:
    """The order's allocations now (its committed holds, summed per sku and location)."""
    return _allocations(repo.order_holds(uow.conn, order_id, [HoldState.COMMITTED]))


def sourcing_positions(
    uow: UnitOfWork, *, skus: Iterable[str], channel: str
) -> tuple[list[tuple[StockPosition, LocationInfo]], ChannelRule]:
    """Every stock row of ``skus`` with its location, and the channel's rule (one statement, no
    locks): what routing builds its candidates from. The conditional update decides later."""
    return repo.sited_positions_with_rule(uow.conn, channel=channel, skus=sorted(set(skus)), lock=False)


def move_allocations(
    uow: UnitOfWork, *, order_id: str, moves: Mapping[RowKey, int], reason: str, actor: str
) -> None:
    """Change an order's allocations by ``moves`` ((sku, location) → signed units), atomically.

    Rows are locked in (sku, location_id) order; positive moves take units with the conditional
    update (ATP must cover them, so two orders never get the same last units); negative moves
    give the order's units back. All or nothing: if a row refuses, the rows already moved are put
    back and ``InsufficientStock`` is raised with nothing changed."""
    moves = {k: n for k, n in moves.items() if n != 0}
    if not moves:
        return
    repo.lock_rows(uow.conn, moves.keys())
    held = repo.order_holds(uow.conn, order_id, [HoldState.COMMITTED])
    gives = {k: -n for k, n in moves.items() if n < 0}
    released, remainders = _take_units(held, gives, order_id)
    takes = {k: n for k, n in moves.items() if n > 0}
    moved = repo.try_reserve(uow.conn, takes, buffer=0)
    if moved != set(takes):
        repo.shift_reserved(uow.conn, {k: -takes[k] for k in moved})
        short: dict[str, int] = {}
        for (sku, loc), n in takes.items():
            if (sku, loc) not in moved:
                short[sku] = short.get(sku, 0) + n
        raise InsufficientStock(short)
    repo.shift_reserved(uow.conn, {k: -n for k, n in gives.items()})
    now = clock.now()
    new = [
        Hold(new_id("hld"), order_id, sku, loc, n, HoldState.COMMITTED, now, order_id)
        for (sku, loc), n in sorted(takes.items())
    ]
    _swap_holds(uow, released, [*remainders, *new])
    repo.append_ledger(
        uow.conn,
        [LedgerEntry(sku, loc, 0, n, reason, order_id, actor) for (sku, loc), n in sorted(moves.items())],
    )
    if gives:
        uow.emit(AllocationReleased(order_id=order_id, reason=reason, allocations=_row_lines(gives)))
    if takes:
        uow.emit(StockCommitted(owner_id=order_id, order_id=order_id, allocations=_row_lines(takes)))


def consume_allocations(
    uow: UnitOfWork, *, order_id: str, location_id: str, lines: Mapping[str, int], reason: str, actor: str
) -> None:
    """Units of an order's allocation leave ``location_id`` for good: shipped or handed over
    (``reason`` "ship"/"pickup"), or not on the shelf after all ("not_found"). ``reserved`` and
    ``on_hand`` fall together (``on_hand`` never below zero), in one ledger row per sku."""
    units = {(sku, location_id): n for sku, n in _checked(lines).items() if n > 0}
    if not units:
        return
    before = repo.lock_rows(uow.conn, units.keys())
    held = repo.order_holds(uow.conn, order_id, [HoldState.COMMITTED])
    released, remainders = _take_units(held, units, order_id)
    _swap_holds(uow, released, remainders)
    repo.shift_reserved(uow.conn, {k: -n for k, n in units.items()})
    leave = {k: -min(n, max(0, before[k].on_hand)) for k, n in units.items() if k in before}
    after = repo.add_on_hand(uow.conn, leave)
    repo.append_ledger(
        uow.conn,
        [
            LedgerEntry(sku, loc, leave.get((sku, loc), 0), -n, reason, order_id, actor)
            for (sku, loc), n in sorted(units.items())
        ],
    )
    uow.emit(
        StockAdjusted(location_id=location_id, lines=_qty_lines(leave), reason=reason, reference=order_id)
    )
    _flag_shortfalls(uow, after.values(), reason)


def _take_units(
    held: Sequence[Hold], units: Mapping[RowKey, int], order_id: str
) -> tuple[list[Hold], list[Hold]]:
    """Which of the order's committed holds give ``units`` back per row: the holds released
    whole, and new committed holds for what stays of the last one touched on each row."""
    released: list[Hold] = []
    remainders: list[Hold] = []
    for key, want in sorted(units.items()):
        left = want
        for h in (h for h in held if h.key == key):
            if left <= 0:
                break
            released.append(h)
            if h.quantity > left:
                remainders.append(replace(h, id=new_id("hld"), owner_id=order_id, quantity=h.quantity - left))
            left -= h.quantity
        if left > 0:
            raise InvalidInput(
                f"order {order_id!r} has {want - left} of {key[0]!r} allocated at {key[1]!r}, not {want}"
            )
    return released, remainders


def _swap_holds(uow: UnitOfWork, released: Sequence[Hold], new: Sequence[Hold]) -> None:
    """Retire ``released`` (committed → released) and insert ``new``; the rows are locked."""
    moved = repo.transition(
        uow.conn,
        [h.id for h in released],
        from_state=HoldState.COMMITTED,
        to_state=next_state(HoldState.COMMITTED, HoldAction.CANCEL),
    )
    _expect(moved, released)
    repo.insert_holds(uow.conn, new)


def _row_lines(units: Mapping[RowKey, int]) -> list[AllocationLine]:
    return [AllocationLine(sku=sku, location_id=loc, quantity=n) for (sku, loc), n in sorted(units.items())]


def record_return(
    uow: UnitOfWork,
    *,
    location_id: str,
    sellable: Mapping[str, int],
    damaged: Mapping[str, int],
    reference: str,
    actor: str,
) -> None:
    """Returned units received at ``location_id`` (any location: returns anywhere). Sellable ones
    go back on hand there (ledger reason ``return``); damaged ones are recorded (reason
    ``return_damaged``, no change to sellable stock) for the damaged bucket of the return."""
    repo.get_location(uow.conn, location_id)
    deltas = {(sku, location_id): n for sku, n in _checked(sellable).items() if n > 0}
    if deltas:
        repo.add_on_hand(uow.conn, deltas)
    entries = [
        LedgerEntry(sku, loc, n, 0, "return", reference, actor) for (sku, loc), n in sorted(deltas.items())
    ]
    entries += [
        LedgerEntry(sku, location_id, 0, 0, "return_damaged", reference, actor, f"{n} damaged unit(s)")
        for sku, n in sorted(_checked(damaged).items())
        if n > 0
    ]
    repo.append_ledger(uow.conn, entries)
    if deltas:
        uow.emit(
            StockAdjusted(
                location_id=location_id, lines=_qty_lines(deltas), reason="return", reference=reference
            )
        )


def lock_stock_rows(uow: UnitOfWork, keys: Iterable[RowKey]) -> None:
    """Lock stock rows in (sku, location_id) order before a multi-order move, so its later
    statements never wait on a row in another order than every other writer's."""
    repo.lock_rows(uow.conn, set(keys))
