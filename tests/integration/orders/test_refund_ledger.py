"""The refund ledger: whoever gives money back against an order — the order's own refund or
cancel, or the fulfillment context's partial refunds (returns, exchange surplus, cancelled units)
— records it through ``orders.record_refund``, whose conditional write keeps the sum within the
capture; ``refund`` and ``cancel`` give back only what the payment still holds. The test gateway
refuses what a real one would: refunds of a charge beyond what it captured."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from omnicommerce.fulfillment import jobs as fulfillment_jobs
from omnicommerce.fulfillment import unfilled
from omnicommerce.orders import checkout as flows
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import (
    Order,
    OrderRefund,
    PaymentProviderError,
    RefundReason,
    Status,
)
from omnicommerce.orders.models import order_refunds, payment_test_charges
from omnicommerce.orders.payments import PaymentResult, ProviderTimeout, TestPaymentProvider
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.errors import DomainError
from omnicommerce.platform.outbox import outbox
from tests.integration.orders.shop import PRICE, order_of


def _record(db: Database, order_id: str, amount: int, key: str | None = None) -> OrderRefund:
    """A partial refund recorded as the fulfillment context records one (its own transaction)."""
    with transaction(db) as uow:
        return orders.record_refund(
            uow,
            SYSTEM,
            order_id,
            amount=amount,
            reason=RefundReason.RETURN,
            key=key or f"return:{uuid.uuid4()}",
        )


def _pay(db: Database, order: Order, entry: OrderRefund) -> None:
    """…and pays it after commit, keyed like the entry (as fulfillment's jobs do)."""
    assert order.payment.reference is not None
    result = TestPaymentProvider(db).refund(order.payment.reference, entry.amount, entry.key)
    assert result.status == "refunded", result


def _ledger(db: Database, order_id: str) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(order_refunds.c.amount), 0)).where(
                    order_refunds.c.order_id == order_id
                )
            ).scalar_one()
        )


def _provider_refunds(db: Database, order: Order) -> list[tuple[str, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(payment_test_charges.c.idempotency_key, payment_test_charges.c.amount).where(
                payment_test_charges.c.parent_reference == order.payment.reference,
                payment_test_charges.c.kind == "refund",
            )
        )
        return [(r.idempotency_key, int(r.amount)) for r in rows]


def _charge_status(db: Database, reference: str | None) -> str:
    with db.engine.connect() as conn:
        return str(
            conn.execute(
                select(payment_test_charges.c.status).where(payment_test_charges.c.reference == reference)
            ).scalar_one()
        )


def _refunded_events(db: Database, order_id: str) -> list[int]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.type == "order.refunded"))
        payloads = [orjson.loads(r.payload) for r in rows]
    return [p["refunded_amount"] for p in payloads if p["order_id"] == order_id]


def _books_agree(db: Database, order: Order) -> None:
    """Ledger rows, the order's running total and the gateway's refunds tell the same story."""
    ledger = _ledger(db, order.id)
    assert ledger == order_of(db, order.id).refunded_total <= order.total
    assert sum(a for _, a in _provider_refunds(db, order)) <= ledger


# --- the gateway ---------------------------------------------------------------------------------


def test_the_gateway_refuses_refunds_beyond_the_charge(db: Database) -> None:
    gateway = TestPaymentProvider(db)
    charge = gateway.authorize(1_000, "USD", "tok_visa", "c1", capture=True)
    assert charge.reference is not None

    first = gateway.refund(charge.reference, 400, "r1")
    assert (first.status, first.amount) == ("refunded", 400)
    assert _charge_status(db, charge.reference) == "partially_refunded"

    too_much = gateway.refund(charge.reference, 601, "r2")
    assert too_much.status == "refund_exceeds_charge" and too_much.reference is None
    rest = gateway.refund(charge.reference, 600, "r2")  # a refused call left its key free
    assert rest.status == "refunded" and _charge_status(db, charge.reference) == "refunded"

    assert gateway.refund(charge.reference, 400, "r1") == first  # replayed, not paid again
    assert gateway.refund(charge.reference, 1, "r3").status == "not_refundable"
    assert gateway.refund("tch_nope", 1, "r4").status == "not_found"


# --- the ledger ----------------------------------------------------------------------------------


