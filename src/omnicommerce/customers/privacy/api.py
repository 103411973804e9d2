"""Privacy request routes (GDPR / CCPA), for an unbound admin key with ``privacy:write``:
export everything about a person, erase it, and read the journal of requests about a profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from omnicommerce.customers.privacy import service
from omnicommerce.customers.privacy.domain import SubjectNotFound
from omnicommerce.customers.privacy.schemas import (
    ErasureResult,
    PrivacyExport,
    PrivacyRequestIn,
    PrivacyRequestOut,
)
from omnicommerce.customers.schemas import ConsentOut
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.errors import Forbidden, Unauthorized, problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import IdempotencyKey, ReadUoW, Route, UoW, model_json, require

router = APIRouter(prefix="/privacy", tags=["privacy"], route_class=Route)

PrivacyWrite = Annotated[Principal, Depends(require(Scope.PRIVACY_WRITE))]
CustomerId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


@router.post(
    "/export",
    response_model=PrivacyExport,
    summary="Export everything held about a person (GDPR right of access, CCPA right to know)",
    responses=problem_schema(Unauthorized, Forbidden, SubjectNotFound),
)
def export(body: PrivacyRequestIn, actor: PrivacyWrite, uow: UoW) -> JSONResponse:
    """Profiles, identities, consent, traits, merges, events, carts, orders, fulfillment and the
    webhook deliveries about them, as stored. Journaled; not replayed by Idempotency-Key (the
    answer is personal data and is never stored)."""
    result = service.export_person(uow, actor, body)
    uow.commit()
    return model_json(result)


@router.post(
    "/erasure",
    status_code=201,
    response_model=ErasureResult,
    summary="Erase a person's personal data everywhere (GDPR right to erasure, CCPA deletion)",
    responses=problem_schema(Unauthorized, Forbidden, SubjectNotFound, IdempotencyConflict),
)
def erase(body: PrivacyRequestIn, actor: PrivacyWrite, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    """Removes or irreversibly anonymises their data in every context (orders keep amounts, SKUs
    and dates), suppresses their identifiers so the next event or sign-up cannot re-create them,
    journals the request and emits `privacy.erasure_completed`."""
    return idem.run(uow, body, lambda: service.erase_person(uow, actor, body))


@router.post(
    "/do-not-sell",
    response_model=list[ConsentOut],
    summary="Record a CCPA do-not-sell-or-share request (denies the sale_of_data purpose)",
    responses=problem_schema(Unauthorized, Forbidden, SubjectNotFound),
)
def do_not_sell(body: PrivacyRequestIn, actor: PrivacyWrite, uow: UoW) -> list[ConsentOut]:
    """For requests received outside the shop (a form, an email): the person's `sale_of_data`
    consent is denied on every channel and the request journaled. Signed-in shoppers can do the
    same through `PUT /customers/{id}/consents`."""
    decisions = service.opt_out_of_sale(uow, actor, body)
    uow.commit()
    return decisions


@router.get(
    "/requests/{customer_id}",
    response_model=list[PrivacyRequestOut],
    summary="The journal of privacy requests about a profile (who, when, what — never the data)",
    responses=problem_schema(Unauthorized, Forbidden),
)
def requests(customer_id: CustomerId, actor: PrivacyWrite, uow: ReadUoW) -> list[PrivacyRequestOut]:
    return service.requests_for(uow, actor, customer_id)
