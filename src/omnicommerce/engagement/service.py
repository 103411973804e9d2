"""Engagement use cases: send and record messages, open and work service cases, and the privacy
functions the customers context finds by name. Functions take the unit of work and the acting
principal and never commit; the entrypoint does.

Who may do what: keys and staff need ``engagement:read`` / ``engagement:write`` (messages) and
``cases:read`` / ``cases:write`` (cases), within their reach (store, sales channel). A customer
token reads its own messages and cases and opens a case for itself; anyone else is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from omnicommerce.customers import consent
from omnicommerce.customers import service as customers
from omnicommerce.customers.domain import normalize_email, normalize_phone
from omnicommerce.customers.privacy import service as privacy
from omnicommerce.customers.privacy.domain import Subject
from omnicommerce.engagement import repository as repo
from omnicommerce.engagement.domain import (
    CONSENT_CHANNEL,
    CONTACT_OF,
    MARKETING_PURPOSE,
    Case,
    CaseAction,
    CaseChanged,
    CaseClosed,
    CaseNote,
    CaseNotFound,
    CaseStatus,
    ConsentMissing,
    Direction,
    Message,
    MessageChanged,
    MessageChannel,
    MessageNotFound,
    MessageOutcome,
    MessageStatus,
    RecipientSuppressed,
    accepts_notes,
    needs_consent,
    next_case_status,
    next_message_status,
    recipient_address,
)
from omnicommerce.engagement.events import (
    CaseClosed as CaseClosedEvent,
)
from omnicommerce.engagement.events import (
    CaseNoteAdded,
    CaseOpened,
    CasePending,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    MessageSent,
)
from omnicommerce.engagement.providers import Outgoing, Provider, ProviderError
from omnicommerce.engagement.schemas import (
    CaseCreate,
    InboundMessageCreate,
    MessageCreate,
    MessageReceipt,
    NoteCreate,
)
from omnicommerce.orders import service as orders
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal, Scope
from omnicommerce.platform.channels import get_channel, resolve_channel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import InvalidInput
from omnicommerce.platform.events import Event
from omnicommerce.platform.ids import new_id

CAS_ATTEMPTS = 5  # a status change lost to a concurrent one is re-read and tried again this often
MAX_ERROR = 300


class CustomerRequired(InvalidInput):
    code = "customer-required"
    title = "Name the customer"


class OrderOfAnotherCustomer(InvalidInput):
    code = "order-of-another-customer"
    title = "The order belongs to another customer"


# --- messages -------------------------------------------------------------------------------------


def send_message(
    uow: UnitOfWork, actor: Principal, customer_id: str, cmd: MessageCreate, *, provider: Provider
) -> Message:
    """Check consent (marketing), reachability and suppression, hand the message to the provider
    and log it as ``sent`` — or as ``failed`` when the provider refused it (still 201: the
    attempt is part of the record)."""
    actor.require(Scope.ENGAGEMENT_WRITE)
    customer = customers.get_customer(uow, SYSTEM, customer_id)  # 404 for nobody
    address = recipient_address(
        cmd.channel,
        customer_id=customer.id,
        email=customer.email,
        phone=customer.phone,
        given=_normalised(cmd.channel, cmd.address),
    )
    if needs_consent(cmd.purpose):
        _check_marketing_consent(uow, customer.id, cmd.channel)
    _check_not_suppressed(uow, cmd.channel, address)
    message_id = new_id("msg")
    status, provider_id, error = _hand_over(
        provider, Outgoing(message_id, cmd.channel, address, cmd.subject, cmd.body)
    )
    row = _message_row(
        actor,
        message_id,
        customer.id,
        cmd.channel,
        Direction.OUTBOUND,
        status,
        purpose=cmd.purpose,
        address=address,
        subject=cmd.subject,
        body=cmd.body,
        provider=provider.name,
        provider_message_id=provider_id,
        error=error,
    )
    repo.insert_message(uow.conn, row)
    message = _message(uow, message_id)
    if status == MessageStatus.SENT:
        uow.emit(
            MessageSent(**_message_facts(message), provider=provider.name, provider_message_id=provider_id)
        )
    else:
        uow.emit(MessageFailed(**_message_facts(message), provider=provider.name))
    return message


def _normalised(channel: MessageChannel, address: str | None) -> str | None:
    """A given email or phone in the form the profile and the suppression list keep (422 if it
    is not one); push tokens and in-app ids as given."""
    if address is None or channel not in CONTACT_OF:
        return address
    return normalize_email(address) if CONTACT_OF[channel] == "email" else normalize_phone(address)


def _check_marketing_consent(uow: UnitOfWork, customer_id: str, channel: MessageChannel) -> None:
    consent_channel = CONSENT_CHANNEL[channel]
    if not consent.has_consent(
        uow, customer_id=customer_id, purpose=MARKETING_PURPOSE, channel=consent_channel
    ):
        raise ConsentMissing(
            f"the customer has not opted in to marketing on {consent_channel!r} (or 'any'); "
            "record their consent first (PUT /api/v1/customers/{id}/consents)",
            purpose=MARKETING_PURPOSE,
            consent_channel=consent_channel,
        )


def _check_not_suppressed(uow: UnitOfWork, channel: MessageChannel, address: str) -> None:
    """An address that belonged to an erased person is never written to again. Push and in-app
    address the customer id, which no erasure suppresses."""
    contact = CONTACT_OF.get(channel)
    if contact is None:
        return
    email, phone = (address, None) if contact == "email" else (None, address)
    if privacy.is_suppressed(uow, email=email, phone=phone):
        raise RecipientSuppressed(
            "this address belonged to a person whose data was erased on request; it is not written to"
        )


def _hand_over(provider: Provider, outgoing: Outgoing) -> tuple[MessageStatus, str | None, str | None]:
    """(status, provider message id, error) after the provider took — or refused — the message."""
    try:
        provider_id = provider.send(outgoing)
    except ProviderError as exc:
        return next_message_status(MessageStatus.QUEUED, MessageOutcome.FAILED), None, str(exc)[:MAX_ERROR]
    return next_message_status(MessageStatus.QUEUED, MessageOutcome.SENT), provider_id, None


def record_inbound(
    uow: UnitOfWork, actor: Principal, customer_id: str, cmd: InboundMessageCreate
) -> tuple[Message, bool]:
    """Log a message the customer sent us; (message, created). A provider id already stored
    answers with that message and publishes nothing again."""
    actor.require(Scope.ENGAGEMENT_WRITE)
    customer = customers.get_customer(uow, SYSTEM, customer_id)
    if cmd.provider_message_id is not None:
        known = repo.message_by_provider_id(uow.conn, cmd.channel, cmd.provider_message_id)
        if known is not None:
            return _reachable_duplicate(uow, actor, known), False
    now = clock.now()
    received_at = min(cmd.received_at or now, now)  # a report cannot come from the future
    message_id = new_id("msg")
    row = _message_row(
        actor,
        message_id,
        customer.id,
        cmd.channel,
        Direction.INBOUND,
        MessageStatus.RECEIVED,
        address=cmd.address,
        subject=cmd.subject,
        body=cmd.body,
        provider_message_id=cmd.provider_message_id,
        created_at=received_at,
    )
    if not repo.insert_message_once(uow.conn, row):  # the same webhook, concurrently
        known = repo.message_by_provider_id(uow.conn, cmd.channel, cmd.provider_message_id or "")
        if known is None:  # pragma: no cover - the conflict names the row that exists
            raise MessageNotFound("the message stored meanwhile could not be read")
        return _reachable_duplicate(uow, actor, known), False
    message = _message(uow, message_id)
    uow.emit(
        MessageReceived(
            **_message_facts(message), provider_message_id=cmd.provider_message_id, occurred_at=received_at
        )
    )
    return message, True


def _reachable_duplicate(uow: UnitOfWork, actor: Principal, known: Message) -> Message:
    found = repo.get_message(uow.conn, known.id, actor=actor)
    if found is None:  # another store's or channel's message: do not reveal it
        raise MessageNotFound("a message with this provider id exists out of this credential's reach")
    return found


def record_receipt(uow: UnitOfWork, actor: Principal, message_id: str, cmd: MessageReceipt) -> Message:
    """A provider's delivery report: ``sent → delivered``, or ``sent → failed`` (a bounce)."""
    actor.require(Scope.ENGAGEMENT_WRITE)
    for _ in range(CAS_ATTEMPTS):
        message = get_message(uow, actor, message_id)
        to = next_message_status(message.status, cmd.outcome)
        error = cmd.error[:MAX_ERROR] if cmd.error and to == MessageStatus.FAILED else message.error
        if repo.move_message(uow.conn, message, to, error=error):
            moved = _message(uow, message_id)
            facts = _message_facts(moved)
            if to == MessageStatus.DELIVERED:
                uow.emit(MessageDelivered(**facts, provider_message_id=moved.provider_message_id))
            else:
                uow.emit(MessageFailed(**facts, provider=moved.provider))
            return moved
    raise MessageChanged("the message keeps changing; send the report again")