def test_the_ledger_grants_what_is_left_once_per_key(db: Database, shop: Callable[[], Order]) -> None:
    order = shop()
    part = order.total * 2 // 5

    first = _record(db, order.id, part, key="return:a")
    assert _record(db, order.id, part, key="return:a") == first  # a repeat answers the first entry
    second = _record(db, order.id, part * 2, key="return:b")
    nothing = _record(db, order.id, 1, key="return:c")

    assert (first.amount, second.amount, nothing.amount) == (part, order.total - part, 0)
    assert _ledger(db, order.id) == order_of(db, order.id).refunded_total == order.total
    with db.uow(readonly=True) as uow:
        assert [e.key for e in orders.refunds_of(uow, order.id)] == ["return:a", "return:b", "return:c"]


def test_a_refund_after_a_partial_refund_pays_only_the_rest(db: Database, shop: Callable[[], Order]) -> None:
    order = shop()
    returned = _record(db, order.id, PRICE)
    _pay(db, order, returned)

    refunded = flows.refund(db, TestPaymentProvider(db), SYSTEM, order.id)

    assert refunded.status == Status.REFUNDED and refunded.payment.status == "refunded"
    assert _provider_refunds(db, order) == [
        (returned.key, PRICE),
        (f"balance:{order.id}", order.total - PRICE),
    ]
    assert _refunded_events(db, order.id) == [order.total - PRICE]
    assert _charge_status(db, order.payment.reference) == "refunded"
    _books_agree(db, order)
    assert _ledger(db, order.id) == order.total


def test_nothing_left_moves_the_order_without_calling_the_gateway(
    db: Database, shop: Callable[[], Order]
) -> None:
    order, cancelled = shop(), shop()
    returned = {}
    for o in (order, cancelled):
        returned[o.id] = _record(db, o.id, o.total)
        _pay(db, o, returned[o.id])

    refunded = flows.refund(db, TestPaymentProvider(db), SYSTEM, order.id)
    gone = flows.cancel(db, TestPaymentProvider(db), SYSTEM, cancelled.id)

    assert (refunded.status, refunded.payment.status) == (Status.REFUNDED, "refunded")
    assert (gone.status, gone.payment.status) == (Status.CANCELLED, "refunded")
    for o in (order, cancelled):  # the returns' refunds only: nothing was left for a balance
        assert _provider_refunds(db, o) == [(returned[o.id].key, o.total)]
    assert _refunded_events(db, order.id) == [0]


def test_cancel_gives_back_only_what_is_left(db: Database, shop: Callable[[], Order]) -> None:
    order = shop()
    _pay(db, order, _record(db, order.id, PRICE + 1))

    cancelled = flows.cancel(db, TestPaymentProvider(db), SYSTEM, order.id)

    assert cancelled.status == Status.CANCELLED
    assert [a for _, a in _provider_refunds(db, order)] == [PRICE + 1, order.total - PRICE - 1]
    _books_agree(db, order)


class _AnswerLost(TestPaymentProvider):
    """Refunds are made, but the answer never arrives (a time-out after the gateway acted)."""

    def refund(self, reference: str, amount: int, idempotency_key: str) -> PaymentResult:
        super().refund(reference, amount, idempotency_key)
        raise ProviderTimeout("no answer")


def test_a_refund_without_an_answer_keeps_its_claim_and_the_retry_pays_nothing_more(
    db: Database, shop: Callable[[], Order]
) -> None:
    order = shop()
    with pytest.raises(PaymentProviderError):
        flows.refund(db, _AnswerLost(db), SYSTEM, order.id)
    assert order_of(db, order.id).status == Status.PAID
    # The claim stands: a return meanwhile cannot promise the same money again.
    assert _record(db, order.id, PRICE).amount == 0

    refunded = flows.refund(db, TestPaymentProvider(db), SYSTEM, order.id)

    assert refunded.status == Status.REFUNDED
    assert _provider_refunds(db, order) == [(f"balance:{order.id}", order.total)]
    _books_agree(db, order)


# --- races ---------------------------------------------------------------------------------------


