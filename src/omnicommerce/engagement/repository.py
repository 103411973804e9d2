"""The SQL of engagement: the message log, cases and notes, the one scoping rule, the
compare-and-set of every status change, and the privacy queries.

Scoping (``visible_to``): a customer reaches its own messages and cases, a store-bound key its
store's, a channel-bound key those of its sales channel, an unbound key all. Out of reach is 404.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, insert, select, true, update
from sqlalchemy.engine import Connection

from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.engagement.domain import (
    Case,
    CaseNote,
    CaseStatus,
    Direction,
    Message,
    MessageChannel,
    MessageStatus,
    Priority,
    Purpose,
)
from omnicommerce.engagement.models import case_notes, cases, messages
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Principal, reach
from omnicommerce.platform.db import conflict_insert
from omnicommerce.platform.pii import ERASED, rows_where

M = messages.c
C = cases.c
N = case_notes.c

# Which column each kind of reach compares, per table (messages remember the sales channel of
# the credential that sent them; a case the channel it was opened on).
_SCOPE_COLUMNS: Mapping[Table, Mapping[str, Any]] = {
    messages: {"customer": M.customer_id, "location": M.location_id, "channel": M.origin_channel},
    cases: {"customer": C.customer_id, "location": C.location_id, "channel": C.channel},
}


def visible_to(table: Table, actor: Principal | None) -> ColumnElement[bool]:
    """THE scoping rule for ``table`` (messages or cases)."""
    kind, value = reach(actor)
    return true() if kind == "all" else _SCOPE_COLUMNS[table][kind] == value


# --- messages -------------------------------------------------------------------------------------


def _message(r: Any) -> Message:
    return Message(
        id=r.id,
        customer_id=r.customer_id,
        channel=MessageChannel(r.channel),
        direction=Direction(r.direction),
        purpose=Purpose(r.purpose) if r.purpose else None,
        address=r.address,
        subject=r.subject,
        body=r.body,
        status=MessageStatus(r.status),
        provider=r.provider,
        provider_message_id=r.provider_message_id,
        error=r.error,
        origin_channel=r.origin_channel,
        location_id=r.location_id,
        sent_by=r.sent_by,
        version=r.version,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def insert_message(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(messages).values(**row))


def insert_message_once(conn: Connection, row: Mapping[str, Any]) -> bool:
    """Insert unless a message with the same (channel, provider id) exists: a provider's retried
    webhook. True when this call stored it."""
    stmt = conflict_insert(messages, conn.dialect.name).on_conflict_do_nothing(
        index_elements=["channel", "provider_message_id"]
    )
    return bool(conn.execute(stmt.values(**row)).rowcount)


def get_message(conn: Connection, message_id: str, *, actor: Principal | None) -> Message | None:
    row = conn.execute(select(messages).where(M.id == message_id, visible_to(messages, actor))).first()
    return None if row is None else _message(row)


def message_by_provider_id(conn: Connection, channel: str, provider_message_id: str) -> Message | None:
    row = conn.execute(
        select(messages).where(M.channel == channel, M.provider_message_id == provider_message_id)
    ).first()
    return None if row is None else _message(row)


def list_messages(
    conn: Connection,
    *,
    customer_ids: Sequence[str],
    actor: Principal,
    channel: str | None,
    direction: str | None,
    before: str | None,
    limit: int,
) -> list[Message]:
    """Newest first (ids sort by creation time), ``limit`` rows after the cursor."""
    query = (
        select(messages)
        .where(M.customer_id.in_(customer_ids), visible_to(messages, actor))
        .order_by(M.id.desc())
        .limit(limit)
    )
    if channel is not None:
        query = query.where(M.channel == channel)
    if direction is not None:
        query = query.where(M.direction == direction)
    if before is not None:
        query = query.where(M.id < before)
    return [_message(r) for r in conn.execute(query)]


def move_message(conn: Connection, message: Message, to: MessageStatus, **values: Any) -> bool:
    """Compare-and-set on version: False if another request moved the message first."""
    res = conn.execute(
        update(messages)
        .where(M.id == message.id, M.version == message.version)
        .values(status=to, version=message.version + 1, updated_at=clock.now(), **values)
    )
    return res.rowcount == 1


# --- cases --------------------------------------------------------------------------------------------


def _note(r: Any) -> CaseNote:
    return CaseNote(
        id=r.id,
        case_id=r.case_id,
        author=r.author,
        author_kind=r.author_kind,
        body=r.body,
        internal=r.internal,
        created_at=r.created_at,
    )


def _case(r: Any, notes: tuple[CaseNote, ...] = ()) -> Case:
    return Case(
        id=r.id,
        customer_id=r.customer_id,
        channel=r.channel,
        location_id=r.location_id,
        order_id=r.order_id,
        subject=r.subject,
        priority=Priority(r.priority),
        status=CaseStatus(r.status),
        opened_by=r.opened_by,
        version=r.version,
        created_at=r.created_at,
        updated_at=r.updated_at,
        resolved_at=r.resolved_at,
        closed_at=r.closed_at,
        notes=notes,
    )


def insert_case(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(cases).values(**row))


def get_case(
    conn: Connection, case_id: str, *, actor: Principal | None, with_notes: bool = False
) -> Case | None:
    row = conn.execute(select(cases).where(C.id == case_id, visible_to(cases, actor))).first()
    if row is None:
        return None
    if not with_notes:
        return _case(row)
    notes = conn.execute(select(case_notes).where(N.case_id == case_id).order_by(N.id))
    return _case(row, tuple(_note(n) for n in notes))


def list_cases(
    conn: Connection,
    *,
    actor: Principal,
    customer_ids: Sequence[str] | None,
    status: str | None,
    before: str | None,
    limit: int,
) -> list[Case]:
    """Newest first, without notes (one query)."""
    query = select(cases).where(visible_to(cases, actor)).order_by(C.id.desc()).limit(limit)
    if customer_ids is not None:
        query = query.where(C.customer_id.in_(customer_ids))
    if status is not None:
        query = query.where(C.status == status)
    if before is not None:
        query = query.where(C.id < before)
    return [_case(r) for r in conn.execute(query)]


def move_case(conn: Connection, case: Case, to: CaseStatus, **values: Any) -> bool:
    """Compare-and-set on version and status: False if another request moved the case first."""
    res = conn.execute(
        update(cases)
        .where(C.id == case.id, C.version == case.version, C.status == case.status)
        .values(status=to, version=case.version + 1, updated_at=clock.now(), **values)
    )
    return res.rowcount == 1


def insert_note(conn: Connection, row: Mapping[str, Any]) -> None:
    conn.execute(insert(case_notes).values(**row))


def touch_open_case(conn: Connection, case_id: str) -> bool:
    """Move ``updated_at`` of a case that is not closed, in the statement that checks it is not
    (a note must not land on a case closed meanwhile). False: closed or gone."""
    res = conn.execute(
        update(cases).where(C.id == case_id, C.status != CaseStatus.CLOSED).values(updated_at=clock.now())
    )
    return res.rowcount == 1


# --- privacy requests (found by name by customers.privacy) ---------------------------------------------


def customer_rows(conn: Connection, subject: Subject) -> list[dict[str, Any]]:
    """Every message, case and case note about the person, as stored, each tagged with its
    ``record`` kind."""
    ids = list(subject.customer_ids)
    their_cases = select(C.id).where(C.customer_id.in_(ids))
    found = {
        "message": rows_where(conn, messages, M.customer_id.in_(ids)),
        "case": rows_where(conn, cases, C.customer_id.in_(ids)),
        "case_note": rows_where(conn, case_notes, N.case_id.in_(their_cases)),
    }
    return [{"record": kind, **row} for kind, rows in found.items() for row in rows]


def erase_customer_pii(conn: Connection, subject: Subject) -> int:
    """Addresses, subjects, bodies and provider errors of their messages, subjects of their
    cases and the text of every note on them: gone. Statuses, channels, purposes, counts and
    times stay; versions move, so a request holding an old row fails instead of writing back."""
    ids = list(subject.customer_ids)
    now = clock.now()
    erased_messages = conn.execute(
        update(messages)
        .where(M.customer_id.in_(ids))
        .values(address=None, subject=None, body=ERASED, error=None, version=M.version + 1, updated_at=now)
    ).rowcount
    erased_notes = conn.execute(
        update(case_notes)
        .where(N.case_id.in_(select(C.id).where(C.customer_id.in_(ids))))
        .values(body=ERASED)
    ).rowcount
    erased_cases = conn.execute(
        update(cases)
        .where(C.customer_id.in_(ids))
        .values(subject=ERASED, version=C.version + 1, updated_at=now)
    ).rowcount
    return int(erased_messages + erased_notes + erased_cases)
