"""Engagement services on the real databases: racing case transitions (compare-and-set),
concurrent notes against a close, and the privacy functions the customers context calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from omnicommerce.customers import service as customers
from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.customers.schemas import CustomerCreate
from omnicommerce.engagement import service
from omnicommerce.engagement.domain import (
    CaseAction,
    CaseClosed,
    CaseStatus,
    IllegalCaseTransition,
    MessageStatus,
)
from omnicommerce.engagement.models import case_notes, cases, messages
from omnicommerce.engagement.providers import LogProvider
from omnicommerce.engagement.schemas import CaseCreate, InboundMessageCreate, MessageCreate, NoteCreate
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.pii import ERASED

AGENT = Principal("api_key", "key_agent", frozenset({Scope.CASES_READ, Scope.CASES_WRITE}), "call_center")
SENDER = Principal("api_key", "key_sender", frozenset({Scope.ENGAGEMENT_WRITE, Scope.ENGAGEMENT_READ}))


def _customer(db: Database, email: str) -> str:
    with transaction(db) as uow:
        return customers.create_customer(uow, SYSTEM, CustomerCreate(email=email, channel="web")).id


def _case(db: Database, customer_id: str, *actions: CaseAction) -> str:
    with transaction(db) as uow:
        case_id = service.open_case(uow, AGENT, CaseCreate(customer_id=customer_id, subject="Late parcel")).id
    for action in actions:
        with transaction(db) as uow:
            service.act_on_case(uow, AGENT, case_id, action)
    return case_id


def _together(db: Database, jobs: list[Callable[[Any], Any]]) -> tuple[list[Any], list[BaseException]]:
    """Run each job in its own thread and transaction, released at the same moment."""
    start = threading.Barrier(len(jobs))
    results: list[Any] = []
    errors: list[BaseException] = []

    def work(job: Callable[[Any], Any]) -> None:
        try:
            start.wait()
            with transaction(db) as uow:
                results.append(job(uow))
        except BaseException as exc:  # surfaced by the caller
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def _status_and_version(db: Database, case_id: str) -> tuple[str, int]:
    with db.engine.connect() as conn:
        row = conn.execute(select(cases.c.status, cases.c.version).where(cases.c.id == case_id)).one()
    return row.status, row.version


def test_of_four_agents_resolving_one_case_exactly_one_does(db: Database) -> None:
    case_id = _case(db, _customer(db, "ada@example.com"))

    results, errors = _together(
        db, [lambda uow: service.act_on_case(uow, AGENT, case_id, CaseAction.RESOLVE) for _ in range(4)]
    )

    assert len(results) == 1 and len(errors) == 3, errors
    assert all(isinstance(e, IllegalCaseTransition) for e in errors)
    assert _status_and_version(db, case_id) == (CaseStatus.RESOLVED, 2)


def test_close_and_reopen_racing_leave_one_consistent_outcome(db: Database) -> None:
    case_id = _case(db, _customer(db, "ada@example.com"), CaseAction.RESOLVE)

    results, errors = _together(
        db,
        [
            lambda uow: service.act_on_case(uow, AGENT, case_id, CaseAction.CLOSE),
            lambda uow: service.act_on_case(uow, AGENT, case_id, CaseAction.REOPEN),
        ],
    )

    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], IllegalCaseTransition)
    assert _status_and_version(db, case_id) == (results[0].status, 3)


def test_a_note_never_lands_on_a_case_closed_meanwhile(db: Database) -> None:
    case_id = _case(db, _customer(db, "ada@example.com"), CaseAction.RESOLVE)
    note = NoteCreate(body="late note")

    _, errors = _together(
        db,
        [
            lambda uow: service.act_on_case(uow, AGENT, case_id, CaseAction.CLOSE),
            *(lambda uow: service.add_note(uow, AGENT, case_id, note) for _ in range(3)),
        ],
    )

    # Each note either took the case row before the close (and committed first: the close waits
    # for its lock) or found the case closed; none is lost, none written after the close.
    assert all(isinstance(e, CaseClosed) for e in errors), errors
    assert _status_and_version(db, case_id) == (CaseStatus.CLOSED, 3)
    assert _count(db, case_notes, case_notes.c.case_id == case_id) + len(errors) == 3


def _plant(db: Database, customer_id: str) -> None:
    with transaction(db) as uow:
        service.send_message(
            uow,
            SENDER,
            customer_id,
            MessageCreate(channel="email", purpose="transactional", subject="Hi Ada", body="Ada, it shipped"),
            provider=LogProvider(),
        )
        service.record_inbound(
            uow,
            SENDER,
            customer_id,
            InboundMessageCreate(channel="sms", body="thanks", address="+14155550123"),
        )
        case_id = service.open_case(
            uow, AGENT, CaseCreate(customer_id=customer_id, subject="Ada's refund", note="Ada called")
        )
        service.add_note(uow, AGENT, case_id.id, NoteCreate(body="refund sent", internal=True))


def _count(db: Database, table: Any, *where: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_export_and_erasure_reach_the_person_and_only_them(db: Database) -> None:
    ada, bob = _customer(db, "ada@example.com"), _customer(db, "bob@example.com")
    _plant(db, ada)
    _plant(db, bob)
    subject = Subject(customer_ids=(ada,))

    with db.uow(readonly=True) as uow:
        exported = service.customer_data(uow, subject)
    kinds = [r["record"] for r in exported]
    assert sorted(kinds) == ["case", "case_note", "case_note", "message", "message"]
    assert {r["customer_id"] for r in exported if r["record"] != "case_note"} == {ada}

    with transaction(db) as uow:
        erased = service.erase_customer_pii(uow, subject)

    assert erased == 5
    with db.engine.connect() as conn:
        mine = conn.execute(select(messages).where(messages.c.customer_id == ada)).all()
        case = conn.execute(select(cases).where(cases.c.customer_id == ada)).one()
        theirs = conn.execute(select(messages.c.body).where(messages.c.customer_id == bob)).scalars().all()
    assert {(m.address, m.subject, m.body) for m in mine} == {(None, None, ERASED)}
    assert sorted(m.status for m in mine) == [MessageStatus.RECEIVED, MessageStatus.SENT]  # facts stay
    assert case.subject == ERASED and case.status == CaseStatus.OPEN and case.created_at is not None
    assert _count(db, case_notes, case_notes.c.case_id == case.id, case_notes.c.body == ERASED) == 2
    assert sorted(theirs) == ["Ada, it shipped", "thanks"]  # Bob's own log is untouched
