"""A refund or cancel whose provider call failed after its claim in the refund ledger, and that
nobody retried, is finished by the retry job: the money claimed goes back once, the order moves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from omnicommerce.orders import checkout as flows
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order, PaymentProviderError, Status
from omnicommerce.orders.jobs import settle_stranded_refunds
from omnicommerce.orders.models import payment_test_charges
from omnicommerce.orders.payments import PaymentResult, ProviderError, TestPaymentProvider
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database
from tests.integration.orders.shop import PRICE, order_of

NOW = timedelta(0)
LATER = timedelta(minutes=5)


class GatewayDown(TestPaymentProvider):
    def refund(self, reference: str, amount: int, idempotency_key: str) -> PaymentResult:
        raise ProviderError("gateway unavailable")

    def void(self, reference: str | None, idempotency_key: str) -> PaymentResult:
        raise ProviderError("gateway unavailable")


def _refunds_paid(db: Database, order: Order) -> list[int]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(payment_test_charges.c.amount).where(
                payment_test_charges.c.parent_reference == order.payment.reference,
                payment_test_charges.c.kind == "refund",
            )
        )
        return [int(r.amount) for r in rows]


@pytest.mark.parametrize("flow", [flows.refund, flows.cancel])
def test_a_claim_left_by_a_failed_provider_is_paid_once_by_the_job(
    db: Database, shop: Callable[[], Order], flow: Callable[..., Order]
) -> None:
    order = shop()
    with pytest.raises(PaymentProviderError):
        flow(db, GatewayDown(db), SYSTEM, order.id)
    assert order_of(db, order.id).refunded_total == order.total  # claimed, not paid, not moved
    assert _refunds_paid(db, order) == []

    # Too young: the caller may still be retrying.
    assert settle_stranded_refunds(db, TestPaymentProvider(db), older_than=LATER) == (0, 0)
    # Still failing: stays due.
    assert settle_stranded_refunds(db, GatewayDown(db), older_than=NOW) == (0, 1)
    assert settle_stranded_refunds(db, TestPaymentProvider(db), older_than=NOW) == (1, 0)

    done = order_of(db, order.id)
    assert done.status == (Status.REFUNDED if flow is flows.refund else Status.CANCELLED)
    assert _refunds_paid(db, order) == [order.total] and done.refunded_total == order.total
    # Nothing is left for the next run, and a late retry by the caller pays nothing more.
    assert settle_stranded_refunds(db, TestPaymentProvider(db), older_than=NOW) == (0, 0)
    assert _refunds_paid(db, order) == [order.total]


def test_a_cancel_claim_on_an_order_that_went_on_is_paid_by_a_refund(
    db: Database, shop: Callable[[], Order]
) -> None:
    order = shop()
    with pytest.raises(PaymentProviderError):
        flows.cancel(db, GatewayDown(db), SYSTEM, order.id)
    with db.uow() as uow:  # routing picked it up meanwhile: cancelling is no longer allowed
        orders.start_fulfilment(uow, SYSTEM, order.id)
        uow.commit()

    assert settle_stranded_refunds(db, TestPaymentProvider(db), older_than=NOW) == (1, 0)

    assert order_of(db, order.id).status == Status.REFUNDED
    assert _refunds_paid(db, order) == [order.total]


def test_other_orders_and_partial_refunds_are_not_touched(db: Database, shop: Callable[[], Order]) -> None:
    untouched, partly_returned = shop(), shop()
    with db.uow() as uow:  # a return's refund, recorded and paid by fulfillment: not a balance claim
        orders.record_refund(uow, SYSTEM, partly_returned.id, amount=PRICE, reason="return", key="return:r1")
        uow.commit()

    assert settle_stranded_refunds(db, TestPaymentProvider(db), older_than=NOW) == (0, 0)
    assert order_of(db, untouched.id).status == order_of(db, partly_returned.id).status == Status.PAID
