"""Orders refunded in full when nothing of them is left anywhere (every part rejected or its
pickup expired): which are due, and whether one still is."""

from __future__ import annotations

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.domain import Status
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Status as OrderStatus
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import UnitOfWork


def refunds_due(uow: UnitOfWork, *, limit: int = 100) -> list[tuple[str, str]]:
    return repo.refunds_due(uow.conn, limit)


def refunds_due_of(uow: UnitOfWork, order_id: str) -> list[tuple[str, str]]:
    return repo.refunds_due(uow.conn, 100, order_id=order_id)


def refund_settled(uow: UnitOfWork, fo_id: str) -> None:
    repo.set_refund_due(uow.conn, [fo_id], False)


def needs_refund(uow: UnitOfWork, order_id: str) -> bool:
    """Refund the whole order only when nothing of it reached (or is on its way to) the customer."""
    fos = repo.for_order(uow.conn, order_id)
    order = orders.get_order(uow, SYSTEM, order_id)
    return order.status == OrderStatus.FULFILLING and all(
        f.status in (Status.CANCELLED, Status.REJECTED) for f in fos
    )
