"""The SQL that matters for stock.

Lock order: every transaction that writes ``stock_levels`` rows — or the ``holds`` on them —
locks those rows first, in (sku, location_id) order, with one statement. Multi-row statements
whose row order the planner chooses (``UPDATE … FROM``) run only after
:func:`sited_positions_with_rule` / :func:`lock_rows` took the row locks in that order, so
concurrent multi-line reservations cannot deadlock, and a hold on a locked row cannot change
under the transaction holding the lock. On SQLite ``FOR UPDATE`` is dropped: ``BEGIN
IMMEDIATE`` already serialises writers.

The conditional ``UPDATE`` in :func:`try_reserve` (and in :func:`settle`) is the guard against
overselling, whatever was read before it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    cast,
    column,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
    update,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from omnicommerce.inventory.domain import (
    ChannelRule,
    Hold,
    HoldState,
    LedgerEntry,
    LocationInfo,
    RowKey,
    StockPosition,
    UnknownLocation,
)
from omnicommerce.inventory.models import channel_stock_rules, holds, locations, stock_ledger, stock_levels
from omnicommerce.platform import clock, direct
from omnicommerce.platform.auth import Principal
from omnicommerce.platform.db import UTCDateTime
from omnicommerce.platform.ids import new_id

POSITION_COLUMNS = (
    stock_levels.c.sku,
    stock_levels.c.location_id,
    stock_levels.c.on_hand,
    stock_levels.c.reserved,
    stock_levels.c.safety_stock,
)
ATP_SQL = stock_levels.c.on_hand - stock_levels.c.reserved - stock_levels.c.safety_stock


# --- scoping: the one place that narrows reads to the caller --------------------------------------


def in_reach(actor: Principal, location_id: str) -> None:
    """A location-bound key acts only on its own location; any other is 404, not 403."""
    if actor.location is not None and actor.location != location_id:
        raise UnknownLocation(f"location {location_id!r} does not exist")


def reach_filter(actor: Principal, col: Any) -> ColumnElement[bool]:
    return col == actor.location if actor.location is not None else true()


# --- locations and channel rules -----------------------------------------------------------------


def _location(row: Any) -> LocationInfo:
    return LocationInfo(
        id=row.id,
        kind=row.kind,
        name=row.name,
        capabilities=frozenset(row.capabilities.split()),
        lat=row.lat,
        lon=row.lon,
        postal_code=row.postal_code,
        address_line=row.address_line,
        city=row.city,
        country=row.country,
        active=row.active,
    )


def _location_values(loc: LocationInfo) -> dict[str, Any]:
    return {
        "id": loc.id,
        "name": loc.name,
        "kind": loc.kind,
        "address_line": loc.address_line,
        "city": loc.city,
        "postal_code": loc.postal_code,
        "country": loc.country,
        "lat": loc.lat,
        "lon": loc.lon,
        "capabilities": " ".join(sorted(loc.capabilities)),
        "active": loc.active,
    }


def get_location(conn: Connection, location_id: str) -> LocationInfo:
    row = conn.execute(select(locations).where(locations.c.id == location_id)).first()
    if row is None:
        raise UnknownLocation(f"location {location_id!r} does not exist")
    return _location(row)


def existing_location_ids(conn: Connection, ids: Collection[str]) -> set[str]:
    return set(conn.execute(select(locations.c.id).where(locations.c.id.in_(list(ids)))).scalars())


def list_locations(
    conn: Connection, actor: Principal, *, after: str | None, limit: int
) -> list[LocationInfo]:
    stmt = select(locations).where(reach_filter(actor, locations.c.id)).order_by(locations.c.id).limit(limit)
    if after is not None:
        stmt = stmt.where(locations.c.id > after)
    return [_location(r) for r in conn.execute(stmt)]


def insert_location(conn: Connection, loc: LocationInfo) -> None:
    conn.execute(insert(locations).values(**_location_values(loc), created_at=clock.now()))


def upsert_locations(conn: Connection, locs: Sequence[LocationInfo]) -> None:
    rows = [dict(_location_values(loc), created_at=clock.now()) for loc in locs]
    stmt = _upsert(conn, locations).values(rows)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[locations.c.id],
            set_={c: stmt.excluded[c] for c in rows[0] if c not in ("id", "created_at")},
        )
    )


def write_rule(conn: Connection, rule: ChannelRule) -> None:
    stmt = _upsert(conn, channel_stock_rules).values(
        channel_id=rule.channel,
        visible_locations=" ".join(sorted(rule.visible)),
        buffer=rule.buffer,
        updated_at=clock.now(),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[channel_stock_rules.c.channel_id],
            set_={
                "visible_locations": stmt.excluded.visible_locations,
                "buffer": stmt.excluded.buffer,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


def _upsert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT with ``on_conflict_do_update`` (both speak ``ON CONFLICT``)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


# --- positions -----------------------------------------------------------------------------------


def _position(row: Any) -> StockPosition:
    return StockPosition(row.sku, row.location_id, row.on_hand, row.reserved, row.safety_stock)


@lru_cache(maxsize=128)
def _sited_positions_statement(held: bool, lock: bool, held_skus: int) -> Any:
    """The statement of :func:`sited_positions_with_rule`, built once per shape (with ``held``,
    per number of skus: one SELECT of each in the union) and reused; values are bound per call."""
    wanted: ColumnElement[bool] = stock_levels.c.sku.in_(bindparam("p_skus", expanding=True))
    if held:
        # One IN over a union, not ``sku IN (…) OR sku IN (SELECT …)``: PostgreSQL plans the OR
        # as a filter over the whole table, the union as index lookups.
        owned = select(holds.c.sku).where(
            holds.c.owner_id == bindparam("p_held_by", type_=String), holds.c.state == HoldState.HELD.value
        )
        wanted = stock_levels.c.sku.in_(
            union_all(owned, *(select(bindparam(f"p_sku_{i}", type_=String)) for i in range(held_skus)))
        )
    stmt = (
        select(
            *POSITION_COLUMNS,
            *[c for c in locations.c if c.name != "created_at"],
            channel_stock_rules.c.channel_id.label("rule_channel"),
            channel_stock_rules.c.visible_locations.label("rule_visible"),
            channel_stock_rules.c.buffer.label("rule_buffer"),
        )
        .join(locations, locations.c.id == stock_levels.c.location_id)
        .outerjoin(
            channel_stock_rules, channel_stock_rules.c.channel_id == bindparam("p_channel", type_=String)
        )
        .where(wanted)
        .order_by(stock_levels.c.sku, stock_levels.c.location_id)
    )
    if lock:
        stmt = stmt.with_for_update(of=stock_levels)
    return stmt


def sited_positions_with_rule(
    conn: Connection,
    *,
    channel: str,
    skus: Collection[str],
    held_by: str | None = None,
    lock: bool,
) -> tuple[list[tuple[StockPosition, LocationInfo]], ChannelRule]:
    """Every stock row of ``skus`` with its location, and the channel's rule, in one statement.

    ``held_by`` adds every row of the skus that owner holds (``state = 'held'``) to ``skus``, so a
    reservation locks the rows of holds it may release without reading them first. ``lock`` takes
    the stock row locks in (sku, location_id) order (``FOR UPDATE OF stock_levels``: the rule and
    the location are only read). Without any stock row the rule is not read and the default (all
    locations, no buffer) is returned: with no row there is nothing it could apply to."""
    ordered = sorted(skus)
    params: dict[str, Any] = {"p_channel": channel}
    if held_by is None:
        params["p_skus"] = ordered
    else:
        params["p_held_by"] = held_by
        params |= {f"p_sku_{i}": sku for i, sku in enumerate(ordered)}
    stmt = _sited_positions_statement(held_by is not None, lock, len(ordered) if held_by is not None else 0)
    rows = list(direct.execute(conn, stmt, params))
    rule = ChannelRule(channel)
    if rows and rows[0].rule_channel is not None:
        rule = ChannelRule(channel, frozenset(rows[0].rule_visible.split()), rows[0].rule_buffer)
    return [(_position(r), _location(r)) for r in rows], rule


def lock_rows(conn: Connection, keys: Collection[RowKey]) -> dict[RowKey, StockPosition]:
    """Lock the given rows in (sku, location_id) order and return what they hold now."""
    if not keys:
        return {}
    stmt = (
        select(*POSITION_COLUMNS)
        .where(tuple_(stock_levels.c.sku, stock_levels.c.location_id).in_(sorted(keys)))
        .order_by(stock_levels.c.sku, stock_levels.c.location_id)
        .with_for_update()
    )
    return {(r.sku, r.location_id): _position(r) for r in conn.execute(stmt)}


def list_positions(
    conn: Connection,
    actor: Principal,
    *,
    sku: str | None,
    location_id: str | None,
    after: RowKey | None,
    limit: int,
) -> list[StockPosition]:
    stmt = (
        select(*POSITION_COLUMNS)
        .where(reach_filter(actor, stock_levels.c.location_id))
        .order_by(stock_levels.c.sku, stock_levels.c.location_id)
        .limit(limit)
    )
    if sku is not None:
        stmt = stmt.where(stock_levels.c.sku == sku)
    if location_id is not None:
        stmt = stmt.where(stock_levels.c.location_id == location_id)
    if after is not None:
        stmt = stmt.where(tuple_(stock_levels.c.sku, stock_levels.c.location_id) > tuple_(*after))
    return [_position(r) for r in conn.execute(stmt)]


# --- reserved: conditional and unconditional moves ----------------------------------------------


def _deltas_cte(rows: Iterable[tuple[str, str, int, int]]) -> Any:
    # A CTE, not ``(VALUES …) AS v(…)``: SQLite accepts column names only on a CTE.
    return (
        values(
            column("sku", String),
            column("loc", String),
            column("d", Integer),
            column("need", Integer),
            name="v",
        )
        .data(sorted(rows))
        .cte("v")
    )


def try_reserve(conn: Connection, deltas: Mapping[RowKey, int], *, buffer: int) -> set[RowKey]:
    """One statement for every row: ``reserved += d`` where ``d <= 0`` or ATP (less the
    channel's buffer) still covers ``d``. Returns the rows that moved; a missing one lost a
    race or had too little, and the caller must undo the rest (:func:`shift_reserved`)."""
    rows = [(sku, loc, d, d + buffer) for (sku, loc), d in deltas.items() if d != 0]
    if not rows:
        return set()
    v = _deltas_cte(rows)
    stmt = (
        update(stock_levels)
        .where(
            stock_levels.c.sku == v.c.sku,
            stock_levels.c.location_id == v.c.loc,
            or_(v.c.d <= 0, v.c.need <= ATP_SQL),
        )
        .values(
            reserved=stock_levels.c.reserved + v.c.d,
            version=stock_levels.c.version + 1,
            updated_at=clock.now(),
        )
        .returning(stock_levels.c.sku, stock_levels.c.location_id)
        .add_cte(v)
    )
    return {(r.sku, r.location_id) for r in conn.execute(stmt)}


def shift_reserved(conn: Connection, deltas: Mapping[RowKey, int]) -> None:
    """Unconditional ``reserved += d`` (releases, expiry, undo); rows must already be locked."""
    rows = [(sku, loc, d, 0) for (sku, loc), d in deltas.items() if d != 0]
    if not rows:
        return
    v = _deltas_cte(rows)
    conn.execute(
        update(stock_levels)
        .where(stock_levels.c.sku == v.c.sku, stock_levels.c.location_id == v.c.loc)
        .values(
            reserved=stock_levels.c.reserved + v.c.d,
            version=stock_levels.c.version + 1,
            updated_at=clock.now(),
        )
        .add_cte(v)
    )


# --- on hand ---------------------------------------------------------------------------------------


def add_on_hand(
    conn: Connection, deltas: Mapping[RowKey, int], *, guard_atp: bool = False
) -> dict[RowKey, StockPosition]:
    """``on_hand += d`` per row in one upsert, rows in lock order; a missing row is created.

    With ``guard_atp`` a decrease applies only where ATP covers it; a row left out of the
    result did not move, and a created row shows a negative ``on_hand`` — both are for the
    caller to refuse (it rolls back)."""
    rows = [
        {
            "sku": sku,
            "location_id": loc,
            "on_hand": d,
            "reserved": 0,
            "safety_stock": 0,
            "version": 1,
            "updated_at": clock.now(),
        }
        for (sku, loc), d in sorted(deltas.items())
    ]
    stmt = _upsert(conn, stock_levels).values(rows)
    where = or_(stmt.excluded.on_hand >= 0, -stmt.excluded.on_hand <= ATP_SQL) if guard_atp else None
    stmt = stmt.on_conflict_do_update(
        index_elements=[stock_levels.c.sku, stock_levels.c.location_id],
        set_={
            "on_hand": stock_levels.c.on_hand + stmt.excluded.on_hand,
            "version": stock_levels.c.version + 1,
            "updated_at": stmt.excluded.updated_at,
        },
        where=where,
    ).returning(*POSITION_COLUMNS)
    return {(r.sku, r.location_id): _position(r) for r in conn.execute(stmt)}


def set_levels(conn: Connection, levels: Mapping[RowKey, tuple[int, int | None]]) -> None:
    """Absolute ``on_hand`` (and ``safety_stock`` when given) per row, one upsert per shape."""
    for with_safety in (False, True):
        rows = [
            {
                "sku": sku,
                "location_id": loc,
                "on_hand": on_hand,
                "reserved": 0,
                "safety_stock": safety or 0,
                "version": 1,
                "updated_at": clock.now(),
            }
            for (sku, loc), (on_hand, safety) in sorted(levels.items())
            if (safety is not None) == with_safety
        ]
        if not rows:
            continue
        stmt = _upsert(conn, stock_levels).values(rows)
        set_: dict[str, Any] = {
            "on_hand": stmt.excluded.on_hand,
            "version": stock_levels.c.version + 1,
            "updated_at": stmt.excluded.updated_at,
        }
        if with_safety:
            set_["safety_stock"] = stmt.excluded.safety_stock
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[stock_levels.c.sku, stock_levels.c.location_id], set_=set_
            )
        )


# --- holds ---------------------------------------------------------------------------------------

HOLD_COLUMNS = (
    holds.c.id,
    holds.c.owner_id,
    holds.c.sku,
    holds.c.location_id,
    holds.c.quantity,
    holds.c.state,
    holds.c.expires_at,
    holds.c.order_id,
)


def _hold(row: Any) -> Hold:
    return Hold(
        row.id,
        row.owner_id,
        row.sku,
        row.location_id,
        row.quantity,
        HoldState(row.state),
        row.expires_at,
        row.order_id,
    )


def owner_holds(conn: Connection, owner_id: str, states: Collection[HoldState]) -> list[Hold]:
    return [
        _hold(r) for r in direct.execute(conn, _OWNER_HOLDS, {"p_owner": owner_id, "p_states": list(states)})
    ]


_OWNER_HOLDS = (  # built once; values bound per call
    select(*HOLD_COLUMNS)
    .where(holds.c.owner_id == bindparam("p_owner"), holds.c.state.in_(bindparam("p_states", expanding=True)))
    .order_by(holds.c.sku, holds.c.location_id, holds.c.id)
)


def order_holds(conn: Connection, order_id: str, states: Collection[HoldState]) -> list[Hold]:
    """The holds allocated to an order (``ix_holds_order``), in lock order."""
    stmt = (
        select(*HOLD_COLUMNS)
        .where(holds.c.order_id == order_id, holds.c.state.in_(list(states)))
        .order_by(holds.c.sku, holds.c.location_id, holds.c.id)
    )
    return [_hold(r) for r in conn.execute(stmt)]


def insert_holds(conn: Connection, new: Sequence[Hold]) -> None:
    if not new:
        return
    now = clock.now()
    conn.execute(
        insert(holds),
        [
            {
                "id": h.id,
                "owner_id": h.owner_id,
                "sku": h.sku,
                "location_id": h.location_id,
                "quantity": h.quantity,
                "state": h.state.value,
                "order_id": h.order_id,
                "expires_at": h.expires_at,
                "version": 1,
                "created_at": now,
            }
            for h in new
        ],
    )


def transition(
    conn: Connection, ids: Collection[str], *, from_state: HoldState, to_state: HoldState, **changes: Any
) -> set[str]:
    """Compare-and-set on state for many holds at once; returns the ids that moved."""
    if not ids:
        return set()
    stmt = (
        update(holds)
        .where(holds.c.id.in_(sorted(ids)), holds.c.state == from_state.value)
        .values(state=to_state.value, version=holds.c.version + 1, **changes)
        .returning(holds.c.id)
    )
    return set(conn.execute(stmt).scalars())


@dataclass(frozen=True, slots=True)
class HoldWrites:
    """Everything a settled plan writes, for :func:`settle`.

    ``deltas`` move ``reserved`` per row (a positive one only where ATP less ``buffer`` covers
    it); only if every row moved are ``release`` (held → released) and ``keep`` (held →
    ``keep_state`` with ``keep_values``) moved, ``new`` inserted and ``ledger`` appended. Every
    hold in ``new`` has the same owner, state, order and expiry."""

    deltas: Mapping[RowKey, int]
    buffer: int = 0
    release: Sequence[Hold] = ()
    keep: Sequence[Hold] = ()
    keep_state: HoldState = HoldState.HELD
    keep_values: Mapping[str, Any] = field(default_factory=dict)
    new: Sequence[Hold] = ()
    ledger: Sequence[LedgerEntry] = ()

    @property
    def wanted(self) -> set[RowKey]:
        return {k for k, d in self.deltas.items() if d != 0}


@dataclass(frozen=True, slots=True)
class Settled:
    """What :func:`settle` did: ``applied`` rows moved; the rest only if ``complete``."""

    applied: set[RowKey]
    released: set[str]
    kept: set[str]

    def complete(self, writes: HoldWrites) -> bool:
        return self.applied == writes.wanted


def settle(conn: Connection, writes: HoldWrites) -> Settled:
    """Apply ``writes``; rows must already be locked. If a row refused its delta (``applied``
    short of ``writes.wanted``) nothing else was written, and the caller undoes ``applied``
    (:func:`shift_reserved`).

    PostgreSQL: ONE statement, data-modifying CTEs gated on the conditional stock UPDATE having
    moved every row. SQLite (no DML in CTEs): the same statements one after the other."""
    if conn.dialect.name == "postgresql":
        return _settle_in_one(conn, writes)
    applied = try_reserve(conn, writes.deltas, buffer=writes.buffer)
    if applied != writes.wanted:
        return Settled(applied, set(), set())
    released = transition(
        conn, [h.id for h in writes.release], from_state=HoldState.HELD, to_state=HoldState.RELEASED
    )
    kept = transition(
        conn,
        [h.id for h in writes.keep],
        from_state=HoldState.HELD,
        to_state=writes.keep_state,
        **writes.keep_values,
    )
    insert_holds(conn, writes.new)
    append_ledger(conn, writes.ledger)
    return Settled(applied, released, kept)


def _settle_in_one(conn: Connection, writes: HoldWrites) -> Settled:
    """PostgreSQL: every write as one statement of data-modifying CTEs, gated on the conditional
    stock UPDATE having moved every row.

    Written as SQL text over ``unnest`` of array parameters so the statement has the same shape
    for 1 or 100 rows: it is compiled once and cached, where a ``VALUES`` list would be rebuilt
    and recompiled on every call (that cost ~10 ms a reservation)."""
    params: dict[str, Any] = {"now": clock.now()}
    ctes: list[str] = []
    parts: list[str] = []
    gate = "TRUE"
    rows = sorted((sku, loc, d, d + writes.buffer) for (sku, loc), d in writes.deltas.items() if d != 0)
    if rows:
        params.update(
            d_sku=[r[0] for r in rows],
            d_loc=[r[1] for r in rows],
            d_d=[r[2] for r in rows],
            d_need=[r[3] for r in rows],
            d_count=len(rows),
        )
        ctes.append(_MOVED_SQL)
        gate = "(SELECT count(*) FROM moved) = :d_count"
        parts.append("SELECT 'moved' AS part, sku AS a, location_id AS b FROM moved")
    if writes.release:
        params.update(rel_ids=sorted(h.id for h in writes.release), rel_state=HoldState.RELEASED.value)
        ctes.append(
            "released AS (UPDATE holds SET state = :rel_state, version = version + 1"
            f" WHERE id = ANY(CAST(:rel_ids AS text[])) AND state = 'held' AND {gate} RETURNING id)"
        )
        parts.append("SELECT 'released', id, NULL::text FROM released")
    if writes.keep:
        extra = sorted(writes.keep_values.items())
        params.update(keep_ids=sorted(h.id for h in writes.keep), keep_state=writes.keep_state.value)
        params.update({f"keep_{k}": v for k, v in extra})
        sets = "".join(f", {k} = :keep_{k}" for k, _ in extra)
        ctes.append(
            f"kept AS (UPDATE holds SET state = :keep_state, version = version + 1{sets}"
            f" WHERE id = ANY(CAST(:keep_ids AS text[])) AND state = 'held' AND {gate} RETURNING id)"
        )
        parts.append("SELECT 'kept', id, NULL::text FROM kept")
    if writes.new:
        first = writes.new[0]
        params.update(
            h_id=[h.id for h in writes.new],
            h_sku=[h.sku for h in writes.new],
            h_loc=[h.location_id for h in writes.new],
            h_q=[h.quantity for h in writes.new],
            h_owner=first.owner_id,
            h_state=first.state.value,
            h_order=first.order_id,
            h_expires=first.expires_at,
        )
        ctes.append(_INSERTED_SQL.replace("{gate}", gate))
        parts.append("SELECT 'inserted', id, NULL::text FROM inserted")
    if writes.ledger:
        entries = writes.ledger
        params.update(
            l_id=[new_id("led") for _ in entries],
            l_sku=[e.sku for e in entries],
            l_loc=[e.location_id for e in entries],
            l_dh=[e.delta_on_hand for e in entries],
            l_dr=[e.delta_reserved for e in entries],
            l_reason=[e.reason for e in entries],
            l_ref=[e.reference for e in entries],
            l_note=[e.note for e in entries],
            l_actor=[e.actor for e in entries],
        )
        ctes.append(_LOGGED_SQL.replace("{gate}", gate))
        parts.append("SELECT 'logged', id, NULL::text FROM logged")
    if not parts:
        return Settled(set(), set(), set())
    sql = "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(parts)
    out: dict[str, list[Any]] = {"moved": [], "released": [], "kept": [], "inserted": [], "logged": []}
    for part, a, b in direct.execute(conn, _text(sql), params):
        out[part].append((a, b) if part == "moved" else a)
    return Settled(set(out["moved"]), set(out["released"]), set(out["kept"]))


@lru_cache(maxsize=256)
def _text(sql: str) -> Any:
    """``text(sql)``, built once per statement shape (parsing the text costs on every call)."""
    return text(sql)


_MOVED_SQL = """moved AS (
    UPDATE stock_levels s
       SET reserved = s.reserved + v.d, version = s.version + 1, updated_at = :now
      FROM unnest(CAST(:d_sku AS text[]), CAST(:d_loc AS text[]), CAST(:d_d AS int[]),
                  CAST(:d_need AS int[])) AS v(sku, loc, d, need)
     WHERE s.sku = v.sku AND s.location_id = v.loc
       AND (v.d <= 0 OR v.need <= s.on_hand - s.reserved - s.safety_stock)
 RETURNING s.sku, s.location_id)"""

_INSERTED_SQL = """inserted AS (
    INSERT INTO holds (id, owner_id, sku, location_id, quantity, state, order_id, expires_at, version,
                       created_at)
    SELECT h.id, :h_owner, h.sku, h.loc, h.q, :h_state, CAST(:h_order AS text), :h_expires, 1, :now
      FROM unnest(CAST(:h_id AS text[]), CAST(:h_sku AS text[]), CAST(:h_loc AS text[]),
                  CAST(:h_q AS int[])) AS h(id, sku, loc, q)
     WHERE {gate}
 RETURNING id)"""

_LOGGED_SQL = """logged AS (
    INSERT INTO stock_ledger (id, sku, location_id, delta_on_hand, delta_reserved, reason, reference,
                              note, actor, at)
    SELECT l.id, l.sku, l.loc, l.dh, l.dr, l.reason, l.ref, l.note, l.actor, :now
      FROM unnest(CAST(:l_id AS text[]), CAST(:l_sku AS text[]), CAST(:l_loc AS text[]),
                  CAST(:l_dh AS int[]), CAST(:l_dr AS int[]), CAST(:l_reason AS text[]),
                  CAST(:l_ref AS text[]), CAST(:l_note AS text[]), CAST(:l_actor AS text[]))
           AS l(id, sku, loc, dh, dr, reason, ref, note, actor)
     WHERE {gate}
 RETURNING id)"""


def _commit_held_statements() -> tuple[Any, Any]:
    """The statements of :func:`commit_held`, built once (values bound per call): the bare
    UPDATE, and on PostgreSQL the same with its ledger INSERT as CTEs. Parameter names are
    ``p_``-prefixed: an UPDATE executed with a parameter named like a column would SET it."""
    owner_id = bindparam("p_owner_id", type_=String)
    order_id = bindparam("p_order_id", type_=String)
    other = holds.alias("other")
    mine_held = and_(other.c.owner_id == owner_id, other.c.state == HoldState.HELD.value)
    units = (
        select(other.c.sku, func.sum(other.c.quantity).label("units"))
        .where(mine_held)
        .group_by(other.c.sku)
        .subquery("units")
    )
    matched = (
        select(func.count())
        .select_from(units)
        .where(tuple_(units.c.sku, units.c.units).in_(bindparam("p_pairs", expanding=True)))
        .scalar_subquery()
    )
    stmt = (
        update(holds)
        .where(
            holds.c.owner_id == owner_id,
            holds.c.state == HoldState.HELD.value,
            ~exists().where(
                other.c.owner_id == owner_id,
                other.c.order_id == order_id,
                other.c.state == HoldState.COMMITTED.value,
            ),
            ~exists().where(
                mine_held,
                or_(
                    other.c.sku.not_in(bindparam("p_skus", expanding=True)),
                    other.c.location_id.not_in(bindparam("p_eligible", expanding=True)),
                ),
            ),
            matched == bindparam("p_n_skus", type_=Integer),
        )
        .values(state=HoldState.COMMITTED.value, order_id=order_id, version=holds.c.version + 1)
        .returning(*HOLD_COLUMNS)
    )
    done = stmt.cte("done")
    led_id = bindparam("p_led_prefix", type_=String) + func.lpad(
        cast(func.row_number().over(order_by=done.c.id), String), 6, "0"
    )
    logged = (
        insert(stock_ledger)
        .from_select(
            [
                "id",
                "sku",
                "location_id",
                "delta_on_hand",
                "delta_reserved",
                "reason",
                "reference",
                "note",
                "actor",
                "at",
            ],
            select(
                led_id,
                done.c.sku,
                done.c.location_id,
                literal(0, Integer),
                literal(0, Integer),
                literal("commit", String),
                order_id,
                done.c.id,
                owner_id,
                bindparam("p_now", type_=UTCDateTime()),
            ),
        )
        .returning(stock_ledger.c.id)
        .cte("logged")
    )
    return stmt, select(done).add_cte(logged)


_COMMIT_HELD, _COMMIT_HELD_LOGGED = _commit_held_statements()


def commit_held(
    conn: Connection,
    *,
    owner_id: str,
    order_id: str,
    demand: Mapping[str, int],
    eligible: Collection[str],
) -> list[Hold] | None:
    """The happy path of a commit, in one statement: turn ALL the owner's held holds into the
    order's committed ones — but only if they cover ``demand`` (sku → units > 0) exactly, sit at
    ``eligible`` locations, and the order has no committed holds yet (a repeat). Returns the
    committed holds, or None when that is not so and nothing changed.

    No stock number moves. The caller holds the row locks of every sku in ``demand`` and of the
    owner's held skus, so no other writer (each locks the rows before touching their holds)
    can change these holds under the statement. The ``commit`` ledger rows (zero deltas, note =
    hold id) go in the same statement on PostgreSQL, in a second one on SQLite."""
    if not demand:
        return None
    params = {
        "p_owner_id": owner_id,
        "p_order_id": order_id,
        "p_pairs": sorted(demand.items()),
        "p_skus": sorted(demand),
        "p_eligible": sorted(eligible),
        "p_n_skus": len(demand),
    }
    if conn.dialect.name == "postgresql":
        params |= {"p_led_prefix": new_id("led")[:-6], "p_now": clock.now()}
        committed = [_hold(r) for r in direct.execute(conn, _COMMIT_HELD_LOGGED, params)]
    else:
        committed = [_hold(r) for r in direct.execute(conn, _COMMIT_HELD, params)]
        append_ledger(
            conn,
            [LedgerEntry(h.sku, h.location_id, 0, 0, "commit", order_id, owner_id, h.id) for h in committed],
        )
    return sorted(committed, key=lambda h: (h.sku, h.location_id, h.id)) or None


def expire_due(
    conn: Connection,
    now: datetime,
    *,
    rows: Collection[RowKey] | None = None,
    ids: Collection[str] | None = None,
    except_owner: str | None = None,
) -> list[Hold]:
    """Mark due holds expired — the state predicate makes each hold expire once, whoever
    races — then give their units back. The caller holds the row locks of what it passes."""
    cond = [holds.c.state == HoldState.HELD.value, holds.c.expires_at < now]
    if rows is not None:
        cond.append(tuple_(holds.c.sku, holds.c.location_id).in_(sorted(rows)))
    if ids is not None:
        cond.append(holds.c.id.in_(sorted(ids)))
    if except_owner is not None:
        cond.append(holds.c.owner_id != except_owner)
    stmt = (
        update(holds)
        .where(*cond)
        .values(state=HoldState.EXPIRED.value, version=holds.c.version + 1)
        .returning(*HOLD_COLUMNS)
    )
    expired = [_hold(r) for r in conn.execute(stmt)]
    shift_reserved(conn, _negated_units(expired))
    return expired


def due_hold_rows(conn: Connection, now: datetime, limit: int) -> list[tuple[str, RowKey]]:
    stmt = (
        select(holds.c.id, holds.c.sku, holds.c.location_id)
        .where(holds.c.state == HoldState.HELD.value, holds.c.expires_at < now)
        .order_by(holds.c.expires_at, holds.c.id)
        .limit(limit)
    )
    return [(r.id, (r.sku, r.location_id)) for r in conn.execute(stmt)]


def _negated_units(items: Iterable[Hold]) -> dict[RowKey, int]:
    out: dict[RowKey, int] = {}
    for h in items:
        out[h.key] = out.get(h.key, 0) - h.quantity
    return out


def reserved_vs_holds(conn: Connection) -> list[tuple[str, str, int, int]]:
    """(sku, location_id, reserved, units in held+committed holds) where the two differ."""
    held = (
        select(holds.c.sku, holds.c.location_id, func.sum(holds.c.quantity).label("units"))
        .where(holds.c.state.in_([HoldState.HELD.value, HoldState.COMMITTED.value]))
        .group_by(holds.c.sku, holds.c.location_id)
        .subquery()
    )
    units = func.coalesce(held.c.units, 0)
    stmt = (
        select(stock_levels.c.sku, stock_levels.c.location_id, stock_levels.c.reserved, units)
        .outerjoin(
            held, and_(held.c.sku == stock_levels.c.sku, held.c.location_id == stock_levels.c.location_id)
        )
        .where(stock_levels.c.reserved != units)
        .order_by(stock_levels.c.sku, stock_levels.c.location_id)
    )
    return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(stmt)]


def orphan_hold_rows(conn: Connection) -> list[tuple[str, str, int]]:
    """Holds reserving units on a row that does not exist (drift the join above cannot see)."""
    stmt = (
        select(holds.c.sku, holds.c.location_id, func.sum(holds.c.quantity))
        .outerjoin(
            stock_levels,
            and_(stock_levels.c.sku == holds.c.sku, stock_levels.c.location_id == holds.c.location_id),
        )
        .where(
            holds.c.state.in_([HoldState.HELD.value, HoldState.COMMITTED.value]), stock_levels.c.sku.is_(None)
        )
        .group_by(holds.c.sku, holds.c.location_id)
    )
    return [(r[0], r[1], int(r[2])) for r in conn.execute(stmt)]


# --- ledger --------------------------------------------------------------------------------------


def append_ledger(conn: Connection, entries: Sequence[LedgerEntry]) -> None:
    """Append-only: one multi-row INSERT, never an UPDATE or DELETE."""
    if not entries:
        return
    now = clock.now()
    conn.execute(
        insert(stock_ledger),
        [
            {
                "id": new_id("led"),
                "sku": e.sku,
                "location_id": e.location_id,
                "delta_on_hand": e.delta_on_hand,
                "delta_reserved": e.delta_reserved,
                "reason": e.reason,
                "reference": e.reference,
                "note": e.note,
                "actor": e.actor,
                "at": now,
            }
            for e in entries
        ],
    )


def list_ledger(
    conn: Connection,
    actor: Principal,
    *,
    sku: str | None,
    location_id: str | None,
    after: str | None,
    limit: int,
) -> list[Row[Any]]:
    stmt = (
        select(stock_ledger)
        .where(reach_filter(actor, stock_ledger.c.location_id))
        .order_by(stock_ledger.c.id)
        .limit(limit)
    )
    if sku is not None:
        stmt = stmt.where(stock_ledger.c.sku == sku)
    if location_id is not None:
        stmt = stmt.where(stock_ledger.c.location_id == location_id)
    if after is not None:
        stmt = stmt.where(stock_ledger.c.id > after)
    return list(conn.execute(stmt))
