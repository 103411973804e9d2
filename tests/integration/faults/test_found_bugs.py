"""Bugs the flash-sale bench and the fault tests found in carts/orders/platform, each pinned by a
regression test (see docs/reliability.md, "Found and fixed").

1. A refused request that carried an Idempotency-Key holds its pooled connection while it looks
   the key up on a second one. When every worker thread does that at once (a sold-out burst: all
   40 threads answering 409 to keyed add-line calls) the pool (20 + 20 overflow = the 40 threads)
   is exhausted by requests each waiting for a second connection: they stall for the pool
   time-out (30 s) and then answer 500 (``sqlalchemy.exc.TimeoutError`` is not mapped).
2. A checkout cut off between the charge and the order (process killed, client gone) leaves the
   cart ``checking_out`` and the customer charged with no order, for good: nothing sweeps it.

(Two more found here — a paid order on a voided charge when attempts race a time-out, and a 500
when the void after a time-out fails — were fixed in 2b1cb89; their tests moved to
test_payment_timeouts.py.)
"""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import event

from omnicommerce.carts import service as carts
from omnicommerce.inventory import jobs
from omnicommerce.orders.jobs import recover_stalled_checkouts
from omnicommerce.orders.payments import TestPaymentProvider
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, transaction
from tests.integration.faults.harness import books, web_key
from tests.integration.orders.shop import DC, new_cart, seed

SKU = "FOUND"


# --- 1 -----------------------------------------------------------------------------------------


def test_a_refused_keyed_request_holds_one_pooled_connection_at_a_time(
    client: TestClient, db: Database
) -> None:
    """Reproduce: ``omni bench flash-sale`` with default settings (no order placed, 1,600-1,900
    buyers timed out, 4-7 x 500), or ``--buyers 200 --units 20`` (11 x 500, p99 60 s). With
    ``OMNI_DB_POOL_SIZE=21`` (more connections than the 40 worker threads) the stall is gone.
    Cause: ``Idempotency.run`` → ``uow.rollback()`` keeps the connection checked out, then
    ``self.replay(uow.db, …)`` checks out a second one; ``uow.close()`` before the replay fixes it."""
    seed(db, {SKU: {DC: 1}})
    headers = web_key(db)
    winner = new_cart(client, headers, {SKU: 1})  # holds the last unit …
    loser = new_cart(client, headers, {})  # … so this cart's keyed add-line is refused
    out, peak = 0, 0

    def checkout(*_: object) -> None:
        nonlocal out, peak
        out += 1
        peak = max(peak, out)

    def checkin(*_: object) -> None:
        nonlocal out
        out -= 1

    event.listen(db.engine.pool, "checkout", checkout)
    event.listen(db.engine.pool, "checkin", checkin)
    try:
        res = client.post(
            f"/api/v1/carts/{loser}/lines",
            json={"sku": SKU, "quantity": 1},
            headers={**headers, "Idempotency-Key": "sold-out-1"},
        )
    finally:
        event.remove(db.engine.pool, "checkout", checkout)
        event.remove(db.engine.pool, "checkin", checkin)
    assert res.status_code == 409 and res.json()["type"].endswith("/insufficient-stock"), res.text
    assert winner and peak == 1, f"one request held {peak} pooled connections at once"


# --- 2 -----------------------------------------------------------------------------------------


def test_an_abandoned_checkout_does_not_keep_the_customer_charged(
    client: TestClient, db: Database, settings: Settings
) -> None:
    """Reproduce: kill -9 ``omni serve`` between a checkout's charge and its order, and let the
    client give up. The cart stayed ``checking_out`` and the charge ``captured``; the holds
    expired after the TTL but nothing voided the charge or reopened the cart. Fixed by the
    recovery job (``orders.jobs.recover_stalled_checkouts``), run by the scheduler."""
    seed(db, {SKU: {DC: 2}})
    headers = web_key(db)
    cart_id = new_cart(client, headers, {SKU: 1})
    with transaction(db) as uow:  # Tx A committed …
        claimed = carts.begin_checkout(uow, SYSTEM, cart_id, fulfillment=None, email=None, ttl_seconds=900)
    TestPaymentProvider(db).authorize(  # … the charge went through, then the process died
        1999, "USD", "tok_visa", f"checkout:{cart_id}:{claimed.version}", capture=True
    )
    later = clock.now() + timedelta(seconds=settings.reservation_ttl_seconds * 2)
    clock.set_clock(lambda: later)
    with transaction(db) as uow:
        jobs.expire_holds(uow)
    stalled = timedelta(seconds=settings.checkout_stalled_seconds)
    assert recover_stalled_checkouts(db, TestPaymentProvider(db), older_than=stalled) == 1
    b = books(db)
    assert b.held_units == 0  # the units went back …
    assert b.captured <= set(b.orders.values()), (
        f"charged without an order: {b.charges}"
    )  # … and so did the money
    with db.uow(readonly=True) as uow:
        assert carts.get_cart(uow, SYSTEM, cart_id).status == "open"
