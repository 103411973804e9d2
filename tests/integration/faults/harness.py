"""Real processes for fault tests: ``omni serve`` in a subprocess, a private PostgreSQL cluster,
buyers that retry like careful clients, and a reconciliation of what the database holds."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.channels import upsert_channel
from omnicommerce.platform.db import Database
from omnicommerce.platform.migrate import upgrade
from tests.conftest import CHANNELS, _create_pg_database, _drop_pg_database, make_key
from tests.integration.orders.shop import SHIP, seed

PG_BIN = Path("/usr/lib/postgresql/15/bin")
BUYER_SCOPES = (Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.ORDERS_READ)
UNFINISHED = ("checking_out", "voiding")  # cart states a checkout attempt leaves behind it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], *, seconds: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# --- databases ---------------------------------------------------------------------------------


@contextmanager
def scratch_shop(
    stock: Mapping[str, Mapping[str, int]], url: str | None = None
) -> Iterator[tuple[Database, str]]:
    """A migrated database (a new one on the shared PostgreSQL unless ``url`` is given) with the
    orders tests' small shop and ``stock``; yields (Database, URL)."""
    name = None
    if url is None:
        name, url = _create_pg_database()
    db = Database(url, pool_size=2)
    try:
        upgrade(url)
        with db.engine.begin() as conn:
            for channel in CHANNELS:
                upsert_channel(conn, channel)
        seed(db, stock)
        yield db, url
    finally:
        db.dispose()
        if name is not None:
            _drop_pg_database(name)


def web_key(db: Database) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(db, *BUYER_SCOPES, channel='web')}"}


class PrivateCluster:
    """A throw-away PostgreSQL 15 cluster on its own port, run as the ``postgres`` OS user, that a
    test may stop and start without touching the shared server other tests use."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="omni-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=60"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _as_postgres(*argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=60
        )


# --- the API in a subprocess -------------------------------------------------------------------


@dataclass
class Serve:
    """``omni serve`` on ``database_url``: started, killed and restarted by the test."""

    database_url: str
    workers: int = 2
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / f"omni-serve-{os.urandom(6).hex()}.log"
    )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(
            os.environ,
            OMNI_DATABASE_URL=self.database_url,
            OMNI_LOG_LEVEL="WARNING",
            OMNI_RATE_LIMIT_ENABLED="false",
            **self.env,
        )
        argv = [sys.executable, "-m", "omnicommerce.cli.main", "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*argv, "--workers", str(self.workers)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill -9 reaches the workers too
            )
        if not wait_until(self._ready, seconds=60, step=0.2):
            raise RuntimeError(f"omni serve did not become ready:\n{self.log.read_text()[-3000:]}")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"omni serve exited:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(self.base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def workers_pids(self) -> list[int]:
        """The worker processes (children of the supervisor that serve requests)."""
        assert self.proc is not None
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid and b"spawn_main" in cmdline:
                children.append(int(stat.parent.name))
        return sorted(children)

    def kill9(self) -> None:
        """SIGKILL to the supervisor and every worker at once: no shutdown, no cleanup."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextmanager
