"""Periodic orders work: settle checkouts cut off between the payment and the order."""

from __future__ import annotations

import logging
from datetime import timedelta

from omnicommerce.carts import service as carts
from omnicommerce.orders import checkout as flows
from omnicommerce.orders.domain import PaymentProviderError
from omnicommerce.orders.payments import PaymentProvider, provider_for
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
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
