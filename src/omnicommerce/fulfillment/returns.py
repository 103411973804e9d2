"""Returns anywhere and exchanges: units of an order come back at any location."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from omnicommerce.fulfillment import repository as repo
from omnicommerce.fulfillment.core import Placement, create_fos, unit_lines
from omnicommerce.fulfillment.domain import (
    REACHED_CUSTOMER,
    RETURN_COUNTS,
    BadReturn,
    Condition,
    ExchangePaymentRequired,
    ExchangeTerms,
    FulfillmentOrder,
    Kind,
    Return,
    ReturnChanged,
    ReturnLine,
    ReturnNotFound,
    ReturnStatus,
    refund_for,
    returnable,
    sum_units,
)
from omnicommerce.fulfillment.events import ExchangeSettled, ReturnLineOut, ReturnReceived, ReturnRefunded
from omnicommerce.inventory import service as inventory
from omnicommerce.orders import service as orders
from omnicommerce.orders.domain import Order, RefundReason, check_payment_token
from omnicommerce.orders.domain import Status as OrderStatus
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.ids import new_id
from omnicommerce.pricing import service as pricing
from omnicommerce.pricing.domain import QuoteLine

# How long an exchange holds its replacement: the charge of a dearer one happens meanwhile.
EXCHANGE_HOLD_SECONDS = 600


@dataclass(frozen=True, slots=True)
class ReturnCommand:
    location_id: str  # where the units are received: any store, or the DC taking mail returns
    method: str  # in_store | mail
    lines: tuple[ReturnLine, ...]
    replacement: Mapping[str, int]  # sku → units for an exchange; empty: refund
    payment_token: str | None = None  # pays the difference when the replacement costs more


def receive_return(uow: UnitOfWork, actor: Principal, order_id: str, cmd: ReturnCommand) -> Return:
    """Units of an order come back at any location (returns anywhere). Sellable units go back on
    hand where received, damaged ones to the damaged bucket; their paid value is owed back to the
    original payment (``refund_pending``; the entrypoint refunds after commit).

    An exchange reserves the replacement first — if it is not in stock nothing happens
    (``InsufficientStock``) — and prices it with the pricing quote (the order's channel and
    customer). Cheaper or even: it ships at once as a new fulfillment order and the surplus, if
    any, is owed back like a return. Dearer: the difference must be paid (``payment_token``, else
    ``ExchangePaymentRequired``); the return is recorded ``charge_pending`` holding the
    replacement, nothing received or shipped yet, and the entrypoint charges after commit, then
    :func:`complete_exchange` or :func:`abandon_exchange`."""
    if cmd.payment_token is not None:
        check_payment_token(cmd.payment_token)  # a card number is refused before it goes anywhere
    inventory.read_location(uow, actor, cmd.location_id)  # a store key receives at its own store
    order = orders.get_order(uow, SYSTEM, order_id)  # any store may take back any order
    if order.status in (OrderStatus.REFUNDED, OrderStatus.CANCELLED):
        raise BadReturn(f"order {order.id!r} is {order.status}: its money went back already")
    repo.lock_order(uow.conn, order.id)  # returns of one order one at a time: units come back once
    units = sum_units([(ln.sku, ln.quantity) for ln in cmd.lines])
    can = returnable(_received_units(uow, order), _returned_units(uow, order.id))
    too_many = sorted(sku for sku, n in units.items() if n > can.get(sku, 0))
    if too_many:
        raise BadReturn(
            f"more units of {', '.join(too_many)} than were received and not yet returned", returnable=can
        )
    return_id = new_id("ret")
    returned_value = refund_for(units, {ln.sku: (ln.total, ln.quantity) for ln in order.lines})
    if cmd.replacement:
        return _exchange(uow, actor, order, return_id, cmd, returned_value)
    owed = _refund_owed(uow, order, return_id, returned_value, RefundReason.RETURN)
    return _record(uow, actor, order, return_id, cmd, status=ReturnStatus.REFUND_PENDING, refund_amount=owed)


def _exchange(
    uow: UnitOfWork, actor: Principal, order: Order, return_id: str, cmd: ReturnCommand, returned_value: int
) -> Return:
    """Hold the replacement, price it, then settle: even or cheaper ships now (the surplus owed
    back), dearer waits ``charge_pending`` for the charge."""
    _hold_replacement(uow, order, return_id, cmd.replacement)  # first: no stock, no exchange
    terms = _price_exchange(uow, order, cmd.replacement, returned_value)
    if terms.difference > 0:
        if cmd.payment_token is None:  # raising rolls the hold back
            raise ExchangePaymentRequired(
                f"the replacement costs {terms.difference} more (minor units): send a payment_token",
                amount_due=terms.difference,
                currency=terms.currency,
            )
        return _record(uow, actor, order, return_id, cmd, status=ReturnStatus.CHARGE_PENDING, terms=terms)
    fo = _ship_replacement(uow, order, return_id, cmd.replacement)
    owed = _refund_owed(uow, order, return_id, -terms.difference, RefundReason.EXCHANGE)
    status = ReturnStatus.REFUND_PENDING if owed else ReturnStatus.EXCHANGED
    return _record(uow, actor, order, return_id, cmd, status=status, refund_amount=owed, fo=fo, terms=terms)


def _record(
    uow: UnitOfWork,
    actor: Principal,
    order: Order,
    return_id: str,
    cmd: ReturnCommand,
    *,
    status: ReturnStatus,
    refund_amount: int = 0,
    fo: FulfillmentOrder | None = None,
    terms: ExchangeTerms | None = None,
) -> Return:
    """The return row (and its exchange terms); unless it waits for a charge, the units are
    received now."""
    ret = Return(
        id=return_id,
        order_id=order.id,
        location_id=cmd.location_id,
        method=cmd.method,
        status=status,
        lines=cmd.lines,
        refund_amount=refund_amount,
        currency=order.currency,
        refund_reference=None,
        replacement_fulfillment_order_id=fo.id if fo else None,
        created_at=clock.now(),
        exchange=terms,
    )
    repo.insert_return(uow.conn, ret, created_by=actor.id)
    if terms is not None:
        repo.insert_exchange(uow.conn, ret.id, order.id, terms)
    if status != ReturnStatus.CHARGE_PENDING:
        _received(uow, actor, order, ret)
    return ret


def _received(uow: UnitOfWork, actor: Principal, order: Order, ret: Return) -> None:
    """The units are back: stock where received, ``return.received`` (and, for an exchange,
    ``exchange.settled``)."""
    inventory.record_return(
        uow,
        location_id=ret.location_id,
        sellable=sum_units([(ln.sku, ln.quantity) for ln in ret.lines if ln.condition == Condition.SELLABLE]),
        damaged=sum_units([(ln.sku, ln.quantity) for ln in ret.lines if ln.condition == Condition.DAMAGED]),
        reference=ret.id,
        actor=actor.id,
    )
    uow.emit(
        ReturnReceived(
            return_id=ret.id,
            order_id=order.id,
            location_id=ret.location_id,
            method=ret.method,
            channel=order.channel,
            customer_id=order.customer_id,
            lines=[ReturnLineOut(sku=x.sku, quantity=x.quantity, condition=x.condition) for x in ret.lines],
            refund_amount=ret.refund_amount,
            currency=order.currency,
            exchange=ret.exchange is not None,
        )
    )
    if ret.exchange is not None and ret.replacement_fulfillment_order_id is not None:
        terms = ret.exchange
        uow.emit(
            ExchangeSettled(
                return_id=ret.id,
                order_id=order.id,
                channel=order.channel,
                customer_id=order.customer_id,
                replacement=unit_lines(terms.units),
                returned_value=terms.returned_value,
                replacement_value=terms.replacement_value,
                difference=terms.difference,
                currency=terms.currency,
                charge_reference=terms.charge_reference,
                replacement_fulfillment_order_id=ret.replacement_fulfillment_order_id,
            )
        )


def _price_exchange(
    uow: UnitOfWork, order: Order, replacement: Mapping[str, int], returned_value: int
) -> ExchangeTerms:
    """The replacement priced as the shop would price it now for this customer on this channel
    (the one ``pricing.quote`` the cart, the checkout and the order use), against what the
    returned units were paid."""
    quote = pricing.quote(
        uow,
        channel=order.channel,
        currency=order.currency,
        lines=[QuoteLine(sku=sku, quantity=n) for sku, n in sorted(replacement.items())],
        customer_id=order.customer_id,
    )
    return ExchangeTerms(
        replacement=tuple(sorted(replacement.items())),
        returned_value=returned_value,
        replacement_value=quote.total,
        currency=order.currency,
    )


def _refund_owed(uow: UnitOfWork, order: Order, return_id: str, amount: int, reason: RefundReason) -> int:
    """``amount`` recorded in the orders context's refund ledger (key ``return:<id>``, the key the
    provider is called with), in this transaction: what the payment still holds of it, as
    granted by the ledger's conditional write — so refunds of an order never add up to more
    than was captured, whoever gives them back. Nothing owed, nothing recorded."""
    if amount <= 0:
        return 0
    return orders.record_refund(
        uow, SYSTEM, order.id, amount=amount, reason=reason, key=f"return:{return_id}"
    ).amount


def complete_exchange(
    uow: UnitOfWork, actor: Principal, return_id: str, *, charge_reference: str | None
) -> Return:
    """The difference was charged: the held replacement is allocated and ships, the returned
    units are received. Once: a return no longer ``charge_pending`` is answered as it is."""
    ret = _pending_exchange(uow, return_id)
    if ret is None or ret.exchange is None:
        return _reread(uow, return_id)
    order = orders.get_order(uow, SYSTEM, ret.order_id)
    fo = _ship_replacement(uow, order, ret.id, ret.exchange.units)
    if not repo.finish_exchange(
        uow.conn, ret.id, to_status=ReturnStatus.EXCHANGED, fo_id=fo.id, charge_reference=charge_reference
    ):
        raise ReturnChanged(f"return {ret.id!r} changed meanwhile; reload it")
    done = replace(
        ret,
        status=ReturnStatus.EXCHANGED,
        replacement_fulfillment_order_id=fo.id,
        exchange=replace(ret.exchange, charge_reference=charge_reference),
    )
    _received(uow, actor, order, done)
    return done


def abandon_exchange(uow: UnitOfWork, return_id: str) -> bool:
    """The difference could not be charged: no exchange — the held replacement goes back to
    stock and the units stay with the customer (``declined``). False when it was settled already."""
    ret = _pending_exchange(uow, return_id)
    if ret is None:
        return False
    if not repo.finish_exchange(
        uow.conn, ret.id, to_status=ReturnStatus.DECLINED, fo_id=None, charge_reference=None
    ):
        return False
    inventory.release(uow, owner_id=ret.id, reason="exchange_declined")
    return True


def _pending_exchange(uow: UnitOfWork, return_id: str) -> Return | None:
    """The return, under its order's lock, if it still waits for its charge."""
    ret = repo.get_return(uow.conn, return_id)
    if ret is None:
        raise ReturnNotFound(f"no return {return_id!r}")
    repo.lock_order(uow.conn, ret.order_id)
    ret = repo.get_return(uow.conn, return_id)
    return ret if ret is not None and ret.status == ReturnStatus.CHARGE_PENDING else None


