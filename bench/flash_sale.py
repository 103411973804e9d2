"""``omni bench flash-sale``: a sneaker drop — 100 units, 2,000 buyers at the same moment.

One SKU, 100 units spread over 1 DC and 5 stores; 2,000 customers released together through the
web, app and POS keys of each store, over loopback, against ``omni serve --workers 2`` on a
scratch PostgreSQL database (dropped at the end). Each buyer creates a cart with its e-mail,
adds one unit and checks out with a test-provider token and a shipping address (a POS buyer
takes the pair home from its store), sending an ``Idempotency-Key`` on every creating POST and
retrying network errors with the same key.

The sale is then audited from the database: exactly ``units`` paid orders, nothing oversold,
no order lost (a buyer told "paid" with no order, or charged without one) or duplicated, no
order without its allocation, every loser answered 409 ``insufficient-stock`` problem+json,
no 5xx, no time-out, no hold left reserved, and one ``order.placed`` per order in the outbox
(and in the JetStream stream when ``OMNI_NATS_URL`` is set and the stream exists).

    omni bench flash-sale [--buyers 2000] [--units 100] [--workers 2]

The last line is machine-readable. Exit status 1 when an invariant does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, percentile, plain_pg_url, scratch_database, server, warm_keys

SKU = "DROP-AJ1-OG-10"
PRICE = 18_000  # minor units
DC = "dc-drop"
STORES = tuple(f"store-drop-{i}" for i in range(1, 6))
ADDRESS = {
    "name": "Sneaker Fan",
    "line1": "1 Loop Plaza",
    "city": "Chicago",
    "postal_code": "60603",
    "country": "US",
}
SOLD_OUT = "insufficient-stock"
UNPAID = ("placed", "cancelled", "refunded")  # a paid order may have moved on to fulfilment
MAX_ATTEMPTS = 8  # per request, for network errors and 503s only
REQUEST_TIMEOUT_S = 60.0  # generous: a time-out is a failure (the buyer gives up), never expected
DEADLINE_S = 600.0  # buyers still unanswered then are counted as failed and the audit runs
# The server the bench starts: per-key rate limits off (2,000 buyers share 7 keys).
BENCH_SERVER_ENV = {"OMNI_RATE_LIMIT_ENABLED": "false"}


# --- the shop ----------------------------------------------------------------------------------


def split_units(units: int) -> dict[str, int]:
    """Half the drop at the DC, the rest shared by the five stores (the DC takes any remainder)."""
    per_store = units // 2 // len(STORES)
    return {DC: units - per_store * len(STORES), **dict.fromkeys(STORES, per_store)}


def prepare(database_url: str, units: int) -> dict[str, str]:
    """Migrate and stock the scratch database; returns key name → secret (web, app, one POS per store)."""
    from omnicommerce.catalog import service as catalog
    from omnicommerce.catalog.schemas import ProductCreate, VariantCreate
    from omnicommerce.inventory import service as inventory
    from omnicommerce.inventory.domain import LocationInfo
    from omnicommerce.platform.auth import Scope, create_api_key
    from omnicommerce.platform.channels import Channel, upsert_channel
    from omnicommerce.platform.db import Database, transaction
    from omnicommerce.platform.migrate import upgrade
    from omnicommerce.pricing import service as pricing
    from omnicommerce.pricing.schemas import PriceEntry

    upgrade(database_url)
    db = Database(database_url, pool_size=1)
    scopes: list[str] = [Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.ORDERS_READ]
    try:
        with transaction(db) as uow:
            for cid, name, kind in (
                ("web", "Web shop", "online"),
                ("app", "App", "online"),
                ("pos", "POS", "store"),
            ):
                upsert_channel(uow.conn, Channel(cid, name, kind, "USD"))
            ship_and_pickup = frozenset({"ship", "pickup"})
            inventory.upsert_locations(
                uow,
                [
                    LocationInfo(DC, "dc", "Drop DC", frozenset({"ship"}), 41.88, -87.63, "60601"),
                    *(
                        LocationInfo(
                            s, "store", f"Store {s}", ship_and_pickup, 41.9 + i / 100, -87.6, "60602"
                        )
                        for i, s in enumerate(STORES)
                    ),
                ],
            )
            catalog.import_catalog(
                uow,
                [],
                [ProductCreate(name="Air Drop 1 OG", variants=[VariantCreate(sku=SKU, name="Size 10")])],
            )
            pricing.set_prices(uow, [PriceEntry(sku=SKU, currency="USD", amount=PRICE)])
            inventory.set_stock_bulk(uow, [(SKU, loc, n) for loc, n in split_units(units).items()])
            keys = {
                name: create_api_key(uow.conn, name=name, scopes=scopes, channel=ch, location=loc).secret
                for name, ch, loc in [
                    ("web", "web", None),
                    ("app", "app", None),
                    *((f"pos-{s}", "pos", s) for s in STORES),
                ]
            }
    finally:
        db.dispose()
    return keys


# --- the buyers --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one buyer was told in the end."""

    channel: str
    result: str = "pending"  # order | sold_out | failed
    order_ids: set[str] = field(default_factory=set)
    answer: str = ""  # the final status and problem type, for the report
    finished_at: float = 0.0


