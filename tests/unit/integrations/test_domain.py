"""Webhook rules: URLs, retry schedule, the delivery state machine, Standard Webhooks signing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from omnicommerce.integrations.domain import (
    Attempt,
    DeliveryStatus,
    InvalidWebhookUrl,
    UnknownEventType,
    after_attempt,
    check_event_types,
    check_url,
    new_secret,
    payload,
    retry_delay,
    sign,
    subscribed,
)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://example.com",
        "javascript:alert(1)",
        "https://user:pw@example.com/hook",
        "https:///nohost",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "https://example.com/" + "a" * 2001,
    ],
)
def test_only_plain_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/h",
        "http://localhost/h",
        "http://10.0.0.5/h",
        "http://192.168.1.1/h",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]/h",
        "http://0.0.0.0/h",
    ],
)
def test_private_destinations_need_the_explicit_setting(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl, match="private network"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


def test_public_urls_pass() -> None:
    assert check_url("https://partner.example.com/hooks?x=1", allow_private=False)


def test_event_types_must_exist_unless_wildcard() -> None:
    known = ["order.placed", "order.paid"]
    assert check_event_types(["order.paid", "order.placed", "order.paid"], known) == [
        "order.paid",
        "order.placed",
    ]
    assert check_event_types(["*", "order.paid"], known) == ["*"]
    with pytest.raises(UnknownEventType) as err:
        check_event_types(["order.teleported"], known)
    assert err.value.extensions["unknown"] == ["order.teleported"]


def test_webhook_events_never_go_out_as_webhooks() -> None:
    assert subscribed(["*"], "order.placed")
    assert not subscribed(["*"], "webhook.failed")
    assert not subscribed(["order.paid"], "order.placed")


def test_delivery_state_machine() -> None:
    pending = DeliveryStatus.PENDING
    assert after_attempt(pending, Attempt.OK, attempts=1, max_attempts=3) == DeliveryStatus.SUCCEEDED
    assert after_attempt(pending, Attempt.OK, attempts=3, max_attempts=3) == DeliveryStatus.SUCCEEDED
    assert after_attempt(pending, Attempt.ERROR, attempts=2, max_attempts=3) == pending
    assert after_attempt(pending, Attempt.ERROR, attempts=3, max_attempts=3) == DeliveryStatus.FAILED
    with pytest.raises(KeyError):  # settled deliveries take no more attempts
        after_attempt(DeliveryStatus.FAILED, Attempt.OK, attempts=1, max_attempts=3)


@given(st.integers(min_value=1, max_value=60))
def test_backoff_doubles_and_is_capped(attempt: int) -> None:
    delay = retry_delay(attempt, 2.0)
    assert delay <= timedelta(hours=1)
    if delay < timedelta(hours=1):
        assert retry_delay(attempt + 1, 2.0) == min(delay * 2, timedelta(hours=1))
    assert retry_delay(1, 2.0) == timedelta(seconds=2)


def test_signature_verifies_with_standardwebhooks_and_detects_tampering() -> None:
    secret = new_secret()
    at = datetime.now(UTC)
    body = payload("order.placed", at, {"id": "evt_1", "version": 1, "order_id": "ord_1"})
    signed = sign(secret, message_id="evt_1", body=body, at=at)
    assert Webhook(secret).verify(signed.body, signed.headers) == orjson.loads(body)
    assert orjson.loads(body) == {
        "type": "order.placed",
        "timestamp": at.isoformat(),
        "data": {"id": "evt_1", "version": 1, "order_id": "ord_1"},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("ord_1", "ord_2"), signed.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(signed.body, signed.headers)


def test_secrets_are_random_and_in_the_spec_format() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_") and len(a) > 40
