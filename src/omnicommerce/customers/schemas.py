"""Pydantic I/O for customers and customer sign-in. Passwords are SecretStr so they never show in
reprs or logs; no schema ever carries a password hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr

from omnicommerce.customers.domain import IdentifierType

Password = Annotated[SecretStr, Field(min_length=8, max_length=256, description="8 to 256 characters")]
Email = Annotated[str, Field(max_length=320, examples=["ada@example.com"])]
Phone = Annotated[
    str,
    Field(
        max_length=40,
        examples=["+14155550123"],
        description="E.164 preferred; national numbers are read as US",
    ),
]
Name = Annotated[str, Field(max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Customer(BaseModel):
    id: str = Field(examples=["cus_01J9Z3ABCDEFGHJKMNPQRSTVWX"])
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    created_channel: str
    created_at: datetime
    has_password: bool = Field(description="False for accounts made at the POS or by the call center")
    version: int


class CustomerCreate(_Strict):
    """At least one of email and phone. POS and call center create accounts without a password."""

    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    password: Password | None = None
    channel: str | None = Field(default=None, description="Required unless the API key is bound to one")


class CustomerUpdate(_Strict):
    """Only the fields given change."""

    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None


class SignUp(_Strict):
    email: Email | None = None
    phone: Phone | None = None
    password: Password
    first_name: Name | None = None
    last_name: Name | None = None
    channel: str = Field(examples=["web"])


class SignIn(_Strict):
    identifier: str = Field(min_length=1, max_length=320, description="Email or phone number")
    password: SecretStr = Field(max_length=256)
    channel: str = Field(examples=["web"])
    cart_id: str | None = Field(default=None, description="An anonymous cart to merge into the customer's")


class RefreshRequest(_Strict):
    refresh_token: str = Field(min_length=1, max_length=200)


class OtpStart(_Strict):
    email: Email
    channel: str = Field(examples=["web"])


class OtpVerify(_Strict):
    email: Email
    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")
    channel: str = Field(examples=["web"])


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str = Field(description="Single use: each refresh returns a new one")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Access token lifetime in seconds")
    customer_id: str


# --- customer data platform ----------------------------------------------------------------------

EventType = Literal["track", "identify", "page", "screen", "alias", "group"]
# No NUL characters: PostgreSQL text cannot hold them, and no real id contains one.
ShortText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]


class EventIn(BaseModel):
    """One event, in the Segment spec's shape (camelCase) plus two extensions of our own:
    ``identifiers`` (type → value, e.g. a loyalty id or POS customer number) and ``channel``.
    Unknown top-level fields (``integrations``, ``version`` …) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: EventType
    message_id: ShortText | None = Field(
        default=None, alias="messageId", description="De-duplication key; one is generated when absent"
    )
    timestamp: datetime | None = Field(default=None, description="When it happened (ISO 8601)")
    sent_at: datetime | None = Field(
        default=None, alias="sentAt", description="When the device sent it: corrects device clock skew"
    )
    anonymous_id: ShortText | None = Field(default=None, alias="anonymousId")
    user_id: ShortText | None = Field(default=None, alias="userId")
    event: ShortText | None = Field(default=None, description="track: the event name")
    name: ShortText | None = Field(default=None, description="page / screen: its name")
    previous_id: ShortText | None = Field(default=None, alias="previousId", description="alias: the old id")
    group_id: ShortText | None = Field(default=None, alias="groupId")
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    identifiers: dict[IdentifierType, str | int] = Field(default_factory=dict)
    channel: Annotated[str, Field(max_length=40, pattern=r"^[^\x00]*$")] | None = None


