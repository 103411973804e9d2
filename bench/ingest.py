"""``omni bench ingest``: customer events per second sustained through HTTP, next to a bare INSERT
loop of the same rows on the same database, as a ratio — on SQLite and on PostgreSQL.

HTTP: ``omni serve --workers 2`` on a scratch database; ``--clients`` aiohttp clients post Segment
``/v1/batch`` requests of ``--batch`` events each (write key as Basic auth) for ``--seconds``.
The traffic is a storefront's: page views and track events of a pool of visitors (anonymous ids),
signed-in users' events (user ids), and identify calls that name a visitor by email (each one
creates or links a profile in the identity graph). A request commits the people it
settles first, then its events (docs/cdp.md, *Concurrency*).

Baseline: the same number of rows, shaped as the server stores them, inserted into the same
``customer_events`` table (same indexes) by one connection, ``--batch`` rows per transaction with
a plain multi-row INSERT — the database's own speed for these rows without HTTP, validation or
identity resolution.

The API runs as deployed (docs/deploy.md): what reacts to ingested events after commit (segment
re-evaluation, probabilistic matching of new profiles, webhooks) runs in ``omni worker``
processes, so the server starts with ``OMNI_API_RUNS_RELAY=false``.

    omni bench ingest [--seconds 15] [--clients 8] [--batch 100] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import plain_pg_url, scratch_database, server

PORT = 8771
VISITORS = 20_000
USERS = 2_000


def make_event(rng: random.Random, now: datetime) -> dict[str, Any]:
    """One storefront event: 70% anonymous page/track, 25% a signed-in user's, 5% identify."""
    roll = rng.random()
    visitor = f"anon-{rng.randrange(VISITORS)}"
    # Out of order on purpose: events happened up to an hour before they are sent.
    stamp = (now - timedelta(seconds=rng.uniform(0, 3600))).isoformat()
    base = {"messageId": uuid.uuid4().hex, "timestamp": stamp, "context": {"channel": "browser"}}
    if roll < 0.45:
        return base | {
            "type": "page",
            "anonymousId": visitor,
            "name": "Product",
            "properties": {"sku": "SKU-1"},
        }
    if roll < 0.70:
        return base | {
            "type": "track",
            "anonymousId": visitor,
            "event": "Product Viewed",
            "properties": {"sku": "SKU-2"},
        }
    user = rng.randrange(USERS)
    if roll < 0.95:
        return base | {
            "type": "track",
            "userId": f"user-{user}",
            "event": "Product Added",
            "properties": {"qty": 1},
        }
    return base | {
        "type": "identify",
        "userId": f"user-{user}",
        "anonymousId": visitor,
        "traits": {"email": f"shopper{user}@example.com", "first_name": "Bench"},
    }


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="omni_bench_ingest_") as tmp:
            yield f"sqlite:///{tmp}/ingest.db"
        return
    with scratch_database("omni_bench_ingest") as (_, url):
        yield url


def prepare(url: str) -> str:
    """Migrated schema and a write key (an API key with events:write)."""
    from omnicommerce.platform.auth import Scope, create_api_key
    from omnicommerce.platform.db import make_nullpool_engine
    from omnicommerce.platform.migrate import upgrade

    upgrade(url)
    engine = make_nullpool_engine(url)
    with engine.begin() as conn:
        key = create_api_key(conn, name="bench-ingest", scopes=[Scope.EVENTS_WRITE]).secret
    engine.dispose()
    return key


