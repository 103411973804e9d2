"""Periodic fulfillment work: the pickup-expiry sweeper, refunds of returns, and the batch
re-planning of open orders — run by the scheduler (``platform/scheduler.py``) inside ``omni
serve`` and ``omni worker``, one process at a time, and by hand from ``omni fulfillment …``.

Correctness does not wait for it: a pickup past its window is refused at the counter and left
out of the store's queue when read. The sweeper cancels it, gives the units back to sellable
stock (one transaction), then refunds the payment through the orders context — outside any
transaction, keyed by the order so a retry never refunds twice. A refund that fails stays due
(``refund_due``) and is retried on the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from omnicommerce.fulfillment import service
from omnicommerce.fulfillment.domain import ExchangePaymentRequired
from omnicommerce.inventory.domain import InsufficientStock
from omnicommerce.orders import checkout as order_flows
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import (
    InsufficientFunds,
    Payment,
    PaymentDeclined,
    PaymentProviderError,
    PaymentTimeout,
)
from omnicommerce.orders.payments import (
    SUCCESS,
    PaymentProvider,
    ProviderError,
    ProviderTimeout,
    provider_for,
)
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.channels import list_channels
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.errors import DomainError
from omnicommerce.platform.scheduler import periodic

log = logging.getLogger("omnicommerce.fulfillment.jobs")

# A charge attempt for an exchange still pending after this long has died: undone by the sweeper.
STALE_EXCHANGE = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int
    refunded: int
    refund_failures: int


def expire_pickups(db: Database, provider: PaymentProvider | None = None, *, limit: int = 100) -> SweepResult:
    with db.uow(readonly=True) as uow:
        due = service.due_pickups(uow, limit=limit)
    expired = 0
    for fo_id in due:  # one transaction each: one pickup's trouble does not hold back the others
        with transaction(db) as uow:
            expired += service.expire_pickup(uow, fo_id) is not None
    refunded, failed = refund_expired(db, provider or provider_for(db), limit=limit)
    return SweepResult(expired, refunded, failed)


def refund_expired(db: Database, provider: PaymentProvider, *, limit: int = 100) -> tuple[int, int]:
    """Refund orders whose pickups all expired (or whose every part was rejected); returns
    (refunded, failed)."""
    with db.uow(readonly=True) as uow:
        due = service.refunds_due(uow, limit=limit)
    outcomes = [_settle_refund(db, provider, fo_id, order_id) for fo_id, order_id in due]
    return outcomes.count(True), outcomes.count(False)


def refund_if_due(db: Database, provider: PaymentProvider, order_id: str) -> bool | None:
    """Right after a rejection committed: refund the order if nothing of it is left anywhere.
    None when nothing is due; False when the refund failed (the sweeper retries it)."""
    with db.uow(readonly=True) as uow:
        due = service.refunds_due_of(uow, order_id)
    outcomes = [_settle_refund(db, provider, fo_id, oid) for fo_id, oid in due]
    return all(o is not False for o in outcomes) if outcomes else None


def _settle_refund(db: Database, provider: PaymentProvider, fo_id: str, order_id: str) -> bool | None:
    """Refund ``order_id`` if still wanted, then clear ``fo_id``'s flag: True refunded, None not
    wanted any more, False failed (the flag stays: retried on the next run)."""
    with db.uow(readonly=True) as uow:
        wanted = service.needs_refund(uow, order_id)
    if wanted:
        try:  # only what the payment still holds goes back (the orders context's refund ledger)
            order_flows.refund(db, provider, SYSTEM, order_id)
        except DomainError as exc:  # provider down, order changed: stays due, retried next run
            log.warning("refund of order %s (%s) failed: %s", order_id, fo_id, exc.detail)
            return False
    with transaction(db) as uow:
        service.refund_settled(uow, fo_id)
    return True if wanted else None


def _pay_back(
    provider: PaymentProvider, payment: Payment, amount: int, key: str, what: str
) -> tuple[bool, str | None]:
    """Refund ``amount`` to the original card payment, keyed by ``key`` (a retry never pays twice):
    (done, the provider's reference). Nothing to call for nothing owed or a cash payment (paid back
    at the till)."""
    if amount <= 0 or payment.reference is None:
        return True, None
    try:
        result = provider.refund(payment.reference, amount, key)
    except (ProviderTimeout, ProviderError) as exc:
        log.warning("refund of %s failed: %s", what, exc)
        return False, None
    if result.status != "refunded":
        log.warning("refund of %s answered %s", what, result.status)
        return False, None
    return True, result.reference


def refund_cancellation(db: Database, provider: PaymentProvider, cancellation_id: str) -> bool:
    """Pay the price of cancelled units (nobody could serve them) back to the order's original
    payment, then record it (True when it is refunded). Keyed ``unfilled:<id>`` at the provider and
    recorded with a compare-and-set, so a retried job or a duplicate event never pays twice."""
    with db.uow(readonly=True) as uow:
        found = service.get_cancellation(uow, cancellation_id)
        if found is None:
            return False
        payment = orders.get_order(uow, SYSTEM, found.order_id).payment
    if found.status != "refund_pending":
        return found.status == "refunded"
    done, reference = _pay_back(
        provider, payment, found.refund_amount, f"unfilled:{found.id}", f"cancelled units {found.id}"
    )
    if done:
        with transaction(db) as uow:
            service.mark_cancellation_refunded(uow, found.id, reference=reference)
    return done


def refund_cancellations(
    db: Database, provider: PaymentProvider | None = None, *, limit: int = 100, order_id: str | None = None
) -> tuple[int, int]:
    """Refund cancelled units whose refund has not gone through (of ``order_id`` only, right
    after its routing committed); returns (refunded, still pending)."""
    with db.uow(readonly=True) as uow:
        due = service.cancellations_to_refund(uow, limit=limit, order_id=order_id)
    done = sum(refund_cancellation(db, provider or provider_for(db), cid) for cid in due)
    return done, len(due) - done


def refund_return(db: Database, provider: PaymentProvider, return_id: str) -> bool:
    """Pay a received return back to the order's original payment, then record it (True when it
    is refunded). Keyed by the return at the provider, so a retry never pays twice; cash orders
    are paid back at the till (nothing to call)."""
    with db.uow(readonly=True) as uow:
        ret = service.get_return(uow, SYSTEM, return_id)
        payment = orders.get_order(uow, SYSTEM, ret.order_id).payment
    if ret.status != "refund_pending":
        return ret.status == "refunded"
    done, reference = _pay_back(provider, payment, ret.refund_amount, f"return:{ret.id}", f"return {ret.id}")
    if done:
        with transaction(db) as uow:
            service.mark_return_refunded(uow, ret.id, reference=reference)
    return done


def refund_returns(
    db: Database, provider: PaymentProvider | None = None, *, limit: int = 100
) -> tuple[int, int]:
    """Retry returns whose refund has not gone through; returns (refunded, still pending)."""
    with db.uow(readonly=True) as uow:
        due = service.returns_to_refund(uow, limit=limit)
    done = sum(refund_return(db, provider or provider_for(db), rid) for rid in due)
    return done, len(due) - done


def charge_exchange(
    db: Database, provider: PaymentProvider, actor: Principal, return_id: str, token: str | None
) -> None:
    """An exchange that costs more was committed ``charge_pending`` (the replacement held): charge
    the difference to ``token`` (keyed ``exchange:<return id>``: a retried request replays the
    charge), then ship the replacement and receive the units. A decline, a provider failure or a
    replacement gone meanwhile leaves no exchange: the charge (if any) is voided, the replacement
    released, the return ``declined``, and the error is raised. Nothing to do for a return that
    is not waiting for its charge."""
    with db.uow(readonly=True) as uow:
        ret = service.get_return(uow, SYSTEM, return_id)
    if ret.status == "declined":
        raise PaymentDeclined("the payment for this exchange was declined; nothing was exchanged")
    if ret.status != "charge_pending" or ret.exchange is None:
        return
    if token is None:
        raise ExchangePaymentRequired("send a payment_token for the difference")
    key = f"exchange:{ret.id}"
    try:
        result = provider.authorize(ret.exchange.difference, ret.currency, token, key, capture=True)
    except (ProviderTimeout, ProviderError) as exc:
        _undo_exchange(db, provider, ret.id, key)
        if isinstance(exc, ProviderTimeout):
            raise PaymentTimeout(
                "the payment provider did not answer in time; nothing was exchanged"
            ) from exc
        raise PaymentProviderError("the payment provider failed; nothing was exchanged") from exc
    if result.status not in SUCCESS:
        _abandon(db, ret.id)
        if result.status == "insufficient_funds":
            raise InsufficientFunds("the payment method has insufficient funds; nothing was exchanged")
        raise PaymentDeclined("the payment for the difference was declined; nothing was exchanged")
    try:
        with transaction(db) as uow:
            service.complete_exchange(uow, actor, ret.id, charge_reference=result.reference)
    except Exception:
        _undo_exchange(db, provider, ret.id, key)  # e.g. the replacement went while charging
        raise


def _undo_exchange(db: Database, provider: PaymentProvider, return_id: str, key: str) -> None:
    """Void whatever the provider did under ``key``, then give the replacement back. If the void
    fails the return stays ``charge_pending``, and :func:`settle_stale_exchanges` tries again."""
    try:
        provider.void(None, key)
    except (ProviderTimeout, ProviderError) as exc:
        log.warning("void of exchange %s failed: %s (retried by the sweeper)", return_id, exc)
        return
    _abandon(db, return_id)


def _abandon(db: Database, return_id: str) -> None:
    with transaction(db) as uow:
        service.abandon_exchange(uow, return_id)


def settle_stale_exchanges(db: Database, provider: PaymentProvider | None = None, *, limit: int = 100) -> int:
    """Exchanges left ``charge_pending`` by an attempt that died: their charge voided (by its
    key), the held replacement released. Returns how many were undone."""
    with db.uow(readonly=True) as uow:
        stale = service.stale_exchange_charges(uow, older_than=STALE_EXCHANGE, limit=limit)
    for return_id in stale:
        _undo_exchange(db, provider or provider_for(db), return_id, f"exchange:{return_id}")
    return len(stale)


def reoptimize(
    db: Database, *, channel: str, limit: int = 500, time_budget_s: float = 30.0
) -> service.BatchOutcome | None:
    """Re-plan the channel's open orders together (``service.reoptimize_open_orders``) in one
    transaction; None when other orders took planned units meanwhile (nothing changed: run again)."""
    try:
        with transaction(db) as uow:
            return service.reoptimize_open_orders(
                uow, channel=channel, limit=limit, time_budget_s=time_budget_s
            )
    except InsufficientStock:
        log.info("batch re-planning of %s not applied: stock moved meanwhile", channel)
        return None


# --- scheduled (platform.scheduler) ------------------------------------------------------------


@periodic("fulfillment.sweep", every="pickup_sweep_seconds")
def scheduled_sweep(db: Database, settings: Settings) -> str:
    """Cancel pickups past their window (units back to stock, orders refunded), retry the refunds
    of expired pickups, received returns and cancelled units that have not gone through, and undo
    exchanges whose charge attempt died."""
    result = expire_pickups(db)
    returns_refunded, returns_pending = refund_returns(db)
    units_refunded, units_pending = refund_cancellations(db)
    undone = settle_stale_exchanges(db)
    return (
        f"pickups expired {result.expired}, refunded {result.refunded}, to retry "
        f"{result.refund_failures}; returns refunded {returns_refunded}, to retry {returns_pending}; "
        f"cancelled units refunded {units_refunded}, to retry {units_pending}; "
        f"stale exchange charges undone {undone}"
    )


@periodic("fulfillment.reoptimize", every="reoptimize_seconds")
def scheduled_reoptimize(db: Database, settings: Settings) -> str:
    """Re-plan every channel's open shipment orders together (batch), one channel at a time."""
    with db.uow(readonly=True) as uow:
        channels = [c.id for c in list_channels(uow.conn)]
    parts = []
    for channel in channels:
        outcome = reoptimize(db, channel=channel, time_budget_s=settings.reoptimize_time_budget_seconds)
        if outcome is None:
            parts.append(f"{channel}: stock moved, next run")
        elif outcome.orders:
            parts.append(f"{channel}: {outcome.changed}/{outcome.orders} re-planned")
    return "; ".join(parts) or "no open orders"