class EventBatchIn(BaseModel):
    """``POST /api/v1/events`` and Segment's ``/v1/batch``: up to 1,000 events."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    batch: list[Any] = Field(
        validation_alias=AliasChoices("batch", "events"), description="Events; each is validated on its own"
    )
    sent_at: datetime | None = Field(default=None, alias="sentAt")
    context: dict[str, Any] = Field(default_factory=dict, description="Merged into each event's context")


class EventResult(BaseModel):
    index: int
    message_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    customer_id: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class IngestResult(BaseModel):
    success: bool = Field(description="Segment-compatible: true when the request was processed")
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class IdentityRulesDoc(BaseModel):
    """The identity resolution rules; every field is optional on PUT (defaults fill the rest)."""

    priority: list[IdentifierType] | None = None
    limits: dict[IdentifierType, int] | None = None
    blocked: dict[IdentifierType, list[str]] | None = None
    sources: dict[str, Literal["trusted", "untrusted"]] | None = None
    default_trust: Literal["trusted", "untrusted"] | None = None


class IdentityRulesOut(BaseModel):
    priority: list[str]
    limits: dict[str, int]
    blocked: dict[str, list[str]]
    sources: dict[str, str]
    default_trust: str
    version: int


class IdentityOut(BaseModel):
    type: str
    value: str
    source: str
    origin_customer_id: str
    created_at: datetime


class MergeOut(BaseModel):
    id: str
    survivor_id: str
    merged_id: str
    source: str
    evidence: dict[str, Any]
    created_at: datetime
    undone_at: datetime | None


class UnmergeResult(BaseModel):
    customer_id: str = Field(description="The profile split back out")
    survivor_id: str = Field(description="The profile it had been merged into")
    merge_id: str
    identities_moved: int
    events_moved: int
    profiles_moved: int = Field(description="Profiles merged into this one earlier, which follow it")


class TimelineEvent(BaseModel):
    id: str
    message_id: str
    type: str
    name: str | None
    channel: str | None
    source: str
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any]
    traits: dict[str, Any]


ConsentPurpose = Literal["marketing", "personalization", "sale_of_data", "analytics"]
ConsentChannel = Literal["email", "sms", "push", "web", "app", "pos", "call_center", "any"]


class ConsentIn(BaseModel):
    purpose: ConsentPurpose
    channel: ConsentChannel = Field(description="`any` covers every channel not decided on its own")
    granted: bool
    recorded_at: datetime | None = Field(
        default=None, description="When the person decided (default: now); an older decision never overrides"
    )


class ConsentsUpdate(_Strict):
    consents: list[ConsentIn] = Field(min_length=1, max_length=50)
    source: str = Field(
        default="api",
        min_length=1,
        max_length=80,
        pattern=r"^[^\x00]+$",
        examples=["web-preference-center", "pos"],
    )


class ConsentOut(BaseModel):
    purpose: str
    channel: str
    granted: bool
    source: str
    recorded_at: datetime
    customer_id: str = Field(description="The account that made the decision")


class ProfileSegment(BaseModel):
    id: str
    name: str
    added_at: datetime


class Profile(BaseModel):
    customer: Customer
    merged_from: list[str] = Field(description="Profiles merged into this one")
    identities: list[IdentityOut]
    traits: dict[str, Any] = Field(description="Computed traits: first/last seen, channels, orders, LTV")
    custom_traits: dict[str, Any] = Field(
        default_factory=dict,
        description="What identify calls and imports said about the person: per name, the value "
        "of the latest event (by event time), over every account of the profile",
    )
    consents: list[ConsentOut]
    segments: list[ProfileSegment] = Field(description="Segments the profile is a member of now")
    timeline: list[TimelineEvent]
    next_cursor: str | None = None


# --- bulk onboarding and the review queue -------------------------------------------------------


class RowProblem(BaseModel):
    row: int = Field(description="1-based record number in the file (0: the import as a whole)")
    reasons: list[str]


class ImportReport(BaseModel):
    id: str = Field(examples=["imp_01J9Z3ABCDEFGHJKMNPQRSTVWX"])
    status: Literal["queued", "running", "done", "failed"]
    source: str
    rows: int = Field(description="Records read from the file")
    created: int = Field(0, description="Profiles created")
    updated: int = Field(0, description="Rows that found an existing profile by an identifier")
    merged_deterministic: int = Field(
        0,
        description="Rows folded into a profile by a shared identifier: a duplicate in the file, or "
        "two profiles joined",
    )
    merged_probabilistic: int = Field(0, description="Profiles merged on the matcher's evidence (journaled)")
    queued_for_review: int = Field(0, description="Pairs proposed in the review queue")
    rejected: int = 0
    rejected_rows: list[RowProblem] = Field(default_factory=list, description="The first 1,000 rejected rows")
    warnings: list[RowProblem] = Field(default_factory=list)
    unmapped_columns: list[str] = Field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def queued(cls, import_id: str, source: str, rows: int, *, status: str = "queued") -> ImportReport:
        return cls.model_validate({"id": import_id, "status": status, "source": source, "rows": rows})


class ReviewOut(BaseModel):
    id: str = Field(examples=["rev_01J9Z3ABCDEFGHJKMNPQRSTVWX"])
    left_id: str = Field(description="The new record's account")
    right_id: str = Field(description="The candidate's account")
    probability: float
    weight: float = Field(description="Match weight in bits")
    evidence: dict[str, Any] = Field(description="Level and bits per comparison")
    source: str
    origin: str = Field(description="The import id, or `ingestion`")
    status: Literal["pending", "accepted", "rejected"]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    merge_id: str | None


class MatchRecord(BaseModel):
    """One applied or proposed merge, as ``omni customers matches`` exports it."""

    kind: Literal["merge", "review"]
    id: str
    left_id: str
    right_id: str
    method: str = Field(description="deterministic or probabilistic")
    probability: float | None
    weight: float | None
    decision: str = Field(description="merged, undone, pending, accepted or rejected")
    source: str
    created_at: datetime