async def drive(
    base: str, key: str, *, clients: int, batch: int, seconds: float, seed: int
) -> tuple[int, int, float]:
    """Returns (events accepted, failed requests, elapsed seconds)."""
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    accepted = failures = 0
    errors: dict[int, str] = {}
    started = time.perf_counter()
    deadline = started + seconds
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        base_url=base, connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as s:

        async def client(n: int) -> None:
            nonlocal accepted, failures
            rng = random.Random(seed * 1000 + n)
            while time.perf_counter() < deadline:
                now = datetime.now(UTC)
                body = orjson.dumps({"batch": [make_event(rng, now) for _ in range(batch)]})
                async with s.post(
                    "/v1/batch", data=body, headers=auth | {"Content-Type": "application/json"}
                ) as res:
                    payload = await res.json(content_type=None)
                if res.status == 200:
                    accepted += payload["accepted"]
                else:
                    failures += 1
                    errors.setdefault(res.status, str(payload)[:300])

        await asyncio.gather(*(client(n) for n in range(clients)))
    for status, sample in errors.items():
        print(f"    HTTP {status}: {sample}", flush=True)
    return accepted, failures, time.perf_counter() - started


def deadlocks(url: str) -> int:
    """Deadlocks PostgreSQL detected in this database so far (each one cost a request a second
    of waiting and a retry); SQLite runs one writer at a time and has none."""
    if not url.startswith("postgresql"):
        return 0
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(plain_pg_url(url), autocommit=True) as conn:
        row = conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def bare_insert_rate(url: str, rows: int, batch: int, seed: int) -> float:
    """Rows per second of plain multi-row INSERTs into customer_events, ``batch`` per commit."""
    from sqlalchemy import insert

    import omnicommerce.tables  # noqa: F401
    from omnicommerce.customers.models import customer_events
    from omnicommerce.platform.db import Database

    rng = random.Random(seed)
    now = datetime.now(UTC)
    prepared = [_row(make_event(rng, now), now) for _ in range(rows)]
    db = Database(url, pool_size=1)
    started = time.perf_counter()
    with db.engine.connect() as conn:
        for start in range(0, rows, batch):
            conn.execute(insert(customer_events), prepared[start : start + batch])
            conn.commit()
    elapsed = time.perf_counter() - started
    db.dispose()
    return rows / elapsed


def _row(event: dict[str, Any], received: datetime) -> dict[str, Any]:
    payload = {k: event[k] for k in ("properties", "traits", "context") if k in event}
    return {
        "id": "cev_" + uuid.uuid4().hex[:26],
        "message_id": "bare-" + event["messageId"],
        "type": event["type"],
        "name": event.get("event") or event.get("name"),
        "customer_id": None,
        "origin_customer_id": None,
        "anonymous_id": event.get("anonymousId"),
        "user_id": event.get("userId"),
        "channel": "web",
        "source": "bench",
        "timestamp": datetime.fromisoformat(event["timestamp"]),
        "received_at": received,
        "payload": orjson.dumps(payload).decode(),
    }


def run(kind: str, args: argparse.Namespace) -> None:
    with database(kind) as url:
        key = prepare(url)
        # Rate limits off: this measures the ingestion path, not the limiter's budget.
        env = {"OMNI_RATE_LIMIT_ENABLED": "false", "OMNI_API_RUNS_RELAY": "false"}
        with server(url, port=PORT, workers=args.workers, extra_env=env) as base:
            asyncio.run(drive(base, key, clients=2, batch=args.batch, seconds=2, seed=1))  # warm-up
            deadlocks_before = deadlocks(url)
            accepted, failures, elapsed = asyncio.run(
                drive(base, key, clients=args.clients, batch=args.batch, seconds=args.seconds, seed=2)
            )
            deadlocked = deadlocks(url) - deadlocks_before
        events_per_s = accepted / elapsed
        print(
            f"  {kind}: {accepted} events in {elapsed:.1f} s through HTTP, failed requests {failures}, "
            f"deadlocks (requests rolled back and run again) {deadlocked}",
            flush=True,
        )
        bare = bare_insert_rate(url, max(accepted, args.batch), args.batch, seed=3)
        print(
            f"ingest: events_per_s={events_per_s:.0f} bare_insert_per_s={bare:.0f} "
            f"ratio={events_per_s / bare:.3f} database={kind}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--batch", type=int, default=100, help="events per request (and per bare transaction)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    for kind in args.databases.split(","):
        run(kind.strip(), args)


if __name__ == "__main__":
    main()
