"""customers HTTP routes: the POS, the call center and back offices look up and manage shoppers;
a signed-in customer reads and changes its own profile."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Query
from fastapi.responses import JSONResponse

from omnicommerce.customers import consent, identity, importing, ingestion, profile, reviews, service
from omnicommerce.customers.domain import (
    ContactRequired,
    CustomerExists,
    CustomerNotFound,
    InvalidEmail,
    InvalidIdentityRules,
    InvalidPhone,
    MergeNotFound,
)
from omnicommerce.customers.importing import ImportNotFound, InvalidImportMapping, UnreadableImport
from omnicommerce.customers.ingestion import BatchTooLarge
from omnicommerce.customers.reviews import MergeRefused, ReviewClosed, ReviewNotFound, ReviewStatus
from omnicommerce.customers.schemas import (
    ConsentOut,
    ConsentsUpdate,
    Customer,
    CustomerCreate,
    CustomerUpdate,
    EventBatchIn,
    IdentityRulesDoc,
    IdentityRulesOut,
    ImportReport,
    IngestResult,
    MergeOut,
    Profile,
    ReviewOut,
    UnmergeResult,
)
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import ChannelMismatch, ChannelRequired, UnknownChannel
from omnicommerce.platform.errors import Forbidden, Unauthorized, problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import BadCursor, IdempotencyKey, Page, ReadUoW, Route, UoW, require

router = APIRouter(tags=["customers"], route_class=Route)

CustomersRead = Annotated[Principal, Depends(require(Scope.CUSTOMERS_READ))]
CustomersWrite = Annotated[Principal, Depends(require(Scope.CUSTOMERS_WRITE))]
# Ids are checked before any query: a NUL or other stray character would be a database error.
CustomerId = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$", examples=["cus_01J9Z3ABCDEFGHJKMNPQRSTVWX"])
]
# Customer tokens carry no customers:* scope; the service lets them reach their own record only.
Anyone = Annotated[Principal, Depends(require())]


@router.post(
    "/customers",
    status_code=201,
    response_model=Customer,
    summary="Create a customer",
    responses=problem_schema(
        Unauthorized,
        Forbidden,
        ChannelMismatch,
        UnknownChannel,
        CustomerExists,
        InvalidEmail,
        InvalidPhone,
        ContactRequired,
        ChannelRequired,
        IdempotencyConflict,
    ),
)
def create_customer(
    body: CustomerCreate, actor: CustomersWrite, uow: UoW, idem: IdempotencyKey
) -> JSONResponse:
    return idem.run(uow, body, lambda: service.create_customer(uow, actor, body))


@router.get(
    "/customers",
    response_model=Page[Customer],
    summary="Find customers by email, phone or name",
    responses=problem_schema(Unauthorized, Forbidden, InvalidEmail, InvalidPhone),
)
def search_customers(
    actor: CustomersRead,
    uow: ReadUoW,
    email: Annotated[str | None, Query(max_length=320, description="Exact (normalised) email")] = None,
    phone: Annotated[str | None, Query(max_length=40, description="Exact phone, any format")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Prefix of name or email")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[Customer]:
    return service.search_customers(uow, actor, email=email, phone=phone, q=q, cursor=cursor, limit=limit)


@router.get(
    "/customers/{customer_id}",
    response_model=Customer,
    summary="Get a customer",
    responses=problem_schema(Unauthorized, Forbidden, CustomerNotFound),
)
def get_customer(customer_id: CustomerId, actor: Anyone, uow: ReadUoW) -> Customer:
    return service.get_customer(uow, actor, customer_id)


@router.patch(
    "/customers/{customer_id}",
    response_model=Customer,
    summary="Update a customer's profile",
    responses=problem_schema(
        Unauthorized, Forbidden, CustomerNotFound, CustomerExists, InvalidEmail, InvalidPhone
    ),
)
def update_customer(customer_id: CustomerId, body: CustomerUpdate, actor: Anyone, uow: UoW) -> Customer:
    customer = service.update_profile(uow, actor, customer_id, body)
    uow.commit()
    return customer


# --- customer data platform ----------------------------------------------------------------------

EventsWrite = Annotated[Principal, Depends(require(Scope.EVENTS_WRITE))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]


@router.post(
    "/events",
    response_model=IngestResult,
    summary="Ingest customer events (own schema; Segment-shaped events)",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, BatchTooLarge, IdempotencyConflict),
)
def ingest_events(body: EventBatchIn, actor: EventsWrite, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    """Each event is validated on its own: the answer is 200 with a result per event
    (`accepted`, `duplicate` by `messageId`, or `rejected` with its errors)."""
    return idem.run(
        uow,
        body,
        lambda: ingestion.retry_deadlocks(
            uow,
            lambda: ingestion.ingest(
                uow, actor, body.batch, sent_at=body.sent_at, context=body.context, commit_profiles=uow.commit
            ),
        ),
        status=200,
    )


@router.get(
    "/identity/rules",
    response_model=IdentityRulesOut,
    summary="The identity resolution rules",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden),
)
def get_identity_rules(actor: CustomersRead, uow: ReadUoW) -> IdentityRulesOut:
    return identity.get_rules(uow, actor)


@router.put(
    "/identity/rules",
    response_model=IdentityRulesOut,
    summary="Replace the identity resolution rules (admin)",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, InvalidIdentityRules),
)
def put_identity_rules(body: IdentityRulesDoc, actor: Admin, uow: UoW) -> IdentityRulesOut:
    rules = identity.set_rules(uow, actor, body)
    uow.commit()
    return rules


@router.post(
    "/customers/{customer_id}/unmerge",
    response_model=UnmergeResult,
    summary="Split a wrongly merged profile back out",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, MergeNotFound),
)
def unmerge_customer(customer_id: CustomerId, actor: CustomersWrite, uow: UoW) -> UnmergeResult:
    result = identity.unmerge(uow, actor, customer_id)
    uow.commit()
    return result


@router.get(
    "/customers/{customer_id}/merges",
    response_model=list[MergeOut],
    summary="The merge journal of a profile, with evidence",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, CustomerNotFound),
)
def list_merges(customer_id: CustomerId, actor: CustomersRead, uow: ReadUoW) -> list[MergeOut]:
    return identity.merges(uow, actor, customer_id)


@router.get(
    "/customers/{customer_id}/profile",
    response_model=Profile,
    summary="The customer 360: identities, computed traits, unified timeline",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, CustomerNotFound, BadCursor),
)
def get_profile(
    customer_id: CustomerId,
    actor: Anyone,
    uow: ReadUoW,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Profile:
    return profile.get_profile(uow, actor, customer_id, cursor=cursor, limit=limit)


@router.put(
    "/customers/{customer_id}/consents",
    response_model=list[ConsentOut],
    summary="Record consent decisions (per purpose and channel)",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, CustomerNotFound),
)
def put_consents(customer_id: CustomerId, body: ConsentsUpdate, actor: Anyone, uow: UoW) -> list[ConsentOut]:
    """Opt-in: no decision means no consent. A decision older than the stored one is ignored."""
    result = consent.set_consents(uow, actor, customer_id, body)
    uow.commit()
    return result


@router.get(
    "/customers/{customer_id}/consents",
    response_model=list[ConsentOut],
    summary="A profile's consent decisions",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, CustomerNotFound),
)
def get_consents(customer_id: CustomerId, actor: Anyone, uow: ReadUoW) -> list[ConsentOut]:
    return consent.consents(uow, actor, customer_id)


# --- bulk onboarding and the review queue -------------------------------------------------------

ImportId = Annotated[str, Path(max_length=64, pattern=r"^imp_[A-Za-z0-9]+$")]
ReviewId = Annotated[str, Path(max_length=64, pattern=r"^rev_[A-Za-z0-9]+$")]
Source = Annotated[str, Query(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:\-]+$")]


@router.post(
    "/customers/import",
    response_model=ImportReport,
    status_code=200,
    summary="Import customers from CSV or JSON Lines (admin)",
    tags=["customer data"],
    responses={
        202: {"model": ImportReport, "description": "More than 1,000 rows: queued; GET the report"},
        **problem_schema(
            Unauthorized, Forbidden, UnreadableImport, InvalidImportMapping, IdempotencyConflict
        ),
    },
)
def import_customers(
    body: Annotated[bytes, Body(media_type="text/csv", description="CSV, JSON Lines or multipart/form-data")],
    actor: Admin,
    uow: UoW,
    idem: IdempotencyKey,
    content_type: Annotated[str | None, Header()] = None,
    source: Source = "api",
    mapping: Annotated[
        str | None, Query(max_length=20_000, description="Column mapping (JSON) for CSV / JSON Lines bodies")
    ] = None,
) -> JSONResponse:
    """Send the file as `text/csv` or `application/x-ndjson`, or as `multipart/form-data` with a
    `file` part and an optional `mapping` part (JSON or YAML). Up to 1,000 rows the answer is
    200 with the report; above, 202 with the import id, and the report is read from
    `GET /customers/imports/{id}` once a worker ran it."""
    text, fmt, mapping_text = _import_payload(body, content_type, mapping)
    columns = importing.load_mapping(mapping_text) if mapping_text else importing.ColumnMapping()
    fingerprint = {"sha256": hashlib.sha256(body).hexdigest(), "source": source, "mapping": mapping_text}
    return idem.run(
        uow,
        fingerprint,
        lambda: importing.start_import(uow, actor, text=text, fmt=fmt, mapping=columns, source=source),
        status=200,
    )


def _import_payload(
    body: bytes, content_type: str | None, mapping: str | None
) -> tuple[str, str, str | None]:
    """(file text, format, mapping text) from the request body in any of its three forms."""
    media = (content_type or "").split(";")[0].strip().lower()
    name = None
    if media == "multipart/form-data":
        parts = _form_parts(body, content_type or "")
        if "file" not in parts:
            raise UnreadableImport("the multipart body needs a 'file' part")
        body, name, part_type = parts["file"]
        mapping = parts["mapping"][0].decode("utf-8", "replace") if "mapping" in parts else mapping
        media = part_type
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableImport("the file is not UTF-8 text") from exc
    return text, importing.format_of(name, media), mapping


def _form_parts(body: bytes, content_type: str) -> dict[str, tuple[bytes, str | None, str]]:
    """Parts of a multipart/form-data body by name: (content, file name, media type)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise UnreadableImport("not a multipart/form-data body")
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = (payload, part.get_filename(), part.get_content_type())
    return parts


