"""customers HTTP routes: the POS, the call center and back offices look up and manage shoppers;
a signed-in customer reads and changes its own profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from omnicommerce.customers import service
from omnicommerce.customers.domain import (
    ContactRequired,
    CustomerExists,
    CustomerNotFound,
    InvalidEmail,
    InvalidPhone,
)
from omnicommerce.customers.schemas import Customer, CustomerCreate, CustomerUpdate
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import ChannelMismatch, ChannelRequired, UnknownChannel
from omnicommerce.platform.errors import Forbidden, Unauthorized, problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.web import IdempotencyKey, Page, ReadUoW, UoW, require

router = APIRouter(tags=["customers"])

CustomersRead = Annotated[Principal, Depends(require(Scope.CUSTOMERS_READ))]
CustomersWrite = Annotated[Principal, Depends(require(Scope.CUSTOMERS_WRITE))]
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
def get_customer(customer_id: str, actor: Anyone, uow: ReadUoW) -> Customer:
    return service.get_customer(uow, actor, customer_id)


@router.patch(
    "/customers/{customer_id}",
    response_model=Customer,
    summary="Update a customer's profile",
    responses=problem_schema(
        Unauthorized, Forbidden, CustomerNotFound, CustomerExists, InvalidEmail, InvalidPhone
    ),
)
def update_customer(customer_id: str, body: CustomerUpdate, actor: Anyone, uow: UoW) -> Customer:
    customer = service.update_profile(uow, actor, customer_id, body)
    uow.commit()
    return customer
