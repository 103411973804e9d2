"""Customer use cases. Other contexts and the API call only these; none of them commits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from omnicommerce.customers import repository as repo
from omnicommerce.customers.domain import (
    CustomerExists,
    CustomerNotFound,
    InvalidCredentials,
    normalize_contact,
    normalize_email,
    normalize_phone,
    parse_identifier,
)
from omnicommerce.customers.events import (
    CustomerCreated,
    CustomerOtpRequested,
    CustomerSignedIn,
    CustomerUpdated,
)
from omnicommerce.customers.privacy.service import check_not_suppressed
from omnicommerce.customers.schemas import Customer, CustomerCreate, CustomerUpdate, SignUp, TokenPair
from omnicommerce.platform import clock
from omnicommerce.platform.auth import SYSTEM, Principal, Scope, issue_access_token
from omnicommerce.platform.channels import get_channel, resolve_channel
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.errors import InvalidInput
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.passwords import hash_password, needs_rehash, verify_password
from omnicommerce.platform.refresh_tokens import Spent
from omnicommerce.platform.web import Page, decode_cursor, page_of

SYSTEM_CREATOR = "system"


# --- reading -----------------------------------------------------------------------------------


def get_customer(uow: UnitOfWork, actor: Principal, customer_id: str) -> Customer:
    """A customer reads only its own profile (anyone else is 404, not 403); API keys need
    customers:read. A customer whose account was merged into another profile is that profile
    now (the person is one customer): its token reads the survivor, whichever of the profile's
    accounts it names."""
    check_reach(actor, customer_id, Scope.CUSTOMERS_READ, uow=uow)
    row = repo.get(uow.conn, customer_id)
    if row is not None and actor.is_customer and row.merged_into is not None:
        row = repo.get(uow.conn, row.merged_into)
    if row is None:
        raise CustomerNotFound(f"no customer {customer_id!r}")
    return _to_customer(row)


def profile_accounts(uow: UnitOfWork, customer_id: str) -> list[str]:
    """Every account of the profile ``customer_id`` belongs to now — its root first, then the
    accounts merged into it — for contexts that keep records per account (orders, carts) and
    want the whole person's; ``[]`` for an unknown id. No reach check: the caller's own."""
    roots = repo.roots_of(uow.conn, [customer_id])
    if customer_id not in roots:
        return []
    root = roots[customer_id]
    return [root, *sorted(repo.merged_members(uow.conn, root))]


def search_customers(
    uow: UnitOfWork,
    actor: Principal,
    *,
    email: str | None = None,
    phone: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Customer]:
    """For the POS and the call center to find a shopper by exact contact or name/email prefix."""
    actor.require(Scope.CUSTOMERS_READ)
    rows = repo.search(
        uow.conn,
        email=normalize_email(email) if email else None,
        phone=normalize_phone(phone) if phone else None,
        q=q,
        after=decode_cursor(cursor),
        limit=limit,
    )
    return page_of([_to_customer(r) for r in rows], limit, lambda c: c.id)


# --- creating ------------------------------------------------------------------------------------


def create_customer(uow: UnitOfWork, actor: Principal, cmd: CustomerCreate) -> Customer:
    """From any channel: web/app with a password, POS associate or call center without."""
    actor.require(Scope.CUSTOMERS_WRITE)
    channel = resolve_channel(actor.channel, cmd.channel)
    get_channel(uow.conn, channel)
    password = cmd.password.get_secret_value() if cmd.password is not None else None
    return _create(
        uow,
        email=cmd.email,
        phone=cmd.phone,
        first_name=cmd.first_name,
        last_name=cmd.last_name,
        password=password,
        channel=channel,
        created_by=actor.id,
    )


def sign_up(uow: UnitOfWork, *, cmd: SignUp, settings: Settings) -> TokenPair:
    """A shopper creates their own account with a password and is signed in at once."""
    get_channel(uow.conn, cmd.channel)
    customer = _create(
        uow,
        email=cmd.email,
        phone=cmd.phone,
        first_name=cmd.first_name,
        last_name=cmd.last_name,
        password=cmd.password.get_secret_value(),
        channel=cmd.channel,
        created_by=None,
    )
    return _issue_tokens(uow, customer.id, cmd.channel, settings)


def find_or_create_by_email(uow: UnitOfWork, *, email: str, channel: str) -> str:
    """The customer id for an email, creating a password-less account if needed (guest checkout).

    One ``INSERT … ON CONFLICT (email) DO NOTHING RETURNING id`` on the unique (normalised) email;
    only when it inserted nothing is the existing row read. Safe under concurrency without a
    savepoint: the unique index decides, the loser's INSERT is a no-op (on PostgreSQL it waits
    for the winner's transaction and then reads its row), and the caller's transaction survives.
    """
    norm = normalize_email(email)
    values = new_customer_row(
        email=norm,
        phone=None,
        first_name=None,
        last_name=None,
        password_hash=None,
        channel=channel,
        created_by=SYSTEM_CREATOR,
    )
    for _ in range(3):
        created = repo.insert_customer_unless_email_taken(uow.conn, values)
        if created is not None:
            uow.emit(CustomerCreated(customer_id=created, channel=channel))
            return created
        existing = repo.id_by_email(uow.conn, norm)
        if existing is not None:
            return existing
        # the row that conflicted lost the email between the two statements (erased, changed)
    raise CustomerExists(f"the customer for {norm!r} keeps changing; try again", fields=["email"])


def import_customers(
    uow: UnitOfWork,
    rows: Iterable[Mapping[str, Any]],
    *,
    password_hash: str | None = None,
    channel: str = "web",
) -> int:
    """Bulk load (demo data, migrations from another platform): multi-row INSERTs, no per-row argon2.

    Each row has ``email`` and/or ``phone`` and optional ``first_name``, ``last_name``, ``channel``.
    ``password_hash`` (computed once with ``passwords.hash_password``) is shared by every row.
    """
    values = []
    for row in rows:
        email, phone = normalize_contact(row.get("email"), row.get("phone"))
        values.append(
            new_customer_row(
                email=email,
                phone=phone,
                first_name=row.get("first_name"),
                last_name=row.get("last_name"),
                password_hash=password_hash,
                channel=row.get("channel") or channel,
                created_by=SYSTEM_CREATOR,
            )
        )
    if not values:
        return 0
    try:
        with uow.conn.begin_nested():
            repo.insert_customers(uow.conn, values)
    except IntegrityError as exc:
        raise CustomerExists("an imported email or phone already belongs to a customer (or repeats)") from exc
    for v in values:
        uow.emit(CustomerCreated(customer_id=v["id"], channel=v["created_channel"]))
    return len(values)


def _create(
    uow: UnitOfWork,
    *,
    email: str | None,
    phone: str | None,
    first_name: str | None,
    last_name: str | None,
    password: str | None,
    channel: str,
    created_by: str | None,
) -> Customer:
    norm_email, norm_phone = normalize_contact(email, phone)
    check_not_suppressed(uow, email=norm_email, phone=norm_phone)  # an erased person stays erased
    values = new_customer_row(
        email=norm_email,
        phone=norm_phone,
        first_name=first_name,
        last_name=last_name,
        password_hash=hash_password(password) if password is not None else None,
        channel=channel,
        created_by=created_by,
    )
    try:
        with uow.conn.begin_nested():
            repo.insert_customer(uow.conn, values)
    except IntegrityError as exc:
        raise _exists(uow, norm_email, norm_phone, exclude=None) from exc
    uow.emit(CustomerCreated(customer_id=values["id"], channel=channel))
    return Customer(
        id=values["id"],
        email=norm_email,
        phone=norm_phone,
        first_name=first_name,
        last_name=last_name,
        created_channel=channel,
        created_at=values["created_at"],
        has_password=password is not None,
        version=1,
    )


def new_customer_row(
    *,
    email: str | None,
    phone: str | None,
    channel: str,
    created_by: str | None,
    first_name: str | None = None,
    last_name: str | None = None,
    password_hash: str | None = None,
) -> dict[str, Any]:
    """The values of a new ``customers`` row (also the identity graph's new profiles)."""
    customer_id = new_id("cus")
    now = clock.now()
    return {
        "id": customer_id,
        "email": email,
        "phone": phone,
        "first_name": first_name,
        "last_name": last_name,
        "password_hash": password_hash,
        "created_channel": channel,
        "created_by": created_by or customer_id,  # self sign-up: the customer created itself
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def _exists(uow: UnitOfWork, email: str | None, phone: str | None, *, exclude: str | None) -> CustomerExists:
    fields = repo.which_taken(uow.conn, email, phone, exclude=exclude) or ["email", "phone"]
    # Names the field, never the value or the other customer's id.
    return CustomerExists(f"a customer with this {' and '.join(fields)} already exists", fields=fields)


# --- changing ------------------------------------------------------------------------------------


def update_profile(uow: UnitOfWork, actor: Principal, customer_id: str, cmd: CustomerUpdate) -> Customer:
    """A customer changes only its own profile; API keys need customers:write."""
    check_reach(actor, customer_id, Scope.CUSTOMERS_WRITE, uow=uow)
    changes: dict[str, Any] = cmd.model_dump(exclude_none=True)
    if "email" in changes:
        changes["email"] = normalize_email(changes["email"])
    if "phone" in changes:
        changes["phone"] = normalize_phone(changes["phone"])
    if changes:
        try:
            with uow.conn.begin_nested():
                found = repo.update_customer(uow.conn, customer_id, {**changes, "updated_at": clock.now()})
        except IntegrityError as exc:
            raise _exists(uow, changes.get("email"), changes.get("phone"), exclude=customer_id) from exc
        if not found:
            raise CustomerNotFound(f"no customer {customer_id!r}")
        uow.emit(CustomerUpdated(customer_id=customer_id, channel=actor.channel, changed=sorted(changes)))
    row = repo.get(uow.conn, customer_id)
    if row is None:
        raise CustomerNotFound(f"no customer {customer_id!r}")
    return _to_customer(row)


# --- signing in ----------------------------------------------------------------------------------


def sign_in(
    uow: UnitOfWork, *, identifier: str, password: str, channel: str, settings: Settings
) -> TokenPair:
    """Email or phone plus password. Unknown account, no password set, or wrong password all give
    the same 401 after the same argon2 work, so the answer says nothing about who has an account."""
    get_channel(uow.conn, channel)
    parsed = parse_identifier(identifier)
    row = repo.credentials(uow.conn, *parsed) if parsed is not None else None
    stored = row.password_hash if row is not None else None
    if not verify_password(stored, password) or row is None or stored is None:
        raise InvalidCredentials("invalid credentials")
    if needs_rehash(stored):  # parameters were raised since this hash was made
        repo.set_password_hash(uow.conn, row.id, hash_password(password))
    uow.emit(CustomerSignedIn(customer_id=row.id, channel=channel))
    return _issue_tokens(uow, row.id, channel, settings)


def refresh(uow: UnitOfWork, *, refresh_token: str, settings: Settings) -> TokenPair:
    """Rotate (see :mod:`omnicommerce.platform.refresh_tokens`). On :class:`RefreshTokenReused`
    the caller must commit before re-raising it, or the family's revocation is lost."""
    spent = repo.REFRESH_TOKENS.spend(uow.conn, refresh_token)
    return _issue_tokens(uow, spent.token.customer_id, spent.token.channel, settings, after=spent)


def _issue_tokens(
    uow: UnitOfWork, customer_id: str, channel: str, settings: Settings, *, after: Spent | None = None
) -> TokenPair:
    raw = repo.REFRESH_TOKENS.issue(
        uow.conn,
        owner={"customer_id": customer_id, "channel": channel},
        ttl_seconds=settings.refresh_token_ttl_seconds,
        after=after,
    )
    access = issue_access_token(
        settings.secret_key,
        customer_id=customer_id,
        channel=channel,
        ttl_seconds=settings.access_token_ttl_seconds,
    )
    return TokenPair(
        access_token=access,
        refresh_token=raw,
        expires_in=settings.access_token_ttl_seconds,
        customer_id=customer_id,
    )


# --- one-time codes (passwordless) --------------------------------------------------------------

OTP_TTL_SECONDS = 600
OTP_MAX_ATTEMPTS = 5


class OtpRejected(InvalidCredentials):
    """Wrong, expired or exhausted code. The attempt count must survive: commit, then re-raise."""

    code = "invalid-otp"
    title = "Invalid or expired code"


@dataclass(frozen=True, slots=True)
class OtpStarted:
    customer_id: str | None  # None when no account has this email (the API answers 202 regardless)
    code: str | None  # for the delivery service only; never in events, logs or HTTP responses


def start_otp(uow: UnitOfWork, *, email: str, channel: str, settings: Settings) -> OtpStarted:
    """Issue a 6-digit code for an existing account; emits ``customer.otp_requested`` (ids only)."""
    get_channel(uow.conn, channel)
    customer_id = repo.id_by_email(uow.conn, normalize_email(email))
    if customer_id is None:
        return OtpStarted(None, None)
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = clock.now()
    otp_id = new_id("otp")
    repo.insert_otp(
        uow.conn,
        {
            "id": otp_id,
            "customer_id": customer_id,
            "code_hash": _otp_hash(settings, otp_id, code),
            "channel": channel,
            "created_at": now,
            "expires_at": now + timedelta(seconds=OTP_TTL_SECONDS),
            "attempts": 0,
        },
    )
    uow.emit(CustomerOtpRequested(customer_id=customer_id, channel=channel))
    return OtpStarted(customer_id, code)


def verify_otp(uow: UnitOfWork, *, email: str, code: str, channel: str, settings: Settings) -> TokenPair:
    """The latest live code for the email and channel; five tries, then it is dead."""
    now = clock.now()
    try:
        customer_id = repo.id_by_email(uow.conn, normalize_email(email))
    except InvalidInput:
        customer_id = None
    otp = repo.latest_otp(uow.conn, customer_id, channel, now=now) if customer_id else None
    if otp is None or not repo.count_otp_attempt(uow.conn, otp.id, max_attempts=OTP_MAX_ATTEMPTS):
        raise OtpRejected("invalid or expired code; request a new one")
    matches = hmac.compare_digest(otp.code_hash, _otp_hash(settings, otp.id, code))
    if not matches or not repo.consume_otp(uow.conn, otp.id, now=now):
        raise OtpRejected("invalid or expired code; request a new one")
    assert customer_id is not None
    uow.emit(CustomerSignedIn(customer_id=customer_id, channel=channel, method="otp"))
    return _issue_tokens(uow, customer_id, channel, settings)


# --- helpers -------------------------------------------------------------------------------------


def person_accounts(uow: UnitOfWork, actor: Principal, customer_id: str) -> tuple[list[str], Principal]:
    """The accounts of the person ``customer_id`` is (:func:`profile_accounts`), and the principal
    to read their records with: for a customer who is one of those accounts, :data:`SYSTEM` (the
    person's records, whichever account holds them); for anyone else, the caller (its own reach
    still applies). A customer who is not that person: ``CustomerNotFound`` (404)."""
    accounts = profile_accounts(uow, customer_id) or [customer_id]
    if not actor.is_customer:
        return accounts, actor
    if actor.customer_id not in accounts:
        raise CustomerNotFound(f"no customer {customer_id!r}")
    return accounts, SYSTEM


def check_reach(actor: Principal, customer_id: str, scope: str, *, uow: UnitOfWork | None = None) -> None:
    """A customer reaches only itself (anyone else is 404, not 403); API keys need ``scope``.

    Given ``uow``, "itself" is its profile: every account of the profile its own account belongs
    to now — a token of an account merged into R reaches R (and R's token the accounts merged
    into it). An unmerge separates them again at once. Without ``uow``, only its own account."""
    if actor.is_customer:
        if actor.customer_id != customer_id and not (
            uow is not None
            and actor.customer_id is not None
            and _same_profile(uow, actor.customer_id, customer_id)
        ):
            raise CustomerNotFound(f"no customer {customer_id!r}")
        return
    actor.require(scope)


def _same_profile(uow: UnitOfWork, account: str, customer_id: str) -> bool:
    roots = repo.roots_of(uow.conn, [account, customer_id])
    return account in roots and roots.get(customer_id) == roots[account]


def _to_customer(row: repo.AnyRow) -> Customer:
    return Customer(
        id=row.id,
        email=row.email,
        phone=row.phone,
        first_name=row.first_name,
        last_name=row.last_name,
        created_channel=row.created_channel,
        created_at=row.created_at,
        has_password=bool(row.has_password),
        version=row.version,
    )


def _otp_hash(settings: Settings, otp_id: str, code: str) -> str:
    # Keyed: a bare sha256 of 6 digits is reversed by trying a million values; without the
    # secret key a leaked table gives nothing, and online guessing is capped by the attempt limit.
    return hmac.new(settings.secret_key.encode(), f"{otp_id}:{code}".encode(), hashlib.sha256).hexdigest()
