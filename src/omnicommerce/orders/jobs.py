"""Periodic orders work: settle checkouts cut off between the payment and the order, and finish
refunds and cancels cut off between their claim in the refund ledger and the provider."""

from __future__ import annotations

import logging
from datetime import timedelta

from omnicommerce.carts import service as carts
from omnicommerce.orders import checkout as flows
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import IllegalTransition, OrderRefund, PaymentProviderError, RefundReason
from omnicommerce.orders.payments import PaymentProvider, provider_for
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.errors import DomainError
from omnicommerce.platform.scheduler import periodic

log = logging.getLogger("omnicommerce.orders.jobs")


def recover_stalled_checkouts(
    db: Database, provider: PaymentProvider, *, older_than: timedelta, limit: int = 100
) -> int:
    """Void the payment of every checkout left part-way for ``older_than`` (unless its order was
    placed) and reopen its cart; returns how many were settled. A void the provider refuses now
    leaves that cart ``voiding`` for the next run."""
    with db.uow(readonly=True) as uow:
        stalled = carts.stalled_checkouts(uow, older_than=older_than, limit=limit)
    settled = 0
    for cart in stalled:
        try:
            flows.settle_cut_off(db, provider, cart)
        except PaymentProviderError:
            log.warning("cart %s: the payment provider refused the void; retried on the next run", cart.id)
            continue
        settled += 1
    return settled


@periodic("orders.recover-stalled-checkouts", every="checkout_recovery_seconds")
def scheduled_recovery(db: Database, settings: Settings) -> str:
    """Void the payments of checkouts cut off between the payment and the order; reopen their carts."""
    older_than = timedelta(seconds=settings.checkout_stalled_seconds)
    settled = recover_stalled_checkouts(db, provider_for(db), older_than=older_than)
    return f"stalled checkouts settled {settled}"


def settle_stranded_refunds(
    db: Database, provider: PaymentProvider, *, older_than: timedelta, limit: int = 100
) -> tuple[int, int]:
    """Finish every refund or cancel whose claim in the refund ledger is older than
    ``older_than`` while its order never moved (the provider failed, or the process died, and the
    caller never retried): the same flow again, which finds the same claim and calls the provider
    with the same key — what was claimed is paid once. Returns (finished, still failing)."""
    with db.uow(readonly=True) as uow:
        stranded = orders.stranded_balance_claims(uow, older_than=older_than, limit=limit)
    outcomes = [_finish(db, provider, claim) for claim in stranded]
    return outcomes.count(True), outcomes.count(False)


def _finish(db: Database, provider: PaymentProvider, claim: OrderRefund) -> bool:
    try:
        if claim.reason == RefundReason.CANCEL:
            try:
                flows.cancel(db, provider, SYSTEM, claim.order_id)
                return True
            except IllegalTransition:
                pass  # it went on meanwhile (e.g. fulfilling): the refund pays the same claim
        flows.refund(db, provider, SYSTEM, claim.order_id)
    except DomainError as exc:
        log.warning(
            "order %s: the claimed %s is still not given back (%s)", claim.order_id, claim.reason, exc.detail
        )
        return False
    return True


@periodic("orders.settle-stranded-refunds", every="refund_retry_seconds")
def scheduled_refund_retry(db: Database, settings: Settings) -> str:
    """Finish refunds and cancels whose provider call failed and that nobody retried."""
    older_than = timedelta(seconds=settings.refund_stranded_seconds)
    finished, failing = settle_stranded_refunds(db, provider_for(db), older_than=older_than)
    return f"stranded refunds finished {finished}, still failing {failing}"
