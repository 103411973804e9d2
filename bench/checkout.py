"""``omni bench checkout``: the full checkout flow over HTTP on PostgreSQL, next to pgbench.

Per flow, five requests through the real API over loopback: create a cart for a customer e-mail
with a shipping address, add a line, choose the fulfillment, check out with a payment token,
read the order back. Run with 8 and 32 concurrent clients for a fixed window against
``omni serve --workers 3`` with handlers inline (``OMNI_API_INLINE_HANDLERS``, docs/deploy.md);
in the same run, ``pgbench -b tpcb-like -c 8 -j 2`` on the same server gives the baseline. Also:
SQL statements per flow (counted in-process on the same database) and available-to-promise
latency for one SKU across every location.

    omni bench checkout [--seconds 20] [--clients 8,32] [--workers 3] [--handlers inline|threads]
                        [--with-relay]

The API processes run as in production (docs/deploy.md): the event consumers that react to a
placed order (fulfillment routing, the customer profile, webhooks) run in ``omni worker``
processes of their own, not in the measured path, so the server starts with
``OMNI_API_RUNS_RELAY=false`` and the events wait in the outbox. ``--with-relay`` measures the
single-process layout instead, with every consumer running inside the API processes.
``--handlers threads --workers 2`` measures the default thread-pool mode.

The load generator is bench/_http.py, a minimal keep-alive HTTP/1.1 client: it shares the two
cores with the server and PostgreSQL, as pgbench's C client does in the baseline, so it should
take as little of them as it can (a third of aiohttp's CPU per flow)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentile, pgbench_tps, scratch_database, server
from _http import Connection, HttpError

PORT = 8765
ADDRESS = {
    "name": "Bench Shopper",
    "line1": "1 Loop Plaza",
    "city": "Chicago",
    "postal_code": "60603",
    "country": "US",
}


@dataclass
class Run:
    clients: int
    seconds: float
    flows: int = 0
    failures: int = 0
    failed_steps: Counter[str] = field(default_factory=Counter)  # "step status title" -> count
    flow_ms: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.flows / self.seconds


def prepare(database_url: str) -> tuple[dict[str, str], list[str]]:
    """Demo retailer in the scratch database; returns demo keys and SKUs sellable on the web."""
    from omnicommerce.demo.data import generate
    from omnicommerce.demo.loader import demo_keys, load_demo
    from omnicommerce.platform import clock
    from omnicommerce.platform.config import Settings
    from omnicommerce.platform.migrate import upgrade

    settings = Settings(database_url=database_url)
    upgrade(database_url)
    load_demo(settings, seed=7, customers=500, orders=500)
    retailer = generate(7, customers=500, orders=500, now=clock.now())
    skus = [v.sku for p in retailer.products if "web" not in p.hidden_channels for v in p.variants]
    return demo_keys(settings), skus


def count_statements(database_url: str, key: str, sku: str) -> int:
    """One full flow through the app in-process, counting every SQL statement it sends."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from omnicommerce.api.app import create_app
    from omnicommerce.platform.config import Settings
    from omnicommerce.platform.db import Database

    db = Database(database_url, pool_size=2)
    app = create_app(Settings(database_url=database_url), db=db, run_relay=False)
    for chatty in ("httpx", "omnicommerce.access"):  # two flows' request logs would bury the report
        logging.getLogger(chatty).setLevel(logging.WARNING)
    counted: list[str] = []
    with TestClient(app) as client:
        flow_sync(client, key, sku)  # warm caches (API key, channel) as a running server has them
        event.listen(db.engine, "before_cursor_execute", lambda *args: counted.append(args[2]))
        flow_sync(client, key, sku)
    db.dispose()
    return len(counted)


