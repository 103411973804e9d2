"""Outbound webhooks: endpoint rules, the delivery state machine, retry schedule, signing.

Pure Python: no SQLAlchemy, FastAPI or network I/O. Payloads follow the Standard Webhooks
spec (https://www.standardwebhooks.com): ``{"type", "timestamp", "data"}`` signed with the
endpoint's ``whsec_`` secret over ``webhook-id.webhook-timestamp.body``.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import orjson
from standardwebhooks.webhooks import Webhook

from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound

MAX_URL_LENGTH = 2000
MAX_BACKOFF = timedelta(hours=1)
# Events about webhooks themselves never go out as webhooks: a failing endpoint would feed itself.
OWN_EVENT_PREFIX = "webhook."
ALL_EVENTS = "*"


class EndpointNotFound(NotFound):
    code = "webhook-endpoint-not-found"
    title = "Webhook endpoint not found"


class DeliveryNotFound(NotFound):
    code = "webhook-delivery-not-found"
    title = "Webhook delivery not found"


class InvalidWebhookUrl(InvalidInput):
    code = "invalid-webhook-url"
    title = "Invalid webhook URL"


class UnknownEventType(InvalidInput):
    code = "unknown-event-type"
    title = "Unknown event type"


class DeliveryNotReplayable(Conflict):
    code = "webhook-delivery-not-replayable"
    title = "Webhook delivery still in progress"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Attempt(StrEnum):
    OK = "ok"
    ERROR = "error"


# The delivery state machine as a table: (state, attempt outcome, attempts left?) → next state.
TRANSITIONS: Mapping[tuple[DeliveryStatus, Attempt, bool], DeliveryStatus] = {
    (DeliveryStatus.PENDING, Attempt.OK, True): DeliveryStatus.SUCCEEDED,
    (DeliveryStatus.PENDING, Attempt.OK, False): DeliveryStatus.SUCCEEDED,
    (DeliveryStatus.PENDING, Attempt.ERROR, True): DeliveryStatus.PENDING,
    (DeliveryStatus.PENDING, Attempt.ERROR, False): DeliveryStatus.FAILED,
}


def after_attempt(
    status: DeliveryStatus, outcome: Attempt, *, attempts: int, max_attempts: int
) -> DeliveryStatus:
    """The delivery's state after its ``attempts``-th try ended with ``outcome``."""
    return TRANSITIONS[(status, outcome, attempts < max_attempts)]


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """Exponential backoff: ``base * 2^(attempts-1)``, capped at an hour."""
    seconds = base_seconds * 2 ** min(max(attempts - 1, 0), 40)  # bounded: no overflow
    return min(timedelta(seconds=min(seconds, MAX_BACKOFF.total_seconds())), MAX_BACKOFF)


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300


# --- endpoint rules -----------------------------------------------------------------------


def check_url(url: str, *, allow_private: bool) -> str:
    """Only absolute http(s) URLs without credentials; private addresses only when allowed.

    A host name is checked again at delivery time (after DNS resolution): see
    :func:`blocked_address`.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        raise InvalidWebhookUrl("the URL cannot be parsed") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("only http and https URLs can receive webhooks")
    if not parts.hostname:
        raise InvalidWebhookUrl("the URL has no host")
    if parts.username or parts.password:
        raise InvalidWebhookUrl("put no credentials in the URL; verify the signature instead")
    if any(ch.isspace() for ch in url):
        raise InvalidWebhookUrl("the URL contains whitespace")
    if not allow_private and (parts.hostname == "localhost" or blocked_address(parts.hostname)):
        raise InvalidWebhookUrl("the URL points into a private network; webhooks go to public hosts")
    del port
    return url


def blocked_address(host: str) -> bool:
    """True for IP literals that are not public (loopback, private, link-local, metadata…)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: resolved and checked at delivery
    return not ip.is_global


def check_event_types(requested: Iterable[str], known: Iterable[str]) -> list[str]:
    wanted = sorted(set(requested))
    if ALL_EVENTS in wanted:
        return [ALL_EVENTS]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise UnknownEventType(
            f"no such event type: {', '.join(unknown)} (see docs/events.md, or use '*')",
            unknown=unknown,
        )
    return wanted


def deliverable(event_type: str) -> bool:
    return not event_type.startswith(OWN_EVENT_PREFIX)


def subscribed(event_types: Iterable[str], event_type: str) -> bool:
    types = set(event_types)
    return deliverable(event_type) and (ALL_EVENTS in types or event_type in types)


# --- signing ------------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def payload(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> str:
    """The request body: the spec's envelope around the event document."""
    return orjson.dumps(
        {"type": event_type, "timestamp": occurred_at.isoformat(), "data": dict(data)}
    ).decode()


@dataclass(frozen=True, slots=True)
class SignedRequest:
    body: str
    headers: dict[str, str]


def sign(secret: str, *, message_id: str, body: str, at: datetime) -> SignedRequest:
    """Headers per the spec; ``message_id`` stays the same across retries and replays, so a
    receiver can de-duplicate."""
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body)
    return SignedRequest(
        body=body,
        headers={
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
            "user-agent": "Omnicommerce-Webhooks/1",
        },
    )


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    description: str
    event_types: tuple[str, ...]
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    replay_of: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """What the dispatcher needs to send one delivery."""

    id: str
    endpoint_id: str
    url: str
    secret: str
    event_id: str
    event_type: str
    payload: str
    attempts: int


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: Attempt
    status_code: int | None = None
    error: str | None = None