def _race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` in ``n`` threads started together; each one's result or exception."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected: the test looks at every outcome
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.slow
def test_concurrent_full_refunds_pay_once(db: Database, shop: Callable[[], Order]) -> None:
    order = shop()
    _pay(db, order, _record(db, order.id, PRICE))

    outcomes = _race(6, lambda _: flows.refund(db, TestPaymentProvider(db), SYSTEM, order.id))

    won = [o for o in outcomes if isinstance(o, Order)]
    assert won and all(isinstance(o, Order | DomainError) for o in outcomes), outcomes
    assert all(getattr(o, "status", 409) == 409 for o in outcomes if isinstance(o, DomainError))
    assert _provider_refunds(db, order)[1:] == [(f"balance:{order.id}", order.total - PRICE)]
    assert order_of(db, order.id).status == Status.REFUNDED
    assert _ledger(db, order.id) == order.total
    _books_agree(db, order)


@pytest.mark.slow
def test_concurrent_partial_refunds_never_exceed_the_capture(db: Database, shop: Callable[[], Order]) -> None:
    order = shop()
    part = order.total * 3 // 10  # six of them would be 180 % of the payment

    granted = _race(6, lambda i: _record(db, order.id, part, key=f"return:{i}").amount)

    assert all(isinstance(g, int) for g in granted), granted
    assert sum(granted) == order.total and sorted(granted)[-3:] == [part] * 3
    assert _ledger(db, order.id) == order_of(db, order.id).refunded_total == order.total


# --- any interleaving ----------------------------------------------------------------------------

_STEPS = st.lists(
    st.one_of(
        # A return's refund (amount), recorded as fulfillment records it; paid at once or later.
        st.tuples(st.just("return"), st.integers(1, 3 * PRICE), st.booleans()),
        # Units nobody can serve, cancelled through the fulfillment context itself; paid at once or later.
        st.tuples(st.just("unfilled"), st.integers(1, 2), st.booleans()),
        st.tuples(st.just("pay"), st.just(0), st.just(False)),  # every refund recorded and not yet paid
        st.tuples(st.sampled_from(["refund", "cancel"]), st.just(0), st.just(False)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS)
def test_any_interleaving_never_gives_back_more_than_was_captured(
    db: Database, shop: Callable[[], Order], steps: list[tuple[str, int, bool]]
) -> None:
    """Partial refunds (returns, cancelled units — paid now or later), refunds and cancels in any
    order: at every step neither the ledger nor the gateway has given back more than was
    captured, and once every recorded refund is paid the ledger equals the gateway's refunds —
    the whole capture when the order was refunded or cancelled."""
    order = shop()
    unpaid: list[OrderRefund] = []
    units_left = 3
    for kind, amount, at_once in steps:
        if kind == "return":
            entry = _record(db, order.id, amount)
            if entry.amount and at_once:
                _pay(db, order, entry)
            elif entry.amount:
                unpaid.append(entry)
        elif kind == "unfilled" and units_left >= amount and order_of(db, order.id).status == Status.PAID:
            units_left -= amount
            with transaction(db) as uow:
                cancelled = unfilled.cancel_unfilled(
                    uow, order, {"MUG": amount}, decision_id=f"rtd_{uuid.uuid4()}", reason=unfilled.NOWHERE
                )
            assert cancelled is not None
            if at_once:
                assert fulfillment_jobs.refund_cancellation(db, TestPaymentProvider(db), cancelled.id)
        elif kind == "pay":
            _pay_all(db, order, unpaid)
        elif kind in ("refund", "cancel"):
            flow = flows.refund if kind == "refund" else flows.cancel
            try:
                flow(db, TestPaymentProvider(db), SYSTEM, order.id)
            except DomainError as exc:
                assert exc.code == "illegal-transition"  # refunded or cancelled already
        _books_agree(db, order)
    _pay_all(db, order, unpaid)

    paid_back = sum(a for _, a in _provider_refunds(db, order))
    assert paid_back == _ledger(db, order.id) <= order.total
    if order_of(db, order.id).status in (Status.REFUNDED, Status.CANCELLED):
        assert paid_back == order.total


def _pay_all(db: Database, order: Order, unpaid: list[OrderRefund]) -> None:
    """Every refund recorded and not paid yet: returns' (as the sweeper would), cancelled units'."""
    for entry in unpaid:
        _pay(db, order, entry)
    unpaid.clear()
    assert fulfillment_jobs.refund_cancellations(db, TestPaymentProvider(db))[1] == 0
