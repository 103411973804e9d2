"""A failed checkout voids its payment — never the payment of an order another attempt placed with
it — and a void that fails holds the cart until a later checkout finishes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from omnicommerce.carts import service as carts
from omnicommerce.orders import checkout as flows
from omnicommerce.orders.domain import PaymentProviderError, PaymentTimeout
from omnicommerce.orders.jobs import recover_stalled_checkouts
from omnicommerce.orders.payments import PaymentResult, ProviderError, ProviderTimeout, TestPaymentProvider
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Scope
from omnicommerce.platform.db import Database
from omnicommerce.platform.idempotency import Idempotency
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, new_cart, order_count, reserved, seed


def _charges(db: Database) -> list[tuple[str, str]]:
    with db.engine.connect() as conn:
        query = "SELECT idempotency_key, status FROM payment_test_charges ORDER BY created_at"
        rows = conn.execute(text(query))
        return [(r.idempotency_key, r.status) for r in rows]


def _checkout(db: Database, provider: Any, cart_id: str, token: str = "tok_visa") -> Any:
    return flows.checkout(
        db,
        provider,
        SYSTEM,
        cart_id,
        flows.CheckoutCommand(payment_token=token),
        idem=Idempotency(None, "test"),
        body={"payment_token": token},
        ttl_seconds=900,
    )


class _Gateway:
    """The test gateway, with hooks to make one call misbehave."""

    def __init__(self, db: Database) -> None:
        self.inner = TestPaymentProvider(db)
        self.name = self.inner.name

    def authorize(self, amount: int, currency: str, token: str, key: str, capture: bool) -> PaymentResult:
        return self.inner.authorize(amount, currency, token, key, capture)

    def capture(self, reference: str, key: str) -> PaymentResult:
        return self.inner.capture(reference, key)

    def void(self, reference: str | None, key: str) -> PaymentResult:
        return self.inner.void(reference, key)

    def refund(self, reference: str, amount: int, key: str) -> PaymentResult:
        return self.inner.refund(reference, amount, key)


@pytest.fixture
def cart_id(client: TestClient, db: Database) -> str:
    seed(db, {"MUG": {DC: 5}}, prices={"MUG": 1250})
    web = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, channel="web"))
    return new_cart(client, web, {"MUG": 2})


def test_a_timed_out_attempt_does_not_void_the_payment_a_concurrent_retry_placed_its_order_with(
    db: Database, cart_id: str
) -> None:
    class RetryWinsWhileThisAttemptWaits(_Gateway):
        waited = False

        def authorize(self, amount: int, currency: str, token: str, key: str, capture: bool) -> PaymentResult:
            result = super().authorize(amount, currency, token, key, capture)
            if not self.waited:
                self.waited = True
                # The shopper's retry resumes this very checkout (same payment key) and completes it.
                assert _checkout(db, _Gateway(db), cart_id).status_code == 201
                raise ProviderTimeout("no answer in time")
            return result

    with pytest.raises(PaymentTimeout):
        _checkout(db, RetryWinsWhileThisAttemptWaits(db), cart_id)

    assert order_count(db) == 1
    assert [status for _, status in _charges(db)] == ["captured"]  # the order's payment stands
    with db.uow(readonly=True) as uow:
        assert carts.get_cart(uow, SYSTEM, cart_id).status == "completed"


def test_a_void_that_fails_holds_the_cart_until_the_next_checkout_finishes_it(
    db: Database, cart_id: str
) -> None:
    class VoidFails(_Gateway):
        def void(self, reference: str | None, key: str) -> PaymentResult:
            raise ProviderError("gateway down")

    # The gateway records the charge, then times out; voiding it fails too.
    with pytest.raises(PaymentProviderError):
        _checkout(db, VoidFails(db), cart_id, token="tok_timeout")
    with db.uow(readonly=True) as uow:
        assert carts.get_cart(uow, SYSTEM, cart_id).status == "voiding"
    assert [status for _, status in _charges(db)] == ["captured"]
    assert order_count(db) == 0 and reserved(db, "MUG") == 2  # still held: the cart is not given up

    # The next checkout voids the first payment, reopens the cart and checks out afresh.
    assert _checkout(db, _Gateway(db), cart_id).status_code == 201
    (first_key, first), (second_key, second) = _charges(db)
    assert (first, second) == ("voided", "captured") and first_key != second_key
    assert order_count(db) == 1 and reserved(db, "MUG") == 2  # allocated to the order


def test_the_recovery_job_settles_only_checkouts_cut_off_long_ago(db: Database, cart_id: str) -> None:
    class VoidFails(_Gateway):
        def void(self, reference: str | None, key: str) -> PaymentResult:
            raise ProviderError("gateway down")

    with pytest.raises(PaymentProviderError):
        _checkout(db, VoidFails(db), cart_id, token="tok_timeout")
    stalled_after = timedelta(minutes=10)
    # Just now: it may still be in flight, so the job leaves it alone.
    assert recover_stalled_checkouts(db, _Gateway(db), older_than=stalled_after) == 0
    with db.uow(readonly=True) as uow:
        assert carts.get_cart(uow, SYSTEM, cart_id).status == "voiding"

    later = clock.now() + stalled_after + timedelta(seconds=1)
    clock.set_clock(lambda: later)
    assert recover_stalled_checkouts(db, VoidFails(db), older_than=stalled_after) == 0  # still refused
    assert recover_stalled_checkouts(db, _Gateway(db), older_than=stalled_after) == 1
    with db.uow(readonly=True) as uow:
        assert carts.get_cart(uow, SYSTEM, cart_id).status == "open"
    assert [status for _, status in _charges(db)] == ["voided"]
    assert order_count(db) == 0 and reserved(db, "MUG") == 0
