"""Consent per purpose and channel, with its source and the time the person decided. Every
consumer (messages, personalization, data sharing) asks :func:`has_consent` before acting.

Decisions are kept per account; a merged profile's consent is the latest decision of any of its
accounts for each (purpose, channel), so an unmerge gives each person their own decisions back."""

from __future__ import annotations

from omnicommerce.customers import identity
from omnicommerce.customers import repository as repo
from omnicommerce.customers.domain import ConsentDecision, CustomerNotFound, consent_given, latest_decisions
from omnicommerce.customers.events import ConsentChanged
from omnicommerce.customers.schemas import ConsentOut, ConsentsUpdate
from omnicommerce.customers.service import check_reach
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.db import UnitOfWork


def set_consents(
    uow: UnitOfWork, actor: Principal, customer_id: str, cmd: ConsentsUpdate
) -> list[ConsentOut]:
    """A customer records its own decisions; API keys need customers:write."""
    check_reach(actor, customer_id, Scope.CUSTOMERS_WRITE, uow=uow)
    if customer_id not in identity.roots_of(uow, [customer_id]):
        raise CustomerNotFound(f"no customer {customer_id!r}")
    now = clock.now()
    source = f"customer:{cmd.source}" if actor.is_customer else cmd.source
    rows = [
        {
            "customer_id": customer_id,
            "purpose": c.purpose,
            "channel": c.channel,
            "granted": c.granted,
            "source": source,
            "recorded_at": min(c.recorded_at or now, now),  # a decision cannot come from the future
        }
        for c in cmd.consents
    ]
    repo.upsert_consents(uow.conn, rows)
    uow.emit(
        ConsentChanged(
            customer_id=customer_id,
            decisions=[
                {"purpose": c.purpose, "channel": c.channel, "granted": c.granted} for c in cmd.consents
            ],
            source=source,
        )
    )
    return consents(uow, actor, customer_id)


def consents(uow: UnitOfWork, actor: Principal, customer_id: str) -> list[ConsentOut]:
    """The profile's effective decisions (latest per purpose and channel across its accounts)."""
    check_reach(actor, customer_id, Scope.CUSTOMERS_READ, uow=uow)
    return effective_consents(uow, customer_id)


def effective_consents(uow: UnitOfWork, customer_id: str) -> list[ConsentOut]:
    rows = _decision_rows(uow, customer_id)
    by_key = {(r.purpose, r.channel, r.recorded_at): r for r in rows}
    return [
        _out(by_key[(d.purpose, d.channel, d.recorded_at)])
        for d in latest_decisions(_decision(r) for r in rows)
    ]


def has_consent(uow: UnitOfWork, *, customer_id: str, purpose: str, channel: str) -> bool:
    """For other contexts before they message, personalise or share: opt-in, latest decision wins."""
    return consent_given((_decision(r) for r in _decision_rows(uow, customer_id)), purpose, channel)


def _decision_rows(uow: UnitOfWork, customer_id: str) -> list[repo.AnyRow]:
    roots = identity.roots_of(uow, [customer_id])
    if customer_id not in roots:
        raise CustomerNotFound(f"no customer {customer_id!r}")
    root = roots[customer_id]
    return repo.consents_of(uow.conn, [root, *repo.merged_members(uow.conn, root)])


def _decision(row: repo.AnyRow) -> ConsentDecision:
    return ConsentDecision(row.purpose, row.channel, row.granted, row.recorded_at)


def _out(row: repo.AnyRow) -> ConsentOut:
    return ConsentOut(
        purpose=row.purpose,
        channel=row.channel,
        granted=row.granted,
        source=row.source,
        recorded_at=row.recorded_at,
        customer_id=row.customer_id,
    )
