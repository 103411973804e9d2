"""Staff roles and the scopes each grants, as one table; the rules for a staff account.

Pure Python: no SQLAlchemy, FastAPI or I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound, Unauthorized


class Role(StrEnum):
    ADMIN = "admin"
    STORE_ASSOCIATE = "store_associate"
    SERVICE_AGENT = "service_agent"
    MARKETER = "marketer"
    ANALYST = "analyst"


# Read-only everywhere: every read scope there is, so a new context's read scope is included.
READ_SCOPES = frozenset(s for s in Scope if s.endswith(":read"))

# THE role table. Bindings narrow it further: a store associate is bound to one location, and
# every context's reach rule (platform.auth.reach) keeps them to that store's records.
ROLE_SCOPES: Mapping[Role, frozenset[str]] = {
    Role.ADMIN: frozenset({Scope.ADMIN}),
    # Their store only: stock, store sales and orders, carts at the till, pickups and curbside.
    Role.STORE_ASSOCIATE: frozenset(
        {
            Scope.CATALOG_READ,
            Scope.PRICES_READ,
            Scope.INVENTORY_READ,
            Scope.INVENTORY_WRITE,
            Scope.CARTS_READ,
            Scope.CARTS_WRITE,
            Scope.ORDERS_READ,
            Scope.ORDERS_WRITE,
            Scope.FULFILLMENT_READ,
            Scope.FULFILLMENT_WRITE,
        }
    ),
    # The call center: look a customer up, fix their profile, sell on their behalf, cancel and
    # refund, write to them and work their service cases; no stock or fulfillment changes, no
    # privacy requests.
    Role.SERVICE_AGENT: frozenset(
        {
            Scope.CATALOG_READ,
            Scope.PRICES_READ,
            Scope.INVENTORY_READ,
            Scope.CUSTOMERS_READ,
            Scope.CUSTOMERS_WRITE,
            Scope.CARTS_READ,
            Scope.CARTS_WRITE,
            Scope.ORDERS_READ,
            Scope.ORDERS_WRITE,
            Scope.FULFILLMENT_READ,
            Scope.ENGAGEMENT_READ,
            Scope.ENGAGEMENT_WRITE,
            Scope.CASES_READ,
            Scope.CASES_WRITE,
        }
    ),
    # Audiences: customers and their profiles (traits, event timeline) to read, segments to
    # build, messages to send (marketing ones only with the person's consent).
    Role.MARKETER: frozenset(
        {
            Scope.CATALOG_READ,
            Scope.PRICES_READ,
            Scope.CUSTOMERS_READ,
            Scope.SEGMENTS_READ,
            Scope.SEGMENTS_WRITE,
            Scope.ENGAGEMENT_READ,
            Scope.ENGAGEMENT_WRITE,
        }
    ),
    Role.ANALYST: READ_SCOPES,
}

# Roles whose holder works in one store and must be bound to it.
LOCATION_BOUND = frozenset({Role.STORE_ASSOCIATE})

MIN_PASSWORD_LENGTH = 12


def scopes_for(role: str) -> frozenset[str]:
    return ROLE_SCOPES[Role(role)]


def normalise_email(email: str) -> str:
    return email.strip().lower()


class StaffNotFound(NotFound):
    code = "staff-not-found"
    title = "Staff user not found"


class StaffExists(Conflict):
    code = "staff-exists"
    title = "A staff user with this e-mail exists"


class InvalidStaff(InvalidInput):
    code = "invalid-staff"
    title = "Invalid staff user"


class WeakPassword(InvalidInput):
    code = "weak-password"
    title = "Password too weak"


class InvalidStaffCredentials(Unauthorized):
    code = "invalid-credentials"
    title = "Invalid credentials"


class StaffChanged(Conflict):
    code = "staff-changed"
    title = "Staff user changed meanwhile"


class LastAdmin(Conflict):
    code = "last-admin"
    title = "The last active admin cannot be removed"


ROLE_NAMES = frozenset(r.value for r in Role)


def check_binding(role: Role, location: str | None, channel: str | None) -> None:
    """A store associate works in exactly one store (and rings sales up on its channel); other
    roles reach across stores and channels, so they are bound to neither."""
    if role in LOCATION_BOUND and not location:
        raise InvalidStaff(f"a {role.value} must be bound to a location (their store)")
    if role not in LOCATION_BOUND and (location or channel):
        raise InvalidStaff(f"a {role.value} is not bound to a location or channel; only store associates are")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a staff password needs at least {MIN_PASSWORD_LENGTH} characters")
