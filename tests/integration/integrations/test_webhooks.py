"""Webhooks end to end below HTTP: an event → a delivery per subscribed endpoint → a signed POST
to a real local receiver, retries with backoff, the failure event, replay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Literal

import orjson
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from omnicommerce.integrations import service
from omnicommerce.integrations.domain import DeliveryStatus, Endpoint
from omnicommerce.integrations.jobs import WebhookDispatcher
from omnicommerce.integrations.models import webhook_deliveries
from omnicommerce.integrations.schemas import EndpointCreate
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.events import Event
from omnicommerce.platform.outbox import Relay, load_subscribers, outbox, processed_events
from tests.integration.integrations.receiver import webhook_receiver


class ParcelShipped(Event):
    context = "platform"
    type: Literal["test.parcel_shipped"] = "test.parcel_shipped"
    version: Literal[1] = 1
    parcel_id: str


class ParcelLost(Event):
    context = "platform"
    type: Literal["test.parcel_lost"] = "test.parcel_lost"
    version: Literal[1] = 1
    parcel_id: str


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_private_networks": True,
            "webhook_backoff_base_seconds": 0.001,
            "webhook_max_attempts": 3,
        }
    )


@pytest.fixture
def dispatcher(db: Database, hook_settings: Settings) -> Iterator[WebhookDispatcher]:
    d = WebhookDispatcher(db, hook_settings)
    yield d
    d.stop()


def relay(db: Database) -> Relay:
    r = Relay(db)
    r.subscribe_all(load_subscribers())
    return r


def endpoint(db: Database, url: str, types: list[str]) -> tuple[Endpoint, str]:
    with transaction(db) as uow:
        return service.create_endpoint(
            uow, SYSTEM, EndpointCreate(url=url, event_types=types), allow_private=True
        )


def emit(db: Database, *events: Event) -> None:
    with transaction(db) as uow:
        for e in events:
            uow.emit(e)


def deliveries(db: Database) -> list[tuple[str, str, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(
                webhook_deliveries.c.event_type, webhook_deliveries.c.status, webhook_deliveries.c.attempts
            )
        )
        return sorted((r.event_type, r.status, r.attempts) for r in rows)


def settle(dispatcher: WebhookDispatcher, db: Database) -> int:
    """Run the dispatcher until no delivery is pending (retries are due within milliseconds)."""
    sent = 0
    for _ in range(200):
        sent += dispatcher.drain()
        if not any(status == "pending" for _, status, _ in deliveries(db)):
            return sent
        time.sleep(0.01)
    raise AssertionError("deliveries still pending")


def outbox_types(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return sorted(conn.execute(select(outbox.c.type)).scalars())


def test_subscribed_events_arrive_signed_per_standard_webhooks(
    db: Database, dispatcher: WebhookDispatcher
) -> None:
    with webhook_receiver() as rx:
        shipped_hook, secret = endpoint(db, rx.url, ["test.parcel_shipped"])
        endpoint(db, rx.url + "/all", ["*"])
        event = ParcelShipped(parcel_id="p1")
        emit(db, event, ParcelLost(parcel_id="p2"))
        relay(db).drain()
        assert settle(dispatcher, db) == 3  # shipped → both endpoints; lost → the catch-all only
        assert len(rx.requests) == 3
        to_shipped = [r for r in rx.requests if r.path == "/hooks"]
    [request] = to_shipped
    doc = Webhook(secret).verify(request.body, request.headers)  # raises if the signature is wrong
    assert doc["type"] == "test.parcel_shipped"
    assert doc["data"] == {"id": event.id, "version": 1, "parcel_id": "p1"}
    assert request.headers["webhook-id"] == event.id
    assert request.headers["content-type"] == "application/json"
    assert deliveries(db) == [
        ("test.parcel_lost", "succeeded", 1),
        ("test.parcel_shipped", "succeeded", 1),
        ("test.parcel_shipped", "succeeded", 1),
    ]
    assert outbox_types(db).count("webhook.delivered") == 3
    assert shipped_hook.event_types == ("test.parcel_shipped",)


def test_failures_are_retried_with_backoff_until_success(db: Database, dispatcher: WebhookDispatcher) -> None:
    with webhook_receiver(script=[500, 503]) as rx:
        _, secret = endpoint(db, rx.url, ["test.parcel_shipped"])
        emit(db, ParcelShipped(parcel_id="p1"))
        relay(db).drain()
        settle(dispatcher, db)
    assert [Webhook(secret).verify(r.body, r.headers)["data"]["parcel_id"] for r in rx.requests] == ["p1"] * 3
    assert len({r.headers["webhook-id"] for r in rx.requests}) == 1  # one message, three tries
    assert deliveries(db) == [("test.parcel_shipped", "succeeded", 3)]


def test_exhausted_delivery_fails_then_replays_with_the_same_id(
    db: Database, dispatcher: WebhookDispatcher
) -> None:
    with webhook_receiver(script=[500, 500, 500]) as rx:
        hook, secret = endpoint(db, rx.url, ["test.parcel_shipped"])
        emit(db, ParcelShipped(parcel_id="p1"))
        relay(db).drain()
        settle(dispatcher, db)
        assert deliveries(db) == [("test.parcel_shipped", "failed", 3)]
        assert "webhook.failed" in outbox_types(db)
        with db.uow(readonly=True) as uow:
            [failed] = service.list_deliveries(uow, SYSTEM, hook.id, status=None, after=None, limit=10)
        assert failed.last_status_code == 500 and failed.last_error == "HTTP 500"
        with transaction(db) as uow:
            replay = service.replay_delivery(uow, SYSTEM, failed.id)
        assert replay.status == DeliveryStatus.PENDING and replay.replay_of == failed.id
        assert settle(dispatcher, db) == 1
    assert len(rx.requests) == 4
    assert rx.requests[-1].body == rx.requests[0].body
    assert rx.requests[-1].headers["webhook-id"] == rx.requests[0].headers["webhook-id"]
    Webhook(secret).verify(rx.requests[-1].body, rx.requests[-1].headers)
    assert deliveries(db) == [("test.parcel_shipped", "failed", 3), ("test.parcel_shipped", "succeeded", 1)]


def test_private_destination_is_refused_at_send_time_without_the_setting(
    db: Database, hook_settings: Settings
) -> None:
    strict = WebhookDispatcher(db, hook_settings.model_copy(update={"webhook_allow_private_networks": False}))
    try:
        with webhook_receiver() as rx:
            endpoint(db, rx.url, ["test.parcel_shipped"])  # allowed when created, e.g. in development
            emit(db, ParcelShipped(parcel_id="p1"))
            relay(db).drain()
            strict.drain()
            assert rx.requests == []
    finally:
        strict.stop()
    with db.engine.connect() as conn:
        error = conn.execute(select(webhook_deliveries.c.last_error)).scalar_one()
    assert "private address" in error


def test_disabling_an_endpoint_drops_its_pending_deliveries(
    db: Database, dispatcher: WebhookDispatcher
) -> None:
    with webhook_receiver() as rx:
        hook, _ = endpoint(db, rx.url, ["test.parcel_shipped"])
        emit(db, ParcelShipped(parcel_id="p1"))
        relay(db).drain()
        with transaction(db) as uow:
            assert not service.disable_endpoint(uow, SYSTEM, hook.id).active
        assert dispatcher.drain() == 0
        assert rx.requests == []
    assert deliveries(db) == [("test.parcel_shipped", "failed", 0)]
    assert "webhook.endpoint_disabled" in outbox_types(db)


def test_events_nobody_subscribed_to_cost_no_write(db: Database) -> None:
    service.subscribed_types.invalidate()
    emit(db, ParcelLost(parcel_id="p1"))
    relay(db).drain()
    with db.engine.connect() as conn:
        marks = conn.execute(
            select(func.count())
            .select_from(processed_events)
            .where(processed_events.c.consumer == "integrations.webhooks")
        ).scalar_one()
    assert marks == 0
    assert deliveries(db) == []


def test_payload_is_the_event_document(db: Database, dispatcher: WebhookDispatcher) -> None:
    with webhook_receiver() as rx:
        endpoint(db, rx.url, ["test.parcel_lost"])
        event = ParcelLost(parcel_id="p9")
        emit(db, event)
        relay(db).drain()
        settle(dispatcher, db)
    body = orjson.loads(rx.requests[0].body)
    assert body["timestamp"] == event.occurred_at.isoformat()
    assert body["data"]["id"] == event.id