def get_message(uow: UnitOfWork, actor: Principal, message_id: str) -> Message:
    if not actor.is_customer:
        actor.require(Scope.ENGAGEMENT_READ)
    message = repo.get_message(uow.conn, message_id, actor=actor)
    if message is None:
        raise MessageNotFound(f"no message {message_id!r}")
    return message


def list_messages(
    uow: UnitOfWork,
    actor: Principal,
    customer_id: str,
    *,
    channel: MessageChannel | None = None,
    direction: Direction | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Message]:
    """The person's messages, newest first, from every account of their profile (a customer
    reads only its own)."""
    accounts, reader = _person(uow, actor, customer_id, Scope.ENGAGEMENT_READ)
    return repo.list_messages(
        uow.conn,
        customer_ids=accounts,
        actor=reader,
        channel=channel,
        direction=direction,
        before=before,
        limit=limit,
    )


def _message(uow: UnitOfWork, message_id: str) -> Message:
    found = repo.get_message(uow.conn, message_id, actor=None)
    if found is None:  # pragma: no cover - written in this transaction
        raise MessageNotFound(f"no message {message_id!r}")
    return found


def _message_facts(m: Message) -> dict[str, Any]:
    return {
        "message_id": m.id,
        "customer_id": m.customer_id,
        "channel": m.channel,
        "direction": m.direction,
        "purpose": m.purpose,
        "status": m.status,
        "origin_channel": m.origin_channel,
    }


