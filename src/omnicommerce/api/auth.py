"""Customer sign-up, sign-in and token refresh (no API key: the shopper's own credentials).

Sign-in composes customers and carts: an anonymous cart started before signing in is merged
into the customer's in the same transaction as the sign-in.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from omnicommerce.carts.service import merge_anonymous_cart
from omnicommerce.customers import service
from omnicommerce.customers.domain import (
    ContactRequired,
    CustomerExists,
    InvalidCredentials,
    InvalidEmail,
    InvalidPhone,
)
from omnicommerce.customers.schemas import OtpStart, OtpVerify, RefreshRequest, SignIn, SignUp, TokenPair
from omnicommerce.platform.channels import UnknownChannel
from omnicommerce.platform.errors import problem_schema
from omnicommerce.platform.refresh_tokens import InvalidRefreshToken, RefreshTokenReused
from omnicommerce.platform.web import AppSettings, Route, UoW

router = APIRouter(prefix="/auth", tags=["auth"], route_class=Route)


@router.post(
    "/sign-up",
    status_code=201,
    response_model=TokenPair,
    summary="Create an account and sign in",
    responses=problem_schema(UnknownChannel, CustomerExists, InvalidEmail, InvalidPhone, ContactRequired),
)
def sign_up(body: SignUp, uow: UoW, settings: AppSettings) -> TokenPair:
    tokens = service.sign_up(uow, cmd=body, settings=settings)
    uow.commit()
    return tokens


@router.post(
    "/sign-in",
    response_model=TokenPair,
    summary="Sign in with email or phone and password",
    responses=problem_schema(InvalidCredentials, UnknownChannel),
)
def sign_in(body: SignIn, uow: UoW, settings: AppSettings) -> TokenPair:
    tokens = service.sign_in(
        uow,
        identifier=body.identifier,
        password=body.password.get_secret_value(),
        channel=body.channel,
        settings=settings,
    )
    if body.cart_id is not None:
        merge_anonymous_cart(
            uow,
            anonymous_cart_id=body.cart_id,
            customer_id=tokens.customer_id,
            channel=body.channel,
            ttl_seconds=settings.reservation_ttl_seconds,
        )
    uow.commit()
    return tokens


@router.post(
    "/refresh",
    response_model=TokenPair,
    summary="Exchange a refresh token for new tokens",
    responses=problem_schema(InvalidRefreshToken, RefreshTokenReused),
)
def refresh(body: RefreshRequest, uow: UoW, settings: AppSettings) -> TokenPair:
    try:
        tokens = service.refresh(uow, refresh_token=body.refresh_token, settings=settings)
    except RefreshTokenReused:
        uow.commit()  # the family revocation must outlive the 401
        raise
    uow.commit()
    return tokens


@router.post(
    "/otp/start",
    status_code=202,
    response_class=Response,
    summary="Send a one-time sign-in code to an email",
    responses=problem_schema(UnknownChannel, InvalidEmail),
)
def otp_start(body: OtpStart, uow: UoW, settings: AppSettings) -> Response:
    # 202 whether or not the account exists: the answer must not reveal who has one.
    service.start_otp(uow, email=body.email, channel=body.channel, settings=settings)
    uow.commit()
    return Response(status_code=202)


@router.post(
    "/otp/verify",
    response_model=TokenPair,
    summary="Sign in with a one-time code",
    responses=problem_schema(service.OtpRejected),
)
def otp_verify(body: OtpVerify, uow: UoW, settings: AppSettings) -> TokenPair:
    try:
        tokens = service.verify_otp(
            uow, email=body.email, code=body.code, channel=body.channel, settings=settings
        )
    except service.OtpRejected:
        uow.commit()  # the spent attempt must count even though the answer is 401
        raise
    uow.commit()
    return tokens
