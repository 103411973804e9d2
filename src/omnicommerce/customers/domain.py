"""Customer rules: contact normalisation and the context's errors. No I/O, no SQL, no FastAPI."""

from __future__ import annotations

import re

import phonenumbers

from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound, Unauthorized

# Numbers typed without a country code are read as this region's (setting-free on purpose:
# changing it would silently change how stored numbers compare).
DEFAULT_PHONE_REGION = "US"

# Deliberately loose: the mailbox owner is the only real validator (OTP); we only reject what
# can never be an address, so normalisation stays predictable.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MAX_EMAIL_LENGTH = 254


class CustomerNotFound(NotFound):
    code = "customer-not-found"
    title = "Customer not found"


class CustomerExists(Conflict):
    code = "customer-exists"
    title = "Customer already exists"


class InvalidCredentials(Unauthorized):
    code = "invalid-credentials"
    title = "Invalid credentials"


class InvalidRefreshToken(Unauthorized):
    code = "invalid-refresh-token"
    title = "Invalid refresh token"


class RefreshTokenReused(InvalidRefreshToken):
    """A revoked refresh token came back: someone holds a copy, so the whole family dies."""


class InvalidEmail(InvalidInput):
    code = "invalid-email"
    title = "Invalid email address"


class InvalidPhone(InvalidInput):
    code = "invalid-phone"
    title = "Invalid phone number"


class ContactRequired(InvalidInput):
    code = "contact-required"
    title = "Email or phone required"


def normalize_email(raw: str) -> str:
    """Trimmed and lower-cased: one mailbox, one customer, however it was typed."""
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidEmail("not a valid email address (expected name@domain.tld)", field="email")
    return email


def normalize_phone(raw: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """E.164 (``+14155550123``); numbers without ``+`` are read as ``region``'s."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(
            "not a phone number; use international format such as +14155550123", field="phone"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            "not a valid phone number for its country; use international format such as +14155550123",
            field="phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_contact(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    """Both normalised; at least one is required to find the customer again."""
    norm_email = normalize_email(email) if email is not None else None
    norm_phone = normalize_phone(phone) if phone is not None else None
    if norm_email is None and norm_phone is None:
        raise ContactRequired("a customer needs an email address or a phone number")
    return norm_email, norm_phone


def parse_identifier(identifier: str) -> tuple[str, str] | None:
    """``("email", …)`` or ``("phone", …)`` for a sign-in identifier; None if it is neither."""
    try:
        if "@" in identifier:
            return "email", normalize_email(identifier)
        return "phone", normalize_phone(identifier)
    except InvalidInput:
        return None