@router.get(
    "/customers/imports/{import_id}",
    response_model=ImportReport,
    summary="An import's status and report (admin)",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, ImportNotFound),
)
def get_import(import_id: ImportId, actor: Admin, uow: ReadUoW) -> ImportReport:
    return importing.get_import(uow, actor, import_id)


@router.get(
    "/identity/reviews",
    response_model=Page[ReviewOut],
    summary="Pairs of profiles the matcher proposes for review",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, BadCursor),
)
def list_reviews(
    actor: CustomersRead,
    uow: ReadUoW,
    status: ReviewStatus | None = "pending",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[ReviewOut]:
    return reviews.list_reviews(uow, actor, status=status, cursor=cursor, limit=limit)


@router.post(
    "/identity/reviews/{review_id}/accept",
    response_model=ReviewOut,
    summary="Accept a proposal: merge the two profiles (admin, journaled)",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, ReviewNotFound, ReviewClosed, MergeRefused),
)
def accept_review(review_id: ReviewId, actor: Admin, uow: UoW) -> ReviewOut:
    result = reviews.accept(uow, actor, review_id)
    uow.commit()
    return result


@router.post(
    "/identity/reviews/{review_id}/reject",
    response_model=ReviewOut,
    summary="Reject a proposal: different people, never proposed again (admin)",
    tags=["customer data"],
    responses=problem_schema(Unauthorized, Forbidden, ReviewNotFound, ReviewClosed),
)
def reject_review(review_id: ReviewId, actor: Admin, uow: UoW) -> ReviewOut:
    result = reviews.reject(uow, actor, review_id)
    uow.commit()
    return result
