"""Engagement HTTP routes: a customer's messages (send, log inbound, delivery reports, read) and
service cases (open, read, notes, transitions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from omnicommerce.customers.domain import CustomerNotFound, InvalidEmail, InvalidPhone
from omnicommerce.engagement import providers, service
from omnicommerce.engagement.domain import (
    Case,
    CaseAction,
    CaseChanged,
    CaseClosed,
    CaseNotFound,
    CaseStatus,
    ConsentMissing,
    Direction,
    IllegalCaseTransition,
    IllegalMessageTransition,
    MessageChannel,
    MessageNotFound,
    RecipientSuppressed,
    RecipientUnreachable,
)
from omnicommerce.engagement.providers import Provider
from omnicommerce.engagement.schemas import (
    CaseCreate,
    CaseDetail,
    CaseOut,
    InboundMessageCreate,
    MessageCreate,
    MessageOut,
    MessageReceipt,
    NoteCreate,
    NoteOut,
)
from omnicommerce.orders.domain import OrderNotFound
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import ChannelMismatch, ChannelRequired, UnknownChannel
from omnicommerce.platform.errors import Forbidden, Unauthorized, problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import (
    BadCursor,
    IdempotencyKey,
    Page,
    ReadUoW,
    Route,
    UoW,
    current_principal,
    decode_cursor,
    model_json,
    page_of,
    require,
)

router = APIRouter(tags=["engagement"], route_class=Route)

EngagementWrite = Annotated[Principal, Depends(require(Scope.ENGAGEMENT_WRITE))]
CasesWrite = Annotated[Principal, Depends(require(Scope.CASES_WRITE))]


def customer_or(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A customer token (which carries no engagement or cases scope: the service keeps it to
    its own records) or a credential with ``scope``. Checked before the body is read, so a
    caller with neither gets 403, not a 422 about its body."""

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.is_customer:
            principal.require(scope)
        return principal

    dependency.__name__ = "customer_or_" + scope.replace(":", "_")
    return dependency


MessagesReader = Annotated[Principal, Depends(customer_or(Scope.ENGAGEMENT_READ))]
CasesReader = Annotated[Principal, Depends(customer_or(Scope.CASES_READ))]
CaseOpener = Annotated[Principal, Depends(customer_or(Scope.CASES_WRITE))]
_ID = r"^[A-Za-z0-9_.\-]+$"
CustomerId = Annotated[str, Path(max_length=64, pattern=_ID, examples=["cus_01J9Z3ABCDEFGHJKMNPQRSTVWX"])]
MessageId = Annotated[str, Path(max_length=64, pattern=_ID, examples=["msg_01J9Z3ABCDEFGHJKMNPQRSTVWX"])]
CaseId = Annotated[str, Path(max_length=64, pattern=_ID, examples=["cas_01J9Z3ABCDEFGHJKMNPQRSTVWX"])]
Limit = Annotated[int, Query(ge=1, le=200)]
AUTH = (Unauthorized, Forbidden)


async def message_provider() -> Provider:
    """The process's message provider (``log`` unless another was installed)."""
    return providers.current()


Sender = Annotated[Provider, Depends(message_provider)]


# --- messages -------------------------------------------------------------------------------------


@router.post(
    "/customers/{customer_id}/messages",
    status_code=201,
    response_model=MessageOut,
    summary="Send a message to a customer (marketing needs their consent for the channel)",
    responses=problem_schema(
        *AUTH,
        CustomerNotFound,
        ConsentMissing,
        RecipientSuppressed,
        RecipientUnreachable,
        InvalidEmail,
        InvalidPhone,
        IdempotencyConflict,
    ),
)
def send_message(
    customer_id: CustomerId,
    body: MessageCreate,
    actor: EngagementWrite,
    uow: UoW,
    idem: IdempotencyKey,
    provider: Sender,
) -> JSONResponse:
    return idem.run(
        uow,
        body,
        lambda: MessageOut.model_validate(
            service.send_message(uow, actor, customer_id, body, provider=provider)
        ),
    )


@router.post(
    "/customers/{customer_id}/messages/inbound",
    status_code=201,
    response_model=MessageOut,
    summary="Log a message the customer sent (200 when the provider id was logged before)",
    responses={
        200: {"model": MessageOut, "description": "This provider message id was logged before"},
        **problem_schema(*AUTH, CustomerNotFound, MessageNotFound, IdempotencyConflict),
    },
)
def record_inbound(
    customer_id: CustomerId,
    body: InboundMessageCreate,
    actor: EngagementWrite,
    uow: UoW,
    idem: IdempotencyKey,
) -> JSONResponse:
    def record() -> tuple[MessageOut, int]:
        message, created = service.record_inbound(uow, actor, customer_id, body)
        return MessageOut.model_validate(message), 201 if created else 200

    return idem.run(uow, body, record)


