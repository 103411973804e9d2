"""Customer rules: contact normalisation and the context's errors. No I/O, no SQL, no FastAPI."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import phonenumbers

from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound, Unauthorized

# Numbers typed without a country code are read as this region's (setting-free on purpose:
# changing it would silently change how stored numbers compare).
DEFAULT_PHONE_REGION = "US"

# Deliberately loose: the mailbox owner is the only real validator (OTP); we only reject what
# can never be an address, so normalisation stays predictable.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# NUL and the other C0/C1 control characters: no database column should hold them (PostgreSQL
# text cannot hold NUL at all) and no mailbox name contains one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
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
    if _CONTROL.search(email):
        raise InvalidEmail("an email address cannot contain control characters", field="email")
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


# --- identity graph rules (Segment Unify style), pure ------------------------------------------

# Identifier types, highest priority first by default. A profile is created only from an "anchor"
# (something that names a person); anonymous and device ids attach to a profile but never found one.
IdentifierType = Literal[
    "user_id",
    "email",
    "phone",
    "loyalty_id",
    "pos_customer",
    "marketplace_buyer",
    "device_id",
    "anonymous_id",
]
IDENTIFIER_TYPES: tuple[str, ...] = get_args(IdentifierType)
ANCHOR_TYPES = frozenset(IDENTIFIER_TYPES[:6])
MAX_IDENTIFIER_LENGTH = 200

DEFAULT_LIMITS = {
    "user_id": 1,
    "email": 1,  # a second address stays with its own profile: two adults on one tablet never merge
    "phone": 2,
    "loyalty_id": 1,
    "pos_customer": 3,
    "marketplace_buyer": 5,
    "device_id": 5,
    "anonymous_id": 1000,
}
DEFAULT_BLOCKED = {
    "email": ["test@test.com", "test@example.com", "noemail@noemail.com"],
    "phone": ["0000000000", "+10000000000", "1111111111", "+11111111111"],
}


class InvalidIdentityRules(InvalidInput):
    code = "invalid-identity-rules"
    title = "Invalid identity rules"


class MergeNotFound(NotFound):
    code = "merge-not-found"
    title = "No merge to undo"


@dataclass(frozen=True, slots=True)
class Identifier:
    type: str
    value: str


@dataclass(frozen=True, slots=True)
class IdentityRules:
    """The rules the graph obeys; stored as data and edited through the admin API."""

    priority: tuple[str, ...] = IDENTIFIER_TYPES
    limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    blocked: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {
            t: frozenset(_blocked_form(t, x) for x in v) for t, v in DEFAULT_BLOCKED.items()
        }
    )
    # Sources are API key ids or internal names ("orders"); trust decides who may merge profiles.
    sources: Mapping[str, str] = field(default_factory=dict)
    default_trust: str = "trusted"

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> IdentityRules:
        """Validate a stored or submitted rules document (unknown types and bad limits are refused)."""
        priority = tuple(doc.get("priority", IDENTIFIER_TYPES))
        if sorted(priority) != sorted(IDENTIFIER_TYPES):
            raise InvalidIdentityRules(
                f"priority must list each identifier type once: {', '.join(IDENTIFIER_TYPES)}",
                field="priority",
            )
        limits = {**DEFAULT_LIMITS, **dict(doc.get("limits", {}))}
        bad = [t for t, n in limits.items() if t not in IDENTIFIER_TYPES or not isinstance(n, int) or n < 1]
        if bad:
            raise InvalidIdentityRules(
                f"limits must be whole numbers >= 1 for known identifier types; bad: {', '.join(bad)}",
                field="limits",
            )
        blocked_doc = dict(doc.get("blocked", DEFAULT_BLOCKED))
        if any(t not in IDENTIFIER_TYPES for t in blocked_doc):
            raise InvalidIdentityRules("blocked lists values per known identifier type", field="blocked")
        blocked = {t: frozenset(_blocked_form(t, v) for v in values) for t, values in blocked_doc.items()}
        sources = dict(doc.get("sources", {}))
        default_trust = doc.get("default_trust", "trusted")
        if any(v not in TRUST_LEVELS for v in [*sources.values(), default_trust]):
            raise InvalidIdentityRules("trust levels are 'trusted' or 'untrusted'", field="sources")
        return cls(priority, limits, blocked, sources, default_trust)

    def to_document(self) -> dict[str, Any]:
        return {
            "priority": list(self.priority),
            "limits": dict(self.limits),
            "blocked": {t: sorted(v) for t, v in self.blocked.items()},
            "sources": dict(self.sources),
            "default_trust": self.default_trust,
        }

    def rank(self, identifier_type: str) -> int:
        return self.priority.index(identifier_type)

    def is_blocked(self, ident: Identifier) -> bool:
        return _blocked_form(ident.type, ident.value) in self.blocked.get(ident.type, frozenset())

    def may_merge(self, source: str) -> bool:
        return self.sources.get(source, self.default_trust) == "trusted"

    def fits(self, counts: Mapping[str, int], extra: Mapping[str, int]) -> bool:
        """Whether a profile with ``counts`` identifiers per type may take ``extra`` more."""
        return all(counts.get(t, 0) + n <= self.limits.get(t, 1) for t, n in extra.items() if n)


TRUST_LEVELS = ("trusted", "untrusted")


def _blocked_form(identifier_type: str, value: str) -> str:
    """Blocked values compare on the normalised form; phones on their digits only."""
    if identifier_type == "phone":
        return re.sub(r"\D", "", value)
    return value.strip().lower()


def normalize_identifier(identifier_type: str, raw: Any) -> Identifier:
    """One identifier in canonical form; raises InvalidInput for a value that can never match."""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise InvalidInput(f"{identifier_type} must be a string", field=identifier_type)
    text = str(raw).strip()
    if "\x00" in text:
        raise InvalidInput(f"{identifier_type} contains a NUL character", field=identifier_type)
    if identifier_type == "email":
        return Identifier("email", normalize_email(text))
    if identifier_type == "phone":
        return Identifier("phone", normalize_phone(text))
    if not text or len(text) > MAX_IDENTIFIER_LENGTH:
        raise InvalidInput(
            f"{identifier_type} must be 1 to {MAX_IDENTIFIER_LENGTH} characters", field=identifier_type
        )
    return Identifier(identifier_type, text)


def survivor_order(rules: IdentityRules, matches: Mapping[str, Sequence[Identifier]]) -> list[str]:
    """Profiles matched by an event, the one matched by the highest-priority identifier first
    (ties: the older profile, by its sortable id)."""
    return sorted(matches, key=lambda cid: (min(rules.rank(i.type) for i in matches[cid]), cid))


# --- consent -------------------------------------------------------------------------------------

CONSENT_PURPOSES = ("marketing", "personalization", "sale_of_data", "analytics")
CONSENT_CHANNELS = ("email", "sms", "push", "web", "app", "pos", "call_center", "any")
ANY_CHANNEL = "any"


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    purpose: str
    channel: str
    granted: bool
    recorded_at: Any  # datetime; the person's decision time orders decisions, not arrival


def consent_given(decisions: Iterable[ConsentDecision], purpose: str, channel: str) -> bool:
    """Opt-in: True only when the latest decision covering (purpose, channel) — made for that
    channel or for ``any`` channel — granted it. No decision means no consent."""
    covering = [d for d in decisions if d.purpose == purpose and d.channel in (channel, ANY_CHANNEL)]
    if not covering:
        return False
    return max(covering, key=lambda d: (d.recorded_at, d.channel != ANY_CHANNEL)).granted


def latest_decisions(decisions: Iterable[ConsentDecision]) -> list[ConsentDecision]:
    """One decision per (purpose, channel): the latest, across every account of a merged profile."""
    latest: dict[tuple[str, str], ConsentDecision] = {}
    for d in decisions:
        key = (d.purpose, d.channel)
        if key not in latest or d.recorded_at > latest[key].recorded_at:
            latest[key] = d
    return sorted(latest.values(), key=lambda d: (d.purpose, d.channel))
