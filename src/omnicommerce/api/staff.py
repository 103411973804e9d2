"""Staff users of the console: sign-in, their own account, and administration (admin only).

Composes platform.staff with inventory (a store associate's location must exist).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response

from omnicommerce.inventory.domain import UnknownLocation
from omnicommerce.inventory.service import get_location
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.channels import UnknownChannel
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import Forbidden, problem_schema
from omnicommerce.platform.idempotency import IdempotencyConflict
from omnicommerce.platform.refresh_tokens import InvalidRefreshToken, RefreshTokenReused
from omnicommerce.platform.staff import service
from omnicommerce.platform.staff.domain import (
    InvalidStaff,
    InvalidStaffCredentials,
    LastAdmin,
    Role,
    StaffChanged,
    StaffExists,
    StaffNotFound,
    WeakPassword,
)
from omnicommerce.platform.staff.schemas import (
    Staff,
    StaffCreate,
    StaffRefresh,
    StaffSignIn,
    StaffTokens,
    StaffUpdate,
)
from omnicommerce.platform.web import (
    AppSettings,
    IdempotencyKey,
    Page,
    ReadUoW,
    Route,
    UoW,
    current_principal,
    require,
)

router = APIRouter(prefix="/staff", tags=["staff"], route_class=Route)
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
StaffId = Annotated[str, Path(max_length=40)]


class NotStaff(Forbidden):
    code = "not-staff"
    title = "Not a staff credential"


async def require_staff(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.kind != "staff":
        raise NotStaff("this endpoint answers for a staff token (oms_…) only")
    return principal


StaffUser = Annotated[Principal, Depends(require_staff)]


def check_location(uow: UnitOfWork, location: str | None) -> None:
    """A store associate's store must be a location the inventory knows."""
    if location is not None:
        get_location(uow, location)


@router.post(
    "/sign-in",
    response_model=StaffTokens,
    summary="Sign in as a staff user (e-mail and password)",
    responses=problem_schema(InvalidStaffCredentials),
)
def sign_in(body: StaffSignIn, uow: UoW, settings: AppSettings) -> StaffTokens:
    tokens = service.sign_in(
        uow, email=body.email, password=body.password.get_secret_value(), settings=settings
    )
    uow.commit()
    return tokens


@router.post(
    "/refresh",
    response_model=StaffTokens,
    summary="Exchange a staff refresh token for new tokens",
    responses=problem_schema(InvalidRefreshToken, RefreshTokenReused),
)
def refresh(body: StaffRefresh, uow: UoW, settings: AppSettings) -> StaffTokens:
    try:
        tokens = service.refresh(uow, refresh_token=body.refresh_token, settings=settings)
    except RefreshTokenReused:
        uow.commit()  # the family revocation must outlive the 401
        raise
    uow.commit()
    return tokens


@router.get(
    "/me", response_model=Staff, summary="The signed-in staff user", responses=problem_schema(NotStaff)
)
def me(actor: StaffUser, uow: ReadUoW) -> Staff:
    return service.get_staff(uow, actor.id)


@router.post(
    "",
    status_code=201,
    response_model=Staff,
    summary="Create a staff user",
    responses=problem_schema(
        StaffExists, InvalidStaff, WeakPassword, UnknownLocation, UnknownChannel, IdempotencyConflict
    ),
)
def create(body: StaffCreate, actor: Admin, uow: UoW, idem: IdempotencyKey) -> JSONResponse:
    def make() -> Staff:
        check_location(uow, body.location)
        return service.create_staff(uow, actor, body)

    return idem.run(uow, body, make)


@router.get("", response_model=Page[Staff], summary="List staff users")
def list_staff(
    _: Admin,
    uow: ReadUoW,
    role: Role | None = None,
    location: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[Staff]:
    return service.list_staff(uow, limit=limit, cursor=cursor, role=role, location=location)


@router.get(
    "/{staff_id}", response_model=Staff, summary="A staff user", responses=problem_schema(StaffNotFound)
)
def get(staff_id: StaffId, _: Admin, uow: ReadUoW) -> Staff:
    return service.get_staff(uow, staff_id)


@router.patch(
    "/{staff_id}",
    response_model=Staff,
    summary="Change a staff user's name, role, binding, password or status",
    responses=problem_schema(
        StaffNotFound, InvalidStaff, WeakPassword, LastAdmin, StaffChanged, UnknownLocation
    ),
)
def patch(staff_id: StaffId, body: StaffUpdate, actor: Admin, uow: UoW) -> Staff:
    check_location(uow, body.location)
    staff = service.update_staff(uow, actor, staff_id, body)
    uow.commit()
    return staff


@router.delete(
    "/{staff_id}",
    status_code=204,
    response_class=Response,
    summary="Disable a staff user (their sessions end at once)",
    responses=problem_schema(StaffNotFound, LastAdmin),
)
def disable(staff_id: StaffId, actor: Admin, uow: UoW) -> Response:
    service.disable_staff(uow, actor, staff_id)
    uow.commit()
    return Response(status_code=204)
