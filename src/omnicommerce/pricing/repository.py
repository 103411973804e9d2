"""Pricing SQL: price reads in one statement, upserts, and the coupon's conditional UPDATE."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from omnicommerce.platform import direct
from omnicommerce.platform.db import conflict_insert
from omnicommerce.pricing.domain import DuplicateCoupon
from omnicommerce.pricing.models import coupon_redemptions, coupons, price_overrides, prices, promotions

_CHUNK = 500  # rows per multi-row statement, under both databases' parameter limits


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield list(rows[start : start + _CHUNK])


# Built once: the statement object memoizes its cache key, so each call only binds values.
_PRICES_AND_MARK = union_all(
    select(
        literal("base").label("kind"),
        prices.c.sku,
        cast(null(), String(40)).label("channel"),
        prices.c.amount,
    ).where(prices.c.sku.in_(bindparam("skus", expanding=True)), prices.c.currency == bindparam("currency")),
    select(
        literal("override"), price_overrides.c.sku, price_overrides.c.channel, price_overrides.c.amount
    ).where(
        price_overrides.c.sku.in_(bindparam("skus", expanding=True)),
        price_overrides.c.currency == bindparam("currency"),
        price_overrides.c.channel == bindparam("channel"),
    ),
    select(literal("mark"), func.max(promotions.c.id), cast(null(), String(40)), func.count()),
)


def prices_and_promotions_mark(
    conn: Connection, skus: Collection[str], currency: str, channel: str
) -> tuple[list[tuple[str, str | None, int]], tuple[int, str | None]]:
    """(sku, channel or None, amount) rows — base prices and this channel's overrides — and a mark
    of the promotions table, (row count, greatest id), in one statement. Any insert or delete of
    a promotion changes the mark (ids grow with time): that is how a cached promotion list knows
    it is out of date without a query of its own."""
    rows: list[tuple[str, str | None, int]] = []
    marked: tuple[int, str | None] = (0, None)
    params = {"skus": list(skus), "currency": currency, "channel": channel}
    for kind, sku, chan, amount in direct.execute(conn, _PRICES_AND_MARK, params):
        if kind == "mark":
            marked = (int(amount), sku)
        else:
            rows.append((sku, chan, amount))
    return rows, marked


def live_promotions(conn: Connection, now: datetime) -> list[Any]:
    """Every active promotion not over at ``now`` (started or not): what a quote at or after
    ``now`` may need, filtered by its own time."""
    stmt = select(promotions).where(
        promotions.c.active.is_(True), or_(promotions.c.ends_at.is_(None), promotions.c.ends_at > now)
    )
    return list(conn.execute(stmt).all())


def all_prices_of(conn: Connection, sku: str) -> list[Any]:
    base = select(
        prices.c.sku, prices.c.currency, cast(null(), String(40)).label("channel"), prices.c.amount
    ).where(prices.c.sku == sku)
    override = select(
        price_overrides.c.sku, price_overrides.c.currency, price_overrides.c.channel, price_overrides.c.amount
    ).where(price_overrides.c.sku == sku)
    stmt = union_all(base, override)
    return sorted(conn.execute(stmt).all(), key=lambda r: (r.currency, r.channel or ""))


def upsert_prices(
    conn: Connection, base_rows: Sequence[dict[str, Any]], override_rows: Sequence[dict[str, Any]]
) -> None:
    """Rows must be unique per key: PostgreSQL refuses to update one row twice in a statement."""
    for table, rows, keys in (
        (prices, base_rows, ["sku", "currency"]),
        (price_overrides, override_rows, ["sku", "currency", "channel"]),
    ):
        for chunk in _chunks(rows):
            stmt = conflict_insert(table, conn.dialect.name).values(chunk)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=keys,
                    set_={"amount": stmt.excluded.amount, "updated_at": stmt.excluded.updated_at},
                )
            )


def _running(at: datetime) -> ColumnElement[bool]:
    return and_(
        promotions.c.active.is_(True),
        promotions.c.starts_at <= at,
        or_(promotions.c.ends_at.is_(None), promotions.c.ends_at > at),
    )


def insert_promotion(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(promotions).values(row))


def promotion_exists(conn: Connection, promotion_id: str) -> bool:
    return conn.execute(select(promotions.c.id).where(promotions.c.id == promotion_id)).first() is not None


def list_promotions(
    conn: Connection, *, running_at: datetime | None, after: str | None, limit: int
) -> list[Any]:
    stmt = select(promotions).order_by(promotions.c.id).limit(limit)
    if running_at is not None:
        stmt = stmt.where(_running(running_at))
    if after:
        stmt = stmt.where(promotions.c.id > after)
    return list(conn.execute(stmt).all())


def coupons_by_code(conn: Connection, codes: Collection[str]) -> list[Any]:
    return list(conn.execute(select(coupons).where(coupons.c.code.in_(list(codes)))).all())


def insert_coupon(conn: Connection, row: dict[str, Any]) -> None:
    try:
        conn.execute(insert(coupons).values(row))
    except IntegrityError as exc:
        raise DuplicateCoupon(f"coupon {row['code']!r} already exists", coupon_code=row["code"]) from exc


def try_use_coupon(conn: Connection, code: str) -> bool:
    """One use of ``code`` if any are left.

    A single conditional UPDATE, so concurrent redemptions never overshoot ``max_uses``."""
    res = conn.execute(
        update(coupons)
        .where(coupons.c.code == code, or_(coupons.c.max_uses.is_(None), coupons.c.uses < coupons.c.max_uses))
        .values(uses=coupons.c.uses + 1)
    )
    return res.rowcount == 1


def record_redemptions(conn: Connection, codes: Sequence[str], order_id: str, at: datetime) -> None:
    conn.execute(
        insert(coupon_redemptions).values(
            [{"code": c, "order_id": order_id, "redeemed_at": at} for c in codes]
        )
    )
