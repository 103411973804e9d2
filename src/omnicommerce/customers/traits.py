"""Computed traits, updated incrementally as events are stored (never by a batch job): first and
last seen, event count, channels used, order figures (count, lifetime value, average order
value, last purchase), preferred store and favourite categories. And custom traits: what identify
calls (and imported ``trait:`` columns) say about the person, the latest statement per name.

Kept per account — the profile an event first belonged to — and summed over a profile's accounts
when read, so merging needs no recomputation and an unmerge splits the figures back exactly."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from omnicommerce.catalog import service as catalog
from omnicommerce.customers import repository as repo
from omnicommerce.platform import clock
from omnicommerce.platform.db import UnitOfWork

Activity = tuple[str, datetime, str | None]  # (account, when it happened, channel)

ORDER_PLACED, ORDER_CANCELLED, ORDER_REFUNDED = "Order Placed", "Order Cancelled", "Order Refunded"


def record_activity(uow: UnitOfWork, activity: Iterable[Activity]) -> None:
    """Two statements for any number of events: one upsert of seen windows, one of channels."""
    windows: dict[str, list[Any]] = {}
    channels: set[tuple[str, str]] = set()
    for account, at, channel in activity:
        window = windows.setdefault(account, [at, at, 0])
        window[0], window[1], window[2] = min(window[0], at), max(window[1], at), window[2] + 1
        if channel:
            channels.add((account, channel))
    repo.add_activity(
        uow.conn,
        [
            {"customer_id": a, "first_seen": w[0], "last_seen": w[1], "event_count": w[2]}
            for a, w in windows.items()
        ],
    )
    repo.add_channels(uow.conn, [{"customer_id": a, "channel": c} for a, c in sorted(channels)])


def record_order(uow: UnitOfWork, *, account: str, name: str, facts: Mapping[str, Any], at: datetime) -> None:
    """An order event's effect on the account's figures (placed adds, cancelled and refunded take back)."""
    total = int(facts.get("total", 0))
    delta = {
        ORDER_PLACED: (1, total, at),
        ORDER_CANCELLED: (-1, -total, None),
        ORDER_REFUNDED: (0, -int(facts.get("refunded_amount", 0)), None),
    }.get(name)
    if delta is None or not facts.get("currency"):
        return
    count, value, purchased = delta
    _record_affinities(uow, account, facts, sign=count)
    repo.add_order_stats(
        uow.conn,
        {
            "customer_id": account,
            "currency": facts["currency"],
            "order_count": count,
            "lifetime_value": value,
            "last_purchase_at": purchased,
        },
    )


def _record_affinities(uow: UnitOfWork, account: str, facts: Mapping[str, Any], *, sign: int) -> None:
    """A placed order (sign +1; cancelled: -1) counts for the store it was placed or picked up
    at and for every category of the items in it."""
    if sign == 0:
        return
    keys = [("store", str(facts["location_id"]))] if facts.get("location_id") else []
    if skus := [str(sku) for sku in facts.get("skus") or []]:
        categories = {c for v in catalog.get_variants(uow, skus).values() for c in v.category_ids}
        keys += [("category", c) for c in sorted(categories)]
    repo.add_affinities(
        uow.conn, [{"customer_id": account, "kind": kind, "key": key, "weight": sign} for kind, key in keys]
    )


def profile_traits(uow: UnitOfWork, root: str) -> dict[str, Any]:
    """The profile's traits: the sum over its accounts (itself and those merged into it)."""
    accounts = [root, *repo.merged_members(uow.conn, root)]
    activity, channels, orders = repo.traits_of(uow.conn, accounts)
    by_currency: dict[str, list[Any]] = {}
    for row in orders:
        figures = by_currency.setdefault(row.currency, [0, 0])
        figures[0] += row.order_count
        figures[1] += row.lifetime_value
    # Figures in the currency most orders were paid in; every currency is listed as well.
    currency = max(by_currency, key=lambda c: by_currency[c][0], default=None)
    count, value = by_currency[currency] if currency else (0, 0)
    return {
        "first_seen": min((r.first_seen for r in activity), default=None),
        "last_seen": max((r.last_seen for r in activity), default=None),
        "event_count": sum(r.event_count for r in activity),
        "channels": channels,
        "order_count": count,
        "lifetime_value": value,
        "average_order_value": value // count if count > 0 else 0,
        "currency": currency,
        "lifetime_value_by_currency": {c: f[1] for c, f in sorted(by_currency.items())},
        "last_purchase_at": max((r.last_purchase_at for r in orders if r.last_purchase_at), default=None),
        "preferred_store": next(iter(repo.top_affinities(uow.conn, accounts, kind="store", limit=1)), None),
        "favourite_categories": repo.top_affinities(uow.conn, accounts, kind="category", limit=3),
    }