@dataclass
class Tally:
    request_ms: list[float] = field(default_factory=list)
    step_ms: dict[str, list[float]] = field(default_factory=dict)  # by the step's route
    flow_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    five_xx: int = 0
    timeouts: int = 0
    network_errors: Counter[str] = field(default_factory=Counter)  # by exception type; retried


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    content_type: str

    @property
    def problem_type(self) -> str:
        return str(self.body.get("type", "")).rsplit("/", 1)[-1] if isinstance(self.body, dict) else ""

    def is_sold_out(self) -> bool:
        return (
            self.status == 409
            and self.content_type.startswith("application/problem+json")
            and self.problem_type == SOLD_OUT
        )


async def call(
    session: aiohttp.ClientSession,
    tally: Tally,
    method: str,
    url: str,
    headers: dict[str, str],
    body: object,
) -> Answer:
    """One request, retried with the same headers (same Idempotency-Key) on network errors and
    503s, as a careful client would; every 5xx is counted. A time-out ends the buyer's attempt."""
    for attempt in range(MAX_ATTEMPTS):
        started = time.perf_counter()
        try:
            async with session.request(method, url, json=body, headers=headers) as res:
                answer = Answer(
                    res.status, _json_or_text(await res.read()), res.headers.get("Content-Type", "")
                )
        except TimeoutError:
            tally.timeouts += 1
            return Answer(0, {"type": "time-out"}, "")
        except aiohttp.ClientError as exc:
            tally.network_errors[type(exc).__name__] += 1
        else:
            took = (time.perf_counter() - started) * 1000
            tally.request_ms.append(took)
            tally.step_ms.setdefault(_step(url), []).append(took)
            tally.statuses[answer.status] += 1
            if answer.status < 500:
                return answer
            tally.five_xx += 1
            if answer.status != 503:
                return answer
        await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
    return Answer(0, {"type": "gave-up"}, "")


async def buy(
    session: aiohttp.ClientSession, tally: Tally, key: str, out: Outcome, go: asyncio.Event
) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    email = f"fan-{uuid.uuid4().hex[:12]}@example.com"
    await go.wait()
    started = time.perf_counter()
    cart = await call(session, tally, "POST", "/api/v1/carts", auth | _key(), {"email": email})
    if cart.status in (200, 201):
        cart_url = f"/api/v1/carts/{cart.body['id']}"
        line = await call(
            session, tally, "POST", f"{cart_url}/lines", auth | _key(), {"sku": SKU, "quantity": 1}
        )
        if line.status == 200:
            fulfillment = (
                {"type": "pickup", "location_id": cart.body["location_id"]}
                if cart.body.get("location_id")
                else {"type": "ship", "address": ADDRESS}
            )
            order = await call(
                session,
                tally,
                "POST",
                f"{cart_url}/checkout",
                auth | _key(),
                {"payment_token": "tok_visa", "fulfillment": fulfillment},
            )
            _settle(out, order)
        else:
            _settle(out, line)
    else:
        _settle(out, cart)
    out.finished_at = time.perf_counter()
    tally.flow_ms.append((out.finished_at - started) * 1000)


def _step(url: str) -> str:
    """The route's last word: carts, lines or checkout."""
    return url.rstrip("/").rsplit("/", 1)[-1] if not url.endswith("/carts") else "carts"


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:  # e.g. a plain-text error page: kept for the report
        return {"type": "not-json", "text": raw[:200].decode(errors="replace")}


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _settle(out: Outcome, answer: Answer) -> None:
    out.answer = f"{answer.status} {answer.problem_type}".strip()
    if answer.status in (200, 201) and isinstance(answer.body, dict) and "number" in answer.body:
        out.result = "order"
        out.order_ids.add(str(answer.body["id"]))
    elif answer.is_sold_out():
        out.result = "sold_out"
    else:
        out.result = "failed"