def flow_sync(client: object, key: str, sku: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    c = client  # TestClient
    cart = c.post(
        "/api/v1/carts",
        json={"email": f"s-{uuid.uuid4().hex[:12]}@example.com"},  # type: ignore
        headers=headers,
    ).json()
    c.post(f"/api/v1/carts/{cart['id']}/lines", json={"sku": sku, "quantity": 1}, headers=headers)  # type: ignore
    c.put(
        f"/api/v1/carts/{cart['id']}/fulfillment",
        json={"type": "ship", "address": ADDRESS},  # type: ignore
        headers=headers,
    )
    order = c.post(
        f"/api/v1/carts/{cart['id']}/checkout",
        json={"payment_token": "tok_visa"},  # type: ignore
        headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
    ).json()
    c.get(f"/api/v1/orders/{order['id']}", headers=headers)  # type: ignore


async def flow(conn: Connection, sku: str, run: Run) -> bool:
    async def call(
        method: str, url: str, body: object | None, extra: dict[str, str] | None = None
    ) -> tuple[int, dict[str, object]]:
        started = time.perf_counter()
        status, payload = await conn.request(method, url, body, extra)
        run.request_ms.append((time.perf_counter() - started) * 1000)
        return status, payload

    def failed(step: str, status: int, payload: dict[str, object]) -> bool:
        run.failed_steps[f"{step} {status} {payload.get('title', '')}"] += 1
        return False

    status, cart = await call("POST", "/api/v1/carts", {"email": f"s-{uuid.uuid4().hex[:12]}@example.com"})
    if status != 201:
        return failed("create cart", status, cart)
    cart_url = f"/api/v1/carts/{cart['id']}"
    status, body = await call("POST", f"{cart_url}/lines", {"sku": sku, "quantity": 1})
    if status != 200:
        return failed("add line", status, body)
    status, body = await call("PUT", f"{cart_url}/fulfillment", {"type": "ship", "address": ADDRESS})
    if status != 200:
        return failed("fulfillment", status, body)
    status, order = await call(
        "POST", f"{cart_url}/checkout", {"payment_token": "tok_visa"}, {"Idempotency-Key": uuid.uuid4().hex}
    )
    if status != 201:
        return failed("checkout", status, order)
    status, body = await call("GET", f"/api/v1/orders/{order['id']}", None)
    return status == 200 or failed("read order", status, body)


async def drive(host: str, port: int, key: str, skus: list[str], clients: int, seconds: float) -> Run:
    """``clients`` concurrent shoppers, each on its own keep-alive connection, running flows back
    to back until the window closes. A connection that fails counts as a failed flow and is
    replaced."""
    run = Run(clients, seconds)
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {key}"}

    async def shopper(seed: int) -> None:
        rng = random.Random(seed)
        conn = await Connection(host, port, headers).open()
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    ok = await asyncio.wait_for(flow(conn, rng.choice(skus), run), timeout=30)
                except (HttpError, TimeoutError) as exc:
                    run.failed_steps[f"connection {type(exc).__name__}"] += 1
                    conn.close()
                    conn = await Connection(host, port, headers).open()
                    ok = False
                if ok:
                    run.flows += 1
                    run.flow_ms.append((time.perf_counter() - started) * 1000)
                else:
                    run.failures += 1
        finally:
            conn.close()

    await asyncio.gather(*(shopper(i) for i in range(clients)))
    return run


def atp_latency(base: str, key: str, sku: str, n: int = 300) -> tuple[float, float]:
    timings = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        for i in range(n + 20):
            started = time.perf_counter()
            res = client.get("/api/v1/availability", params={"sku": sku, "channel": "web"})
            res.raise_for_status()
            if i >= 20:  # warm-up
                timings.append((time.perf_counter() - started) * 1000)
    return percentile(timings, 50), percentile(timings, 99)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="window per concurrency level")
    parser.add_argument("--clients", default="8,32", help="comma-separated concurrency levels")
    parser.add_argument("--workers", type=int, default=3, help="API worker processes")
    parser.add_argument(
        "--handlers",
        choices=("inline", "threads"),
        default="inline",
        help="how each worker runs route handlers (OMNI_API_INLINE_HANDLERS)",
    )
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument(
        "--with-relay", action="store_true", help="run the event consumers inside the API processes"
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    # The baseline is measured before and after the flow windows and averaged: on this VM
    # pgbench alone moves by ±20 % from one minute to the next.
    print(f"pgbench -b tpcb-like -c 8 -j 2 -T {args.pgbench_seconds} (same server) …", flush=True)
    tps_before = pgbench_tps(seconds=args.pgbench_seconds)
    print(f"  pgbench_tps before = {tps_before:.1f}")
    with scratch_database("omni_bench_checkout") as (_, url):
        print("loading the demo retailer …", flush=True)
        keys, skus = prepare(url)
        web_key = keys["demo-web-storefront"]
        statements = count_statements(url, web_key, skus[0])
        print(f"  SQL statements per full flow = {statements}")
        runs = []
        env = {
            "OMNI_API_RUNS_RELAY": "true" if args.with_relay else "false",
            "OMNI_API_INLINE_HANDLERS": "true" if args.handlers == "inline" else "false",
        }
        with server(url, port=PORT, workers=args.workers, extra_env=env) as base:
            # The load generator (bench/_http.py, on uvloop as the server is) shares the two cores
            # with the server and PostgreSQL, so every millisecond it spends is one they do not get.
            uvloop.run(drive("127.0.0.1", PORT, web_key, skus, min(levels), 3))  # warm-up
            for clients in levels:
                run = uvloop.run(drive("127.0.0.1", PORT, web_key, skus, clients, args.seconds))
                runs.append(run)
                flow_ms, req_ms = run.flow_ms, run.request_ms
                print(
                    f"  {clients:>3} clients: {run.per_s:7.1f} flows/s  "
                    f"({run.per_s / tps_before:.4f} x pgbench before)  "
                    f"flow p50 {percentile(flow_ms, 50):6.1f} ms  p99 {percentile(flow_ms, 99):6.1f} ms  "
                    f"request p50 {percentile(req_ms, 50):5.1f} ms  p99 {percentile(req_ms, 99):6.1f} ms  "
                    f"failures {run.failures}",
                    flush=True,
                )
                for what, count in run.failed_steps.most_common():
                    print(f"      failed: {what} x{count}")
            atp_p50, atp_p99 = atp_latency(base, keys["demo-admin"], skus[0])
            print(f"  ATP for one SKU across all locations: p50 {atp_p50:.2f} ms  p99 {atp_p99:.2f} ms")
    tps_after = pgbench_tps(seconds=args.pgbench_seconds)
    tps = (tps_before + tps_after) / 2
    print(f"  pgbench_tps after = {tps_after:.1f}; baseline (mean) = {tps:.1f}")
    best = max(runs, key=lambda r: r.per_s)
    at8 = next((r for r in runs if r.clients == 8), runs[0])
    mean_ms = statistics.fmean(at8.request_ms) if at8.request_ms else float("nan")
    print(f"  (8 clients: mean request {mean_ms:.1f} ms; p99_ms below is per request at 8 clients)")
    print(
        f"checkout: orders_per_s={best.per_s:.1f} pgbench_tps={tps:.1f} ratio={best.per_s / tps:.4f} "
        f"statements_per_flow={statements} p99_ms={percentile(at8.request_ms, 99):.1f} "
        f"atp_p50_ms={atp_p50:.2f} atp_p99_ms={atp_p99:.2f}"
    )


if __name__ == "__main__":
    main()
