"""PostgreSQL stopped and started again under load, the API left running.

The database is a private cluster this test owns (never the shared server on 5432). While it is
down every request that needs it is answered 503 ``application/problem+json`` with Retry-After,
promptly; when it is back the same API processes serve again — no restart — and buyers who
retried with their Idempotency-Keys end with one order each, charged once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.faults.harness import (
    PrivateCluster,
    Seen,
    assert_every_sale_once,
    books,
    checkout_flow,
    scratch_shop,
    serving,
    wait_until,
    web_key,
)
from tests.integration.orders.shop import DC

SKU = "PG-RESTART"
BUYERS = 6
OK = {"200 application/json", "201 application/json"}


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    pg = PrivateCluster()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


class Probe:
    """Reads and creating writes in a loop, recording each answer by phase."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.headers = base, headers
        self.phase = "before"
        self.answers: dict[str, Counter[str]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    if n % 2:
                        res = client.get("/api/v1/orders", params={"limit": 1}, headers=self.headers)
                    else:
                        key = {"Idempotency-Key": f"probe-{n}"}
                        res = client.post("/api/v1/carts", json={}, headers=self.headers | key)
                    outcome = f"{res.status_code} {res.headers.get('content-type', '').split(';')[0]}"
                    if res.status_code == 503:
                        outcome += f" retry-after={res.headers.get('retry-after')}"
                except httpx.TimeoutException:
                    outcome = "timeout"
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                self.answers.setdefault(self.phase, Counter())[outcome] += 1
                time.sleep(0.02)


@pytest.mark.slow
def test_postgres_restart_gives_503_then_recovers_without_restarting_the_api(cluster: PrivateCluster) -> None:
    with scratch_shop({SKU: {DC: 50}}, url=cluster.url) as (db, url), serving(url, workers=2) as server:
        headers = web_key(db)
        pid = server.proc.pid if server.proc else None
        probe = Probe(server.base, headers)
        prober = threading.Thread(target=probe.run)
        prober.start()
        seen = Seen()
        try:
            assert wait_until(lambda: sum(probe.answers.get("before", Counter()).values()) >= 20, seconds=30)
            with ThreadPoolExecutor(BUYERS) as pool:
                probe.phase = "down"
                cluster.stop()
                # Buyers arrive during the outage and keep retrying with their keys.
                buyers = [pool.submit(checkout_flow, server.base, headers, SKU, seen) for _ in range(BUYERS)]
                assert wait_until(
                    lambda: sum(probe.answers.get("down", Counter()).values()) >= 30, seconds=30
                )
                cluster.start()
                probe.phase = "back"
                order_ids = [b.result(timeout=120) for b in buyers]
            assert wait_until(
                lambda: probe.answers.get("back", Counter())["200 application/json"] >= 10, seconds=30
            )
        finally:
            probe.stop.set()
            prober.join(timeout=30)
        assert server.proc is not None and server.proc.poll() is None and server.proc.pid == pid
        db.dispose()  # this test's own pooled connections died with the server
        after = books(db)

    down = probe.answers["down"]
    assert down["503 application/problem+json retry-after=1"] > 0, probe.answers
    # While the database is down nothing but 503 problem+json (a request already past the
    # database when it stopped may still finish): no 500, no hang, no dropped connection.
    assert set(down) <= {"503 application/problem+json retry-after=1", *OK}, probe.answers
    everything = set().union(*probe.answers.values())
    assert everything <= {"503 application/problem+json retry-after=1", *OK}, probe.answers
    assert set(probe.answers["before"]) <= OK, probe.answers
    assert not seen.bad and seen.statuses[503] > 0, (seen.bad, seen.statuses)
    assert len(set(order_ids)) == BUYERS and set(order_ids) == set(after.orders)
    assert_every_sale_once(after)