def buyer_channels(buyers: int, keys: dict[str, str]) -> list[tuple[str, str]]:
    """(key, channel) per buyer: 45% web, 35% app, 20% at the stores' tills, interleaved."""
    pos = [k for k in keys if k.startswith("pos-")]
    out = []
    for i in range(buyers):
        slot = i % 20
        name = "web" if slot < 9 else "app" if slot < 16 else pos[i % len(pos)]
        out.append((keys[name], name.split("-")[0]))
    return out


async def rush(
    base: str, buyers: Sequence[tuple[str, str]], deadline_s: float = DEADLINE_S
) -> tuple[list[Outcome], Tally, float]:
    """Every buyer at once: all wait on one event, then fire. Returns outcomes, tally, start time."""
    tally = Tally()
    go = asyncio.Event()
    outcomes = [Outcome(channel) for _, channel in buyers]
    connector = aiohttp.TCPConnector(limit=0)  # one connection per buyer, as 2,000 phones would
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(base_url=base, connector=connector, timeout=timeout) as session:
        tasks = [
            asyncio.create_task(buy(session, tally, key, out, go))
            for (key, _), out in zip(buyers, outcomes, strict=True)
        ]
        await asyncio.sleep(0.5)  # every buyer is parked on the event
        started = time.perf_counter()
        go.set()
        _, pending = await asyncio.wait(tasks, timeout=deadline_s)
        for task in pending:
            task.cancel()
    for out in outcomes:
        if out.result == "pending":
            out.result, out.answer, out.finished_at = "failed", "unanswered", time.perf_counter()
    return outcomes, tally, started


# --- the audit ---------------------------------------------------------------------------------


@dataclass
class Audit:
    paid_orders: int
    units_ordered: int
    oversold: int
    lost: int
    duplicated: int
    orphans: int
    holds_left: int
    unsold: int
    events_order_placed: int
    event_dupes: int
    events_missing: int
    captured_charges: int


def audit(url: str, units: int, outcomes: Sequence[Outcome]) -> Audit:
    """Reconcile what buyers were told with what the database holds."""
    with psycopg.connect(plain_pg_url(url)) as conn:
        orders = conn.execute(
            "SELECT id, cart_id, customer_id, status, payment_reference, payment_status"
            " FROM orders WHERE source = 'checkout'"
        ).fetchall()
        ordered: dict[str, int] = dict(
            conn.execute(
                "SELECT order_id, sum(quantity) FROM order_lines WHERE sku = %s GROUP BY order_id", (SKU,)
            ).fetchall()
        )
        committed: dict[str, int] = dict(
            conn.execute(
                "SELECT order_id, sum(quantity) FROM holds WHERE state = 'committed' GROUP BY order_id"
            ).fetchall()
        )
        holds_left = _count(conn, "SELECT count(*) FROM holds WHERE state = 'held'")
        levels = conn.execute(
            "SELECT on_hand, reserved, safety_stock FROM stock_levels WHERE sku = %s", (SKU,)
        ).fetchall()
        charges = conn.execute(
            "SELECT idempotency_key, reference FROM payment_test_charges"
            " WHERE kind = 'charge' AND status = 'captured'"
        ).fetchall()
        completed_carts = {r[0] for r in conn.execute("SELECT id FROM carts WHERE status = 'completed'")}
        events = [
            json.loads(r[0])["order_id"]
            for r in conn.execute("SELECT payload FROM outbox WHERE type = 'order.placed'")
        ]
    order_ids = {o[0] for o in orders}
    told: set[str] = set().union(*(o.order_ids for o in outcomes))
    refs = {o[4] for o in orders}
    units_ordered = sum(ordered.values())
    carts_charged = Counter(k.split(":")[1] for k, _ in charges if k.startswith("checkout:"))
    return Audit(
        paid_orders=sum(1 for o in orders if o[5] == "captured" and o[3] not in UNPAID),
        units_ordered=units_ordered,
        oversold=max(0, units_ordered - units) + sum(max(0, int(r) - int(h)) for h, r, _ in levels),
        lost=len(told - order_ids)
        + sum(1 for _, ref in charges if ref not in refs)
        + len(completed_carts - {o[1] for o in orders}),
        duplicated=(len(orders) - len({o[1] for o in orders}))
        + (len(orders) - len({o[2] for o in orders}))
        + sum(1 for o in outcomes if len(o.order_ids) > 1)
        + sum(n - 1 for n in carts_charged.values() if n > 1),
        orphans=sum(1 for oid in order_ids if committed.get(oid, 0) != ordered.get(oid, 0))
        + sum(1 for oid in committed if oid not in order_ids),
        holds_left=holds_left,
        unsold=sum(max(0, int(h) - int(r) - int(s)) for h, r, s in levels),
        events_order_placed=len(events),
        event_dupes=len(events) - len(set(events)),
        events_missing=len(order_ids - set(events)),
        captured_charges=len(charges),
    )


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql.encode()).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class RunStream:
    """This run's own JetStream stream and subject prefix, so that nothing else is counted."""

    url: str
    name: str
    prefix: str

    @classmethod
    def new(cls, url: str) -> RunStream:
        run = uuid.uuid4().hex[:8]
        return cls(url, f"FLASH_{run}", f"flash{run}")

    async def _count(self, js: Any) -> Counter[str]:
        import nats

        sub = await js.pull_subscribe(f"{self.prefix}.orders.order.placed", stream=self.name)
        seen: Counter[str] = Counter()
        while True:
            try:
                batch = await sub.fetch(500, timeout=2)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            for msg in batch:
                seen[str(json.loads(msg.data).get("order_id"))] += 1
                await msg.ack()
        await sub.unsubscribe()
        return seen

    @property
    def server_env(self) -> dict[str, str]:
        return {
            "OMNI_NATS_URL": self.url,
            "OMNI_NATS_STREAM": self.name,
            "OMNI_NATS_SUBJECT_PREFIX": self.prefix,
        }

    async def order_placed(self) -> Counter[str] | None:
        """Order id → ``order.placed`` messages in the stream, read with an ephemeral consumer as
        a subscriber sees them; None when the relay never created the stream. Deletes the stream."""
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(self.url, connect_timeout=5)
        try:
            js = nc.jetstream()
            try:
                await js.stream_info(self.name)
            except NotFoundError:
                return None
            try:
                return await self._count(js)
            finally:
                await js.delete_stream(self.name)
        finally:
            await nc.close()