def _reread(uow: UnitOfWork, return_id: str) -> Return:
    ret = repo.get_return(uow.conn, return_id)
    if ret is None:
        raise ReturnNotFound(f"no return {return_id!r}")
    return ret


def stale_exchange_charges(uow: UnitOfWork, *, older_than: timedelta, limit: int = 100) -> list[str]:
    """Exchanges still waiting for their charge long after any live attempt (it died)."""
    return repo.stale_exchange_charges(uow.conn, clock.now() - older_than, limit)


def _received_units(uow: UnitOfWork, order: Order) -> dict[str, int]:
    """What reached the customer: delivered or picked-up parts; a till sale's lines."""
    fos = repo.for_order(uow.conn, order.id)
    if not fos:
        done = order.status == OrderStatus.COMPLETED
        return sum_units([(ln.sku, ln.quantity) for ln in order.lines]) if done else {}
    return sum_units([(sku, n) for f in fos if f.status in REACHED_CUSTOMER for sku, n in f.units.items()])


def _returned_units(uow: UnitOfWork, order_id: str) -> dict[str, int]:
    """Units given back (or being exchanged); a declined exchange took nothing back."""
    return sum_units(
        [
            (ln.sku, ln.quantity)
            for r in repo.returns_of_order(uow.conn, order_id)
            if r.status in RETURN_COUNTS
            for ln in r.lines
        ]
    )


