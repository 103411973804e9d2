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

from omnicommerce.fulfillment import service
from omnicommerce.inventory.domain import InsufficientStock
from omnicommerce.orders import checkout as order_flows
from omnicommerce.orders import service as orders
from omnicommerce.orders.payments import PaymentProvider, ProviderError, ProviderTimeout, provider_for
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.channels import list_channels
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.errors import DomainError
from omnicommerce.platform.scheduler import periodic

log = logging.getLogger("omnicommerce.fulfillment.jobs")


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
        try:
            order_flows.refund(db, provider, SYSTEM, order_id)
        except DomainError as exc:  # provider down, order changed: stays due, retried next run
            log.warning("refund of order %s (%s) failed: %s", order_id, fo_id, exc.detail)
            return False
    with transaction(db) as uow:
        service.refund_settled(uow, fo_id)
    return True if wanted else None


def refund_return(db: Database, provider: PaymentProvider, return_id: str) -> bool:
    """Pay a received return back to the order's original payment, then record it (True when it
    is refunded). Keyed by the return at the provider, so a retry never pays twice; cash orders
    are paid back at the till (nothing to call)."""
    with db.uow(readonly=True) as uow:
        ret = service.get_return(uow, SYSTEM, return_id)
        payment = orders.get_order(uow, SYSTEM, ret.order_id).payment
    if ret.status != "refund_pending":
        return ret.status == "refunded"
    reference = None
    if ret.refund_amount > 0 and payment.reference is not None:
        try:
            result = provider.refund(payment.reference, ret.refund_amount, f"return:{ret.id}")
        except (ProviderTimeout, ProviderError) as exc:
            log.warning("refund of return %s failed: %s", ret.id, exc)
            return False
        if result.status != "refunded":
            log.warning("refund of return %s answered %s", ret.id, result.status)
            return False
        reference = result.reference
    with transaction(db) as uow:
        service.mark_return_refunded(uow, ret.id, reference=reference)
    return True


def refund_returns(
    db: Database, provider: PaymentProvider | None = None, *, limit: int = 100
) -> tuple[int, int]:
    """Retry returns whose refund has not gone through; returns (refunded, still pending)."""
    with db.uow(readonly=True) as uow:
        due = service.returns_to_refund(uow, limit=limit)
    done = sum(refund_return(db, provider or provider_for(db), rid) for rid in due)
    return done, len(due) - done


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
    """Cancel pickups past their window (units back to stock, orders refunded) and retry the
    refunds of expired pickups and received returns that have not gone through."""
    result = expire_pickups(db)
    returns_refunded, returns_pending = refund_returns(db)
    return (
        f"pickups expired {result.expired}, refunded {result.refunded}, to retry "
        f"{result.refund_failures}; returns refunded {returns_refunded}, to retry {returns_pending}"
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