@router.get(
    "/customers/{customer_id}/messages",
    response_model=Page[MessageOut],
    summary="A customer's messages, newest first",
    responses=problem_schema(*AUTH, CustomerNotFound, BadCursor),
)
def list_messages(
    customer_id: CustomerId,
    actor: MessagesReader,
    uow: ReadUoW,
    channel: MessageChannel | None = None,
    direction: Direction | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[MessageOut]:
    found = service.list_messages(
        uow,
        actor,
        customer_id,
        channel=channel,
        direction=direction,
        before=decode_cursor(cursor),
        limit=limit + 1,
    )
    return page_of([MessageOut.model_validate(m) for m in found], limit, lambda m: m.id)


@router.get(
    "/messages/{message_id}",
    response_model=MessageOut,
    summary="One message",
    responses=problem_schema(*AUTH, MessageNotFound),
)
def get_message(message_id: MessageId, actor: MessagesReader, uow: ReadUoW) -> MessageOut:
    return MessageOut.model_validate(service.get_message(uow, actor, message_id))


@router.post(
    "/messages/{message_id}/receipts",
    response_model=MessageOut,
    summary="A provider's delivery report: delivered, or failed (a bounce)",
    responses=problem_schema(*AUTH, MessageNotFound, IllegalMessageTransition),
)
def record_receipt(
    message_id: MessageId, body: MessageReceipt, actor: EngagementWrite, uow: UoW
) -> JSONResponse:
    message = MessageOut.model_validate(service.record_receipt(uow, actor, message_id, body))
    uow.commit()
    return model_json(message)


# --- cases ------------------------------------------------------------------------------------------


def _detail(case: Case) -> CaseDetail:
    return CaseDetail.model_validate(case)


@router.post(
    "/cases",
    status_code=201,
    response_model=CaseDetail,
    summary="Open a service case (a customer opens its own)",
    responses=problem_schema(
        *AUTH,
        CustomerNotFound,
        OrderNotFound,
        service.CustomerRequired,
        service.OrderOfAnotherCustomer,
        ChannelMismatch,
        ChannelRequired,
        UnknownChannel,
        IdempotencyConflict,
    ),
)
def open_case(body: CaseCreate, actor: CaseOpener, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    return idem.run(uow, body, lambda: _detail(service.open_case(uow, actor, body)))


@router.get(
    "/cases",
    response_model=Page[CaseOut],
    summary="Cases in reach, newest first (a queue: filter by status)",
    responses=problem_schema(*AUTH, BadCursor),
)
def list_cases(
    actor: CasesReader,
    uow: ReadUoW,
    status: CaseStatus | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[CaseOut]:
    found = service.list_cases(uow, actor, status=status, before=decode_cursor(cursor), limit=limit + 1)
    return page_of([CaseOut.model_validate(c) for c in found], limit, lambda c: c.id)


@router.get(
    "/customers/{customer_id}/cases",
    response_model=Page[CaseOut],
    summary="A customer's cases, newest first",
    responses=problem_schema(*AUTH, CustomerNotFound, BadCursor),
)
def customer_cases(
    customer_id: CustomerId,
    actor: CasesReader,
    uow: ReadUoW,
    status: CaseStatus | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[CaseOut]:
    found = service.list_cases(
        uow, actor, customer_id=customer_id, status=status, before=decode_cursor(cursor), limit=limit + 1
    )
    return page_of([CaseOut.model_validate(c) for c in found], limit, lambda c: c.id)


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    summary="A case with its notes (a customer sees no internal notes)",
    responses=problem_schema(*AUTH, CaseNotFound),
)
def get_case(case_id: CaseId, actor: CasesReader, uow: ReadUoW) -> CaseDetail:
    return _detail(service.get_case(uow, actor, case_id))


@router.post(
    "/cases/{case_id}/notes",
    status_code=201,
    response_model=NoteOut,
    summary="Add a note to a case",
    responses=problem_schema(*AUTH, CaseNotFound, CaseClosed, IdempotencyConflict),
)
def add_note(
    case_id: CaseId, body: NoteCreate, actor: CasesWrite, uow: UoW, idem: IdempotencyKey
) -> JSONResponse:
    return idem.run(uow, body, lambda: NoteOut.model_validate(service.add_note(uow, actor, case_id, body)))


@router.post(
    "/cases/{case_id}/{action}",
    response_model=CaseDetail,
    summary="Move a case: wait, resume, resolve, close, reopen",
    responses=problem_schema(*AUTH, CaseNotFound, IllegalCaseTransition, CaseChanged),
)
def act_on_case(case_id: CaseId, action: CaseAction, actor: CasesWrite, uow: UoW) -> JSONResponse:
    case = _detail(service.act_on_case(uow, actor, case_id, action))
    uow.commit()
    return model_json(case)