def _hold_replacement(uow: UnitOfWork, order: Order, return_id: str, replacement: Mapping[str, int]) -> None:
    """Reserve the replacement units wherever they are in stock (the conditional update
    decides), held by the return until it ships or is abandoned."""
    inventory.reserve(
        uow,
        owner_id=return_id,
        channel=order.channel,
        demand=replacement,
        capability="ship",
        ttl_seconds=EXCHANGE_HOLD_SECONDS,
    )


def _ship_replacement(
    uow: UnitOfWork, order: Order, return_id: str, replacement: Mapping[str, int]
) -> FulfillmentOrder:
    """Allocate the held replacement to the order (re-reserving units whose hold lapsed) and
    ship it: one new fulfillment order from where they were found."""
    allocated = inventory.commit(
        uow,
        owner_id=return_id,
        order_id=order.id,
        demand=replacement,
        channel=order.channel,
        location_id=None,
        capability="ship",
    )
    rows = {(a.sku, a.location_id): a.quantity for a in allocated}
    fos = create_fos(uow, order, Placement(rows, frozenset(), {}), Kind.SHIP, rerouted_from=None)
    return fos[0]


def get_return(uow: UnitOfWork, actor: Principal, return_id: str) -> Return:
    ret = repo.get_return(uow.conn, return_id)
    if ret is None or (actor.location is not None and actor.location != ret.location_id):
        raise ReturnNotFound(f"no return {return_id!r}")
    return ret


def returns_to_refund(uow: UnitOfWork, *, limit: int = 100) -> list[str]:
    return repo.returns_to_refund(uow.conn, limit)


def mark_return_refunded(uow: UnitOfWork, return_id: str, *, reference: str | None) -> None:
    ret = repo.get_return(uow.conn, return_id)
    if ret is None or not repo.mark_return_refunded(uow.conn, return_id, reference):
        return  # refunded already (a retry): once is enough
    uow.emit(
        ReturnRefunded(
            return_id=ret.id,
            order_id=ret.order_id,
            refund_amount=ret.refund_amount,
            currency=ret.currency,
            refund_reference=reference,
        )
    )