def _message_row(
    actor: Principal,
    message_id: str,
    customer_id: str,
    channel: MessageChannel,
    direction: Direction,
    status: MessageStatus,
    *,
    body: str,
    created_at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A new message row; it remembers the sales channel and store of the credential that wrote
    it (what channel- and store-bound keys are scoped by)."""
    now = clock.now()
    return {
        "id": message_id,
        "customer_id": customer_id,
        "channel": channel,
        "direction": direction,
        "purpose": None,
        "address": None,
        "subject": None,
        "body": body,
        "status": status,
        "provider": None,
        "provider_message_id": None,
        "error": None,
        "origin_channel": actor.channel,
        "location_id": actor.location,
        "sent_by": actor.id,
        "version": 1,
        "created_at": created_at or now,
        "updated_at": now,
        **fields,
    }


# --- cases ------------------------------------------------------------------------------------------


def open_case(uow: UnitOfWork, actor: Principal, cmd: CaseCreate) -> Case:
    """An agent, a store or a key with ``cases:write`` opens a case for a customer; a customer
    opens one for itself (on the channel it signed in on)."""
    customer_id = cmd.customer_id or (actor.customer_id if actor.is_customer else None)
    if customer_id is None:
        raise CustomerRequired("give the case's customer_id")
    customers.check_reach(actor, customer_id, Scope.CASES_WRITE)
    customer = customers.get_customer(uow, SYSTEM, customer_id)
    channel = resolve_channel(actor.channel, cmd.channel)
    get_channel(uow.conn, channel)
    if cmd.order_id is not None:
        _check_order(uow, actor, cmd.order_id, customer.id)
    now = clock.now()
    case_id = new_id("cas")
    repo.insert_case(
        uow.conn,
        {
            "id": case_id,
            "customer_id": customer.id,
            "channel": channel,
            "location_id": actor.location,
            "order_id": cmd.order_id,
            "subject": cmd.subject,
            "priority": cmd.priority,
            "status": CaseStatus.OPEN,
            "opened_by": actor.id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "resolved_at": None,
            "closed_at": None,
        },
    )
    case = _case(uow, case_id)
    uow.emit(CaseOpened(**_case_facts(case, actor)))
    if cmd.note is not None:
        _insert_note(uow, actor, case, NoteCreate(body=cmd.note, internal=False))
    return _case(uow, case_id, with_notes=True)


def _check_order(uow: UnitOfWork, actor: Principal, order_id: str, customer_id: str) -> None:
    """The order must be within the caller's reach (404 otherwise) and the customer's."""
    order = orders.get_order(uow, actor, order_id)
    if order.customer_id != customer_id:
        raise OrderOfAnotherCustomer(f"order {order_id!r} is not {customer_id!r}'s")


def get_case(uow: UnitOfWork, actor: Principal, case_id: str) -> Case:
    """The case with its notes (a customer: its own case, without internal notes)."""
    if not actor.is_customer:
        actor.require(Scope.CASES_READ)
    case = repo.get_case(uow.conn, case_id, actor=actor, with_notes=True)
    if case is None:
        raise CaseNotFound(f"no case {case_id!r}")
    if actor.is_customer:
        return _without_internal_notes(case)
    return case


def _without_internal_notes(case: Case) -> Case:
    return replace(case, notes=tuple(n for n in case.notes if not n.internal))


def list_cases(
    uow: UnitOfWork,
    actor: Principal,
    *,
    customer_id: str | None = None,
    status: CaseStatus | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Case]:
    """Cases newest first: a person's, from every account of their profile (a customer reads
    only its own), or every case in reach."""
    accounts: list[str] | None = None
    if customer_id is None:
        actor.require(Scope.CASES_READ)
    else:
        accounts, actor = _person(uow, actor, customer_id, Scope.CASES_READ)
    return repo.list_cases(
        uow.conn, actor=actor, customer_ids=accounts, status=status, before=before, limit=limit
    )


def _person(uow: UnitOfWork, actor: Principal, customer_id: str, scope: str) -> tuple[list[str], Principal]:
    """The person's accounts and who reads them (``customers.person_accounts``); staff need
    ``scope``."""
    if not actor.is_customer:
        actor.require(scope)
    return customers.person_accounts(uow, actor, customer_id)


def add_note(uow: UnitOfWork, actor: Principal, case_id: str, cmd: NoteCreate) -> CaseNote:
    actor.require(Scope.CASES_WRITE)
    case = _reachable_case(uow, actor, case_id)
    if not accepts_notes(case.status):
        raise CaseClosed("the case is closed; open a new case")
    return _insert_note(uow, actor, case, cmd)


def _insert_note(uow: UnitOfWork, actor: Principal, case: Case, cmd: NoteCreate) -> CaseNote:
    # Checked again in the UPDATE: a note never lands on a case closed meanwhile.
    if not repo.touch_open_case(uow.conn, case.id):
        raise CaseClosed("the case was closed meanwhile; open a new case")
    note = CaseNote(
        id=new_id("cno"),
        case_id=case.id,
        author=actor.id,
        author_kind=actor.kind,
        body=cmd.body,
        internal=cmd.internal,
        created_at=clock.now(),
    )
    repo.insert_note(
        uow.conn,
        {
            "id": note.id,
            "case_id": note.case_id,
            "author": note.author,
            "author_kind": note.author_kind,
            "body": note.body,
            "internal": note.internal,
            "created_at": note.created_at,
        },
    )
    uow.emit(CaseNoteAdded(**_case_facts(case, actor), note_id=note.id, internal=note.internal))
    return note


# The event each action publishes.
_ACTION_EVENTS: dict[CaseAction, Callable[..., Event]] = {
    CaseAction.WAIT: CasePending,
    CaseAction.RESUME: CaseResumed,
    CaseAction.RESOLVE: CaseResolved,
    CaseAction.CLOSE: CaseClosedEvent,
    CaseAction.REOPEN: CaseReopened,
}


def act_on_case(uow: UnitOfWork, actor: Principal, case_id: str, action: CaseAction) -> Case:
    """Move the case by the state machine (409 for an illegal action), compare-and-set on its
    version; a change lost to a concurrent one is re-read and judged again."""
    actor.require(Scope.CASES_WRITE)
    for _ in range(CAS_ATTEMPTS):
        case = _reachable_case(uow, actor, case_id)
        to = next_case_status(case.status, action)
        if repo.move_case(uow.conn, case, to, **_stamps(action, clock.now())):
            moved = _case(uow, case_id, with_notes=True)
            uow.emit(_ACTION_EVENTS[action](**_case_facts(moved, actor)))
            return moved
    raise CaseChanged("the case keeps changing; send the action again")


def _stamps(action: CaseAction, now: datetime) -> dict[str, Any]:
    if action == CaseAction.RESOLVE:
        return {"resolved_at": now}
    if action == CaseAction.CLOSE:
        return {"closed_at": now}
    if action == CaseAction.REOPEN:
        return {"resolved_at": None}
    return {}


def _reachable_case(uow: UnitOfWork, actor: Principal, case_id: str) -> Case:
    case = repo.get_case(uow.conn, case_id, actor=actor)
    if case is None:
        raise CaseNotFound(f"no case {case_id!r}")
    return case


def _case(uow: UnitOfWork, case_id: str, *, with_notes: bool = False) -> Case:
    found = repo.get_case(uow.conn, case_id, actor=None, with_notes=with_notes)
    if found is None:  # pragma: no cover - written in this transaction
        raise CaseNotFound(f"no case {case_id!r}")
    return found


def _case_facts(case: Case, actor: Principal) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "customer_id": case.customer_id,
        "channel": case.channel,
        "location_id": case.location_id,
        "order_id": case.order_id,
        "priority": case.priority,
        "status": case.status,
        "actor": actor.id,
    }


# --- privacy (called by customers.privacy for export and erasure requests) -----------------------------


def customer_data(uow: UnitOfWork, subject: Subject) -> list[dict[str, Any]]:
    """Every message to and from the person, their cases and every note on those cases."""
    return repo.customer_rows(uow.conn, subject)


def erase_customer_pii(uow: UnitOfWork, subject: Subject) -> int:
    """Message addresses, subjects and bodies, case subjects and note texts anonymised; the
    counts, channels, statuses and times stay (service figures still add up)."""
    return repo.erase_customer_pii(uow.conn, subject)
