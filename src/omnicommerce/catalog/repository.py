"""Catalog SQL. ``visible_on`` is the one place listing scope is applied to reads."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, bindparam, func, not_, or_, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from omnicommerce.catalog.domain import DuplicateCategory, DuplicateSku
from omnicommerce.catalog.models import categories, products, variants
from omnicommerce.platform import direct

# Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def visible_on(channel: str | None) -> ColumnElement[bool]:
    """Products listed on ``channel`` (every product when no channel applies)."""
    if channel is None:
        return true()
    return not_(products.c.hidden_channels.contains(f" {channel} ", autoescape=True))


def insert_categories(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    try:
        for chunk in _chunks(rows):
            conn.execute(categories.insert().values(list(chunk)))
    except IntegrityError as exc:
        raise DuplicateCategory("a category with this id already exists") from exc


def existing_category_ids(conn: Connection, ids: Collection[str]) -> set[str]:
    if not ids:
        return set()
    return set(conn.execute(select(categories.c.id).where(categories.c.id.in_(list(ids)))).scalars())


def list_categories(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(select(categories).order_by(categories.c.id)).all())


def taken_skus_and_barcodes(conn: Connection, skus: Collection[str], barcodes: Collection[str]) -> list[Any]:
    """Existing variants clashing with a new SKU or barcode, in one query."""
    clash: ColumnElement[bool] = variants.c.sku.in_(list(skus))
    if barcodes:
        clash = or_(clash, variants.c.barcode.in_(list(barcodes)))
    return list(conn.execute(select(variants.c.sku, variants.c.barcode).where(clash)).all())


def insert_products(
    conn: Connection, product_rows: Sequence[dict[str, Any]], variant_rows: Sequence[dict[str, Any]]
) -> None:
    """Multi-row inserts; a unique violation here means a concurrent writer took a SKU or barcode."""
    try:
        for chunk in _chunks(product_rows):
            conn.execute(products.insert().values(list(chunk)))
        for chunk in _chunks(variant_rows):
            conn.execute(variants.insert().values(list(chunk)))
    except IntegrityError as exc:
        raise DuplicateSku("a SKU or barcode was created concurrently; retry to see which") from exc


def find_products(
    conn: Connection,
    *,
    channel: str | None,
    category: str | None,
    q: str | None,
    after: str | None,
    limit: int,
) -> list[Row[Any]]:
    conds: list[ColumnElement[bool]] = [visible_on(channel)]
    if category:
        conds.append(products.c.category_ids.contains(f" {category} ", autoescape=True))
    if q:
        needle = q.lower()
        sku_match = select(variants.c.product_id).where(
            func.lower(variants.c.sku).contains(needle, autoescape=True)
        )
        conds.append(
            or_(func.lower(products.c.name).contains(needle, autoescape=True), products.c.id.in_(sku_match))
        )
    if after:
        conds.append(products.c.id > after)
    stmt = select(products).where(and_(*conds)).order_by(products.c.id).limit(limit)
    return list(conn.execute(stmt).all())


def get_product(conn: Connection, product_id: str, *, channel: str | None) -> Row[Any] | None:
    return conn.execute(select(products).where(products.c.id == product_id, visible_on(channel))).first()


def variants_of(conn: Connection, product_ids: Collection[str]) -> list[Row[Any]]:
    if not product_ids:
        return []
    stmt = (
        select(variants)
        .where(variants.c.product_id.in_(list(product_ids)))
        .order_by(variants.c.product_id, variants.c.position)
    )
    return list(conn.execute(stmt).all())


def variant_infos(conn: Connection, skus: Collection[str], *, channel: str | None = None) -> list[Row[Any]]:
    """Variants joined with their product: one statement however many SKUs."""
    if not skus:
        return []
    if channel is None:
        return list(direct.execute(conn, _VARIANT_INFOS, {"skus": list(skus)}).all())
    params = {"skus": list(skus), "listed": _contains_pattern(channel)}
    return list(direct.execute(conn, _VARIANT_INFOS_ON, params).all())


# On the cart-line path: built once (the channel's LIKE pattern and the SKUs are parameters).
_VARIANT_INFOS = (
    select(
        variants,
        products.c.name.label("product_name"),
        products.c.category_ids,
        products.c.hidden_channels,
        products.c.active.label("product_active"),
    )
    .join(products, products.c.id == variants.c.product_id)
    .where(variants.c.sku.in_(bindparam("skus", expanding=True)))
)
_VARIANT_INFOS_ON = _VARIANT_INFOS.where(
    not_(products.c.hidden_channels.like(bindparam("listed"), escape="/"))
)


def _contains_pattern(channel: str) -> str:
    """The LIKE pattern (escape ``/``) matching packed ids containing ``channel``, as ``visible_on``."""
    escaped = channel.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"% {escaped} %"


def set_hidden_channels(conn: Connection, product_id: str, packed: str, now: datetime) -> bool:
    res = conn.execute(
        update(products).where(products.c.id == product_id).values(hidden_channels=packed, updated_at=now)
    )
    return res.rowcount > 0