# --- custom traits ---------------------------------------------------------------------------------

MAX_TRAIT_NAME = 100  # characters
MAX_TRAIT_BYTES = 2000  # a value's JSON: a trait is a fact about a person, not a document
MAX_TRAITS_PER_EVENT = 100


@dataclass(frozen=True, slots=True)
class TraitStatement:
    """What one event said about an account: its traits, when it happened, who sent it."""

    account: str
    traits: Mapping[str, Any]
    at: datetime
    source: str


def record_custom_traits(
    uow: UnitOfWork, statements: Iterable[TraitStatement], *, skip: Collection[str] = ()
) -> dict[int, list[str]]:
    """Keep each statement's traits (all but the names in ``skip``: identifiers, which the identity
    graph holds) per account; an older statement never overwrites a newer one, in the request
    (the latest wins here) or against what is stored (one upsert). Returns warnings for the
    traits not kept, by the statement's position."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    warnings: dict[int, list[str]] = {}
    now = clock.now()
    for n, statement in enumerate(statements):
        for name, value, problem in _custom_traits(statement.traits, skip):
            if problem is not None:
                warnings.setdefault(n, []).append(f"trait {name[:40]!r} not kept: {problem}")
                continue
            key = (statement.account, name)
            if key in latest and latest[key]["observed_at"] > statement.at:
                continue  # a later event in the same request already said otherwise
            latest[key] = {
                "customer_id": statement.account,
                "name": name,
                "value": value,
                "observed_at": statement.at,
                "source": statement.source,
                "updated_at": now,
            }
    repo.upsert_custom_traits(uow.conn, list(latest.values()))
    return warnings


def _custom_traits(given: Mapping[str, Any], skip: Collection[str]) -> Iterable[tuple[str, str, str | None]]:
    """(name, JSON value, problem or None) for each trait worth keeping."""
    kept = 0
    for name, value in given.items():
        if name in skip:
            continue
        if not name or len(name) > MAX_TRAIT_NAME:
            yield name, "", f"a trait name has 1 to {MAX_TRAIT_NAME} characters"
            continue
        kept += 1
        if kept > MAX_TRAITS_PER_EVENT:
            yield name, "", f"at most {MAX_TRAITS_PER_EVENT} traits per event are kept"
            continue
        encoded = orjson.dumps(value).decode()
        if len(encoded) > MAX_TRAIT_BYTES:
            yield name, "", f"its value is longer than {MAX_TRAIT_BYTES} characters as JSON"
            continue
        yield name, encoded, None


def custom_traits(uow: UnitOfWork, accounts: Collection[str]) -> dict[str, Any]:
    """The profile's custom traits over its accounts: per name, the value of the latest event."""
    found: dict[str, Any] = {}
    for row in repo.custom_traits_of(uow.conn, accounts):  # oldest first: later rows win
        found[row.name] = orjson.loads(row.value)
    return dict(sorted(found.items()))


def profile_accounts(uow: UnitOfWork, root: str) -> list[str]:
    """The profile itself and every account merged into it."""
    return [root, *repo.merged_members(uow.conn, root)]
