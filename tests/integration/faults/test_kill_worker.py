"""``kill -9`` of API processes in the middle of a burst of checkouts.

Buyers run cart → line → checkout against ``omni serve --workers 2`` on PostgreSQL, each creating
POST with its own Idempotency-Key, repeated with that key after a network error. Mid-burst one
worker is killed with SIGKILL (the supervisor replaces it), then the whole server (supervisor and
workers) is, and the server is started again. Every buyer must end with exactly one order, every
order charged exactly once, no charge without its order and no unit reserved for nobody.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.faults.harness import (
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

SKU = "KILL-9"
BUYERS = 24


@pytest.mark.slow
def test_kill_9_mid_burst_leaves_one_order_per_buyer_and_one_charge_per_order() -> None:
    with scratch_shop({SKU: {DC: 100}}) as (db, url), serving(url, workers=2) as server:
        headers = web_key(db)
        seen = Seen()
        go = threading.Barrier(BUYERS + 1)

        def buyer(_: int) -> str:
            go.wait()
            return checkout_flow(server.base, headers, SKU, seen)

        with ThreadPoolExecutor(BUYERS) as pool:
            futures = [pool.submit(buyer, i) for i in range(BUYERS)]
            go.wait()
            # One worker dies with requests in flight; uvicorn's supervisor starts another.
            assert wait_until(lambda: len(books(db).orders) >= 3, seconds=60)
            victim = server.workers_pids()[0]
            os.kill(victim, signal.SIGKILL)
            # Then the whole server, mid-burst, and a fresh start on the same port.
            assert wait_until(lambda: len(books(db).orders) >= 9, seconds=60)
            server.kill9()
            in_flight = books(db)
            server.start()
            order_ids = [f.result(timeout=150) for f in futures]
        after = books(db)

    # At the kill, every charge standing belonged to a placed order or to a checkout in flight
    # (which a retry resumes under the same payment key): none to a cart nobody can resume.
    placed_refs = set(in_flight.orders.values())
    stranded = [
        r
        for r in in_flight.captured
        if r not in placed_refs and in_flight.cart_of_charge(r) not in in_flight.unfinished
    ]
    assert not stranded, stranded
    assert seen.network_errors > 0, "the kills interrupted no request"
    assert not seen.bad, seen.bad  # among 5xx only 503 problem+json, retried
    assert len(set(order_ids)) == BUYERS and set(order_ids) == set(after.orders)
    assert_every_sale_once(after)
    carts_charged = [after.cart_of_charge(ref) for ref in after.captured]
    assert len(carts_charged) == len(set(carts_charged)) == BUYERS  # no cart charged twice
