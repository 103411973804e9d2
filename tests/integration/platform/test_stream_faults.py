"""Faults survived by the event stream, with real processes: a worker killed with SIGKILL in
the middle of a batch, and NATS stopped while orders keep coming.

Never the shared NATS or PostgreSQL: the outage test runs its own nats-server and stops that.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from omnicommerce.platform import clock
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from omnicommerce.platform.events import Event
from omnicommerce.platform.outbox import outbox, processed_events
from omnicommerce.platform.stream import NatsRelay
from tests.conftest import bearer, make_key
from tests.integration.integrations.stream_support import (
    PROBE_CONSUMER,
    omni,
    private_nats,
    probe_rows,
    probe_table,
    probe_worker,
    stop_process,
    stream_messages,
    temporary_stream,
    unique_stream,
    wait_until,
)
from tests.integration.orders.shop import new_cart, seed


class ProbePing(Event):
    context = "platform"
    type: Literal["test.probe_ping"] = "test.probe_ping"
    version: Literal[1] = 1
    n: int


def processed(db: Database, consumer: str) -> int:
    with db.engine.connect() as conn:
        query = (
            select(func.count()).select_from(processed_events).where(processed_events.c.consumer == consumer)
        )
        return int(conn.execute(query).scalar_one())


def test_worker_killed_mid_batch_handles_every_event_exactly_once(db: Database, tmp_path: Path) -> None:
    events = [ProbePing(n=i) for i in range(200)]
    with temporary_stream() as cfg, probe_table(db):
        with db.uow() as uow:
            for e in events:
                uow.emit(e)
            uow.commit()
        relay = NatsRelay(db, cfg)
        try:
            assert relay.drain() == len(events)
        finally:
            relay.stop()
        first = probe_worker(db, cfg, tmp_path / "worker1.log", sleep=0.01)
        try:
            assert wait_until(lambda: len(probe_rows(db)) >= 40, timeout=60), (
                tmp_path / "worker1.log"
            ).read_text()
        finally:
            first.kill()  # SIGKILL: no clean-up, a batch fetched and unacked, maybe a transaction open
            first.wait()
        handled_before = len(probe_rows(db))
        assert handled_before < len(events)
        second = probe_worker(db, cfg, tmp_path / "worker2.log")
        try:
            assert wait_until(lambda: len(probe_rows(db)) >= len(events), timeout=60)
            time.sleep(1.0)  # the killed worker's batch was redelivered (ack_wait 2 s) before this
        finally:
            stop_process(second)
        rows = probe_rows(db)
    assert Counter(rows).most_common(1)[0][1] == 1  # no event handled twice
    assert sorted(rows) == sorted(e.id for e in events)  # and none lost
    assert processed(db, PROBE_CONSUMER) == len(events)
    assert "handled=" in (tmp_path / "worker2.log").read_text()


@dataclass
class LagProbe:
    """Samples the outbox: unpublished rows and the age of the oldest, every 50 ms."""

    db: Database
    samples: list[tuple[float, int, float]] = field(default_factory=list)  # (t, rows, oldest age s)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> LagProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        query = select(func.count(), func.min(outbox.c.occurred_at)).where(outbox.c.published_at.is_(None))
        while not self._stop.wait(0.05):
            with self.db.engine.connect() as conn:
                count, oldest = conn.execute(query).one()
            age = (clock.now() - clock.as_utc(oldest)).total_seconds() if oldest else 0.0
            self.samples.append((time.monotonic(), int(count), age))

    def unpublished(self) -> int:
        return self.samples[-1][1] if self.samples else 0


def unpublished(db: Database) -> int:
    with db.engine.connect() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return int(conn.execute(query).scalar_one())


def place_order(client: TestClient, web: dict[str, str]) -> str:
    cart_id = new_cart(client, web, {"TEE-M": 1})
    res = client.post(f"/api/v1/carts/{cart_id}/checkout", headers=web, json={"payment_token": "tok_visa"})
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


def order_placed_ids(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(outbox.c.id).where(outbox.c.type == "order.placed")).scalars())


def test_nats_outage_orders_succeed_and_every_event_arrives_once(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    seed(db, {"TEE-M": {"dc-east": 1000}})
    web = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.ORDERS_READ, channel="web"))
    orders: list[str] = []
    with private_nats(tmp_path / "nats") as nats_server, probe_table(db), LagProbe(db) as lag:
        cfg = unique_stream(url=nats_server.url)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            # two relays at once, as two processes: each event still reaches the stream once
            processes += [omni(["relay"], db=db, cfg=cfg, log=tmp_path / f"relay{i}.log") for i in (1, 2)]
            processes.append(probe_worker(db, cfg, tmp_path / "worker.log"))
            orders += [place_order(client, web) for _ in range(5)]
            assert wait_until(lambda: len(probe_rows(db)) == 5, timeout=30), (
                tmp_path / "relay1.log"
            ).read_text()

            nats_server.stop()  # the outage
            outage_started = time.monotonic()
            while time.monotonic() - outage_started < 2.0:  # orders keep coming
                orders.append(place_order(client, web))
            during_outage = len(orders) - 5
            assert wait_until(lambda: lag.unpublished() >= during_outage, timeout=10)
            assert len(probe_rows(db)) == 5  # nothing reached the consumer meanwhile

            nats_server.start()  # same port, same store: the stream survives
            back = time.monotonic()
            orders += [place_order(client, web) for _ in range(5)]
            assert wait_until(lambda: lag.unpublished() == 0, timeout=60), (
                tmp_path / "relay1.log"
            ).read_text()
            drained = time.monotonic() - back
            assert wait_until(lambda: len(probe_rows(db)) >= len(orders), timeout=60)
            handled = time.monotonic() - back
            time.sleep(1.0)  # let any late redelivery show up before counting
        finally:
            for proc in processes:
                stop_process(proc)
        in_stream = [m.msg_id for m in stream_messages(cfg, f"{cfg.prefix}.orders.order.placed")]
        rows = probe_rows(db)
    placed = order_placed_ids(db)
    assert len(placed) == len(orders)  # one order.placed per order, every order succeeded
    assert sorted(in_stream) == sorted(placed)  # published exactly once each (Nats-Msg-Id dedupe)
    assert sorted(rows) == sorted(placed)  # handled exactly once each
    outage = [s for s in lag.samples if outage_started <= s[0] <= back]
    peak_rows = max(s[1] for s in outage)
    peak_age = max(s[2] for s in lag.samples if s[0] >= outage_started)
    assert peak_rows >= during_outage
    print(
        f"\nnats-outage: orders={len(orders)} during_outage={during_outage} "
        f"outage_s={back - outage_started:.1f} "
        f"peak_unpublished={peak_rows} peak_oldest_age_s={peak_age:.2f} "
        f"drained_after_restart_s={drained:.2f} all_handled_after_restart_s={handled:.2f}"
    )
