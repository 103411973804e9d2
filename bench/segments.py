"""``omni bench segments``: evaluating rule-based segments, set-based against a per-profile loop.

On a seeded population (profiles with 0 to 8 events each in three channels over a year, order
figures), five segments are evaluated two ways on the same database in the same run:

- set-based, as the product does: one SQL statement per segment over every profile;
- baseline: one query per profile (the same five predicates for that profile only), the way a
  loop over customers would do it.

Both must find the same members (checked). Then, as the product runs: creating each segment
(evaluation, member rows and one outbox event per member) and incremental re-evaluation of one
profile against all five segments (what each event costs).

    omni bench segments [--profiles 10000] [--database sqlite|postgresql|both] [--seed 7]

Last lines, machine-readable, one per database: ``segments: profiles=<n> set_based_s=<n>
per_profile_s=<n> ratio=<n> create_s=<n> incremental_ms=<n> database=<sqlite|postgresql>``
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import omnicommerce.tables  # noqa: F401  (every table on the metadata)
from _common import scratch_database
from omnicommerce.customers.models import (
    customer_channels,
    customer_events,
    customer_order_stats,
    customer_traits,
    customers,
)
from omnicommerce.customers.segments import repository as repo
from omnicommerce.customers.segments import service
from omnicommerce.customers.segments.domain import parse_rule
from omnicommerce.customers.segments.schemas import SegmentCreate
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database
from omnicommerce.platform.migrate import upgrade

console = Console(stderr=True)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
RULES: list[dict[str, Any]] = [
    {
        "all": [
            {"event": "order.placed", "where": {"channel": "pos"}, "within_days": 90},
            {"not": {"event": "order.placed", "where": {"channel": ["web", "app"]}, "within_days": 90}},
        ]
    },
    {"trait": "order_count", "op": ">=", "value": 3},
    {
        "all": [
            {"trait": "lifetime_value", "op": ">", "value": 20000, "currency": "USD"},
            {"trait": "channels", "op": "contains", "value": "pos"},
        ]
    },
    {"event": "*", "within_days": 30, "count": ">=2"},
    {"not": {"event": "Product Viewed"}},
]


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with scratch_database("omni_bench_segments") as (_, url):
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="omni-bench-segments-") as tmp:
        yield f"sqlite:///{tmp}/omni.db"


def seed(db: Database, profiles: int, rnd: random.Random) -> None:
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in (customers, customer_events, customer_traits)}
    rows |= {customer_channels: [], customer_order_stats: []}
    for i in range(profiles):
        cid = f"cus_bench{i:08d}"
        rows[customers].append(
            {"id": cid, "created_channel": "web", "created_by": "bench", "created_at": NOW, "updated_at": NOW}
        )
        count = rnd.randint(0, 8)
        channels = set()
        for j in range(count):
            channel = rnd.choice(["web", "app", "pos"])
            channels.add(channel)
            rows[customer_events].append(
                {
                    "id": f"cev_bench{i:08d}_{j}",
                    "message_id": f"bench-{i}-{j}",
                    "type": "track",
                    "name": rnd.choice(["Order Placed", "Product Viewed"]),
                    "customer_id": cid,
                    "origin_customer_id": cid,
                    "channel": channel,
                    "source": "bench",
                    "timestamp": NOW - timedelta(days=rnd.randint(0, 365)),
                    "received_at": NOW,
                    "payload": "{}",
                }
            )
        if count:
            rows[customer_traits].append(
                {"customer_id": cid, "first_seen": NOW, "last_seen": NOW, "event_count": count}
            )
            rows[customer_channels] += [{"customer_id": cid, "channel": c} for c in sorted(channels)]
            rows[customer_order_stats].append(
                {
                    "customer_id": cid,
                    "currency": "USD",
                    "order_count": rnd.randint(0, 5),
                    "lifetime_value": rnd.randint(0, 50000),
                }
            )
    with db.engine.begin() as conn:
        for table, values in rows.items():
            for start in range(0, len(values), 2000):
                conn.execute(insert(table), values[start : start + 2000])
        if db.dialect == "postgresql":
            conn.execute(text("ANALYZE"))


def predicates(db: Database) -> dict[str, Any]:
    rules = {f"s{k}": parse_rule(r) for k, r in enumerate(RULES)}
    return {
        k: repo.condition(r, now=NOW, aliases=service.EVENT_ALIASES, dialect=db.dialect)
        for k, r in rules.items()
    }


def set_based(db: Database) -> tuple[float, dict[str, set[str]]]:
    started = time.perf_counter()
    found = {}
    with db.uow(readonly=True) as uow:
        for key, predicate in predicates(db).items():
            found[key] = set(uow.conn.execute(repo.matching(predicate)).scalars())
    return time.perf_counter() - started, found


def per_profile(db: Database, profile_ids: Sequence[str]) -> tuple[float, dict[str, set[str]]]:
    started = time.perf_counter()
    found: dict[str, set[str]] = {f"s{k}": set() for k in range(len(RULES))}
    preds = predicates(db)
    with db.uow(readonly=True) as uow:
        for cid in profile_ids:
            for key in repo.evaluate_profiles(uow.conn, preds, [cid]).get(cid, set()):
                found[key].add(cid)
    return time.perf_counter() - started, found


def run(kind: str, profiles: int, seed_value: int) -> str:
    clock.set_clock(lambda: NOW)
    with database(kind) as url:
        upgrade(url)
        db = Database(url, pool_size=2)
        try:
            seed(db, profiles, random.Random(seed_value))
            ids = [f"cus_bench{i:08d}" for i in range(profiles)]
            fast, members = set_based(db)
            slow, looped = per_profile(db, ids)
            if looped != members:
                raise SystemExit(f"{kind}: the two evaluations disagree")
            created = time.perf_counter()
            for k, rules in enumerate(RULES):
                with db.uow() as uow:
                    segment = service.create_segment(
                        uow, SYSTEM, SegmentCreate(name=f"bench {k}", rules=rules)
                    )
                    uow.commit()
                console.print(f"  {kind}: segment {k} created with {segment.size} members")
            create_s = time.perf_counter() - created
            sample = random.Random(seed_value).sample(ids, min(200, profiles))
            started = time.perf_counter()
            for cid in sample:
                with db.uow() as uow:
                    service.reevaluate_customers(uow, [cid])
                    uow.commit()
            incremental_ms = (time.perf_counter() - started) / len(sample) * 1000
        finally:
            db.dispose()
            clock.set_clock(None)
    sizes = ", ".join(f"{len(m)}" for m in members.values())
    console.print(
        f"{kind}: {profiles} profiles, members per segment {sizes}; set-based {fast:.3f} s, "
        f"per-profile loop {slow:.3f} s ({slow / fast:.1f}x); creating all five {create_s:.2f} s "
        f"(incl. one outbox event per member); one event's re-evaluation {incremental_ms:.2f} ms"
    )
    return (
        f"segments: profiles={profiles} set_based_s={fast:.3f} per_profile_s={slow:.3f} "
        f"ratio={slow / fast:.1f} create_s={create_s:.2f} incremental_ms={incremental_ms:.2f} database={kind}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=10000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    lines = [run(kind, args.profiles, args.seed) for kind in kinds]
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