def serving(database_url: str, **kwargs: Any) -> Iterator[Serve]:
    server = Serve(database_url, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.log.unlink(missing_ok=True)


# --- clients -----------------------------------------------------------------------------------


@dataclass
class Seen:
    """Every answer a client got, and how many attempts ended in a network error."""

    statuses: Counter[int] = field(default_factory=Counter)
    network_errors: int = 0
    bad: list[str] = field(default_factory=list)  # 5xx other than 503, or a 503 that is not problem+json


def send(
    client: httpx.Client,
    seen: Seen,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: object = None,
    seconds: float = 60.0,
) -> httpx.Response:
    """One request, repeated with the same headers (same Idempotency-Key) after a network error
    or a 503 until an answer comes, within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            res = client.request(method, url, json=body, headers=dict(headers))
        except httpx.TransportError:
            seen.network_errors += 1
        else:
            seen.statuses[res.status_code] += 1
            note_if_unclean(seen, res)
            if res.status_code != 503:
                return res
        if time.monotonic() > deadline:
            raise TimeoutError(f"{method} {url}: no answer within {seconds} s")
        time.sleep(0.2)


def note_if_unclean(seen: Seen, res: httpx.Response) -> None:
    is_problem = res.headers.get("content-type", "").startswith("application/problem+json")
    if res.status_code >= 500 and (res.status_code != 503 or not is_problem):
        seen.bad.append(f"{res.status_code} {res.text[:200]}")


def checkout_flow(
    base: str,
    headers: Mapping[str, str],
    sku: str,
    seen: Seen,
    *,
    token: str = "tok_visa",
    seconds: float = 90,
) -> str:
    """Cart, one unit, checkout — each creating POST with its own Idempotency-Key, repeated
    with that key until answered. Returns the order id."""
    with httpx.Client(base_url=base, timeout=30) as client:
        cart = send(
            client, seen, "POST", "/api/v1/carts", headers=_keyed(headers, "cart"), body={}, seconds=seconds
        )
        assert cart.status_code == 201, cart.text
        cart_url = f"/api/v1/carts/{cart.json()['id']}"
        line = send(
            client,
            seen,
            "POST",
            f"{cart_url}/lines",
            headers=_keyed(headers, "line"),
            body={"sku": sku, "quantity": 1},
            seconds=seconds,
        )
        assert line.status_code == 200, line.text
        order = send(
            client,
            seen,
            "POST",
            f"{cart_url}/checkout",
            headers=_keyed(headers, "checkout"),
            body={"payment_token": token, "fulfillment": SHIP},
            seconds=seconds,
        )
        assert order.status_code in (200, 201), order.text
        return str(order.json()["id"])


def _keyed(headers: Mapping[str, str], what: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": f"{what}-{os.urandom(8).hex()}"}


# --- reconciliation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    """What the database says happened."""

    orders: dict[str, str]  # order id → payment reference
    order_carts: list[str]
    charges: dict[str, str]  # charge reference → status
    charge_keys: dict[str, str]  # charge reference → idempotency key
    held_units: int
    committed_units: int
    reserved_units: int
    carts_by_status: Counter[str]
    unfinished: set[str]  # carts whose checkout started and has not finished (checking_out, voiding)
    order_placed: list[str]  # order ids in the outbox's order.placed events

    @property
    def captured(self) -> set[str]:
        return {ref for ref, status in self.charges.items() if status == "captured"}

    def cart_of_charge(self, reference: str) -> str:
        """The cart a checkout charge paid for (its key is ``checkout:<cart>:<version>``)."""
        return self.charge_keys[reference].split(":")[1]


def books(db: Database) -> Books:
    with db.engine.connect() as conn:
        orders = conn.execute(text("SELECT id, cart_id, payment_reference FROM orders")).all()
        charges = conn.execute(
            text("SELECT reference, status, idempotency_key FROM payment_test_charges WHERE kind = 'charge'")
        ).all()
        holds: dict[str, int] = dict(
            conn.execute(text("SELECT state, coalesce(sum(quantity), 0) FROM holds GROUP BY state")).all()
        )
        reserved = conn.execute(text("SELECT coalesce(sum(reserved), 0) FROM stock_levels")).scalar_one()
        carts = conn.execute(text("SELECT id, status FROM carts")).all()
        placed = [
            orjson.loads(p)["order_id"]
            for (p,) in conn.execute(text("SELECT payload FROM outbox WHERE type = 'order.placed'"))
        ]
    return Books(
        orders={o.id: o.payment_reference for o in orders},
        order_carts=[o.cart_id for o in orders],
        charges={c.reference: c.status for c in charges},
        charge_keys={c.reference: c.idempotency_key for c in charges},
        held_units=int(holds.get("held", 0)),
        committed_units=int(holds.get("committed", 0)),
        reserved_units=int(reserved),
        carts_by_status=Counter(c.status for c in carts),
        unfinished={c.id for c in carts if c.status in UNFINISHED},
        order_placed=placed,
    )


def assert_every_sale_once(b: Books) -> None:
    """Each order (of one unit) charged exactly once, no charge left standing without its order,
    every reserved unit belonging to an order, and one ``order.placed`` per order."""
    assert len(set(b.order_carts)) == len(b.orders), "a cart checked out into two orders"
    assert b.captured == set(b.orders.values()), (b.captured, b.orders)
    assert b.held_units == 0 and b.committed_units == b.reserved_units == len(b.orders), b
    assert not b.unfinished, b.carts_by_status
    assert sorted(b.order_placed) == sorted(b.orders), "order.placed missing or repeated"