def wait_for_relay(url: str, seconds: float = 30.0) -> int:
    """Unpublished outbox rows left after waiting up to ``seconds`` for the relay."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(plain_pg_url(url), autocommit=True) as conn:
        while True:
            left = _count(conn, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
            if left == 0 or time.monotonic() > deadline:
                return left
            time.sleep(0.5)


# --- the report --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument(
        "--deadline", type=float, default=DEADLINE_S, help="seconds before giving up on buyers"
    )
    args = parser.parse_args()
    nats_url = os.environ.get("OMNI_NATS_URL")
    stream = RunStream.new(nats_url) if nats_url else None
    log_path = Path(tempfile.gettempdir()) / f"omni-flash-sale-{uuid.uuid4().hex[:8]}.log"
    try:
        run = drop(args, stream, log_path)
    finally:
        log_path.unlink(missing_ok=True)
    if report(args.units, run, stream):
        sys.exit(1)


def drop(args: argparse.Namespace, stream: RunStream | None, log_path: Path) -> Run:
    """Stock the scratch database, start the server, release the buyers, audit."""
    env = BENCH_SERVER_ENV | (stream.server_env if stream else {})
    with scratch_database("omni_bench_flash") as (_, url):
        keys = prepare(url, args.units)
        print(
            f"drop: {args.units} units of {SKU} at {split_units(args.units)}; {args.buyers} buyers",
            flush=True,
        )
        buyers = buyer_channels(args.buyers, keys)
        with server(url, port=free_port(), workers=args.workers, extra_env=env, log_path=log_path) as base:
            warm_keys(base, list(keys.values()))
            outcomes, tally, started = asyncio.run(rush(base, buyers, args.deadline))
            finished = time.perf_counter()
            unpublished = wait_for_relay(url)
        result = audit(url, args.units, outcomes)
    in_stream = asyncio.run(stream.order_placed()) if stream else None
    server_errors = [ln for ln in log_path.read_text(errors="replace").splitlines() if "Error" in ln]
    return Run(outcomes, tally, started, finished, result, unpublished, in_stream, server_errors)


@dataclass(frozen=True)
class Run:
    outcomes: list[Outcome]
    tally: Tally
    started: float
    finished: float
    audit: Audit
    unpublished: int
    in_stream: Counter[str] | None
    server_errors: list[str]

    def told(self, result: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == result]

    @property
    def last_sale(self) -> float:
        return max((o.finished_at for o in self.told("order")), default=self.finished)

    @property
    def orders_per_s(self) -> float:
        return len(self.told("order")) / max(self.last_sale - self.started, 1e-9)


def report(units: int, run: Run, stream: RunStream | None) -> list[str]:
    """Print the figures and the machine-readable line; returns the invariants that broke."""
    t, a = run.tally, run.audit
    winners, losers, failed = run.told("order"), run.told("sold_out"), run.told("failed")
    elapsed = run.finished - run.started
    p50, p99 = percentile(t.request_ms, 50), percentile(t.request_ms, 99)
    by_channel = ", ".join(f"{k} {v}" for k, v in sorted(Counter(o.channel for o in winners).items()))
    print(
        f"  all {len(run.outcomes)} buyers answered in {elapsed:.2f} s "
        f"({len(run.outcomes) / elapsed:.0f} buyers/s, {len(t.request_ms) / elapsed:.0f} requests/s)\n"
        f"  sold out after {run.last_sale - run.started:.2f} s: {len(winners)} orders ({by_channel}), "
        f"{run.orders_per_s:.1f} orders/s\n"
        f"  request latency p50 {p50:.1f} ms  p99 {p99:.1f} ms; buyer (first request to final answer) "
        f"p50 {percentile(t.flow_ms, 50):.1f} ms  p99 {percentile(t.flow_ms, 99):.1f} ms\n"
        f"  by step: {_by_step(t.step_ms)}\n"
        f"  answers: {dict(sorted(t.statuses.items()))}; losers told 409 {SOLD_OUT}: {len(losers)}; "
        f"other outcomes: {len(failed)} {Counter(o.answer for o in failed).most_common(5)}\n"
        f"  5xx {t.five_xx}, time-outs {t.timeouts}, network errors retried {dict(t.network_errors)}; "
        f"server log lines with an error: {len(run.server_errors)} {run.server_errors[:3]}\n"
        f"  database: {a.paid_orders} paid orders, {a.units_ordered} units ordered, "
        f"{a.captured_charges} captured charges, {a.unsold} units unsold, {a.holds_left} holds still held\n"
        f"  order.placed: {a.events_order_placed} in the outbox ({a.event_dupes} repeated, "
        f"{a.events_missing} orders without one, {run.unpublished} rows unpublished); "
        f"NATS: {_stream_figure(run.in_stream, stream)}"
    )
    placed = run.in_stream
    broken = {
        "paid orders != units": a.paid_orders != units,
        "buyers told 'order' != paid orders": len(winners) != a.paid_orders,
        "oversold": a.oversold > 0,
        "lost": a.lost > 0,
        "duplicated": a.duplicated > 0,
        "orphans": a.orphans > 0,
        "holds left reserved": a.holds_left > 0,
        "units left unsold": a.unsold > 0,
        "unclean answers": bool(failed),
        "5xx": t.five_xx > 0,
        "time-outs": t.timeouts > 0,
        "order.placed != orders": a.events_order_placed != a.paid_orders or a.event_dupes > 0,
        "stream != one order.placed per order": placed is not None
        and (len(placed) != a.paid_orders or set(placed.values()) != {1}),
    }
    failures = [name for name, bad in broken.items() if bad]
    print("  invariants: " + ("all hold" if not failures else "BROKEN: " + ", ".join(failures)))
    print(
        f"flash-sale: paid_orders={a.paid_orders} oversold={a.oversold} lost={a.lost} "
        f"duplicated={a.duplicated} orphans={a.orphans} errors_5xx={t.five_xx} "
        f"events_order_placed={a.events_order_placed} orders_per_s={run.orders_per_s:.1f} "
        f"p50_ms={p50:.1f} p99_ms={p99:.1f}"
    )
    return failures


def _by_step(step_ms: dict[str, list[float]]) -> str:
    return "; ".join(
        f"{step} p50 {percentile(ms, 50):.0f} ms p99 {percentile(ms, 99):.0f} ms (n={len(ms)})"
        for step, ms in step_ms.items()
    )


def _stream_figure(placed: Counter[str] | None, stream: RunStream | None) -> str:
    if stream is None:
        return "not checked (OMNI_NATS_URL unset)"
    if placed is None:
        return f"stream {stream.name} was never created (is the relay publishing?)"
    most = max(placed.values(), default=0)
    return (
        f"{sum(placed.values())} in stream {stream.name} for {len(placed)} orders (at most {most} per order)"
    )


if __name__ == "__main__":
    main()
