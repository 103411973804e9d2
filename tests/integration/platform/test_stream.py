"""The outbox relay to NATS JetStream and the workers, against the real NATS and both databases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Literal

import nats
import orjson
import pytest
from sqlalchemy import ColumnElement, Table, func, select, update

from omnicommerce.platform import clock
from omnicommerce.platform.db import Database, UnitOfWork
from omnicommerce.platform.events import Event
from omnicommerce.platform.outbox import (
    ANY_EVENT,
    Envelope,
    Subscription,
    load_subscribers,
    outbox,
    processed_events,
)
from omnicommerce.platform.stream import NatsRelay, StreamSettings, Worker, durable_name
from tests.integration.integrations.stream_support import (
    publish_raw,
    running,
    stream_messages,
    temporary_stream,
    wait_until,
)


class ParcelScanned(Event):
    context = "platform"
    type: Literal["test.parcel_scanned"] = "test.parcel_scanned"
    version: Literal[1] = 1
    parcel_id: str


@pytest.fixture
def cfg() -> Iterator[StreamSettings]:
    with temporary_stream() as cfg:
        yield cfg


def emit(db: Database, n: int, start: int = 0) -> list[str]:
    events = [ParcelScanned(parcel_id=f"p{i}") for i in range(start, start + n)]
    with db.uow() as uow:
        for e in events:
            uow.emit(e)
        uow.commit()
    return [e.id for e in events]


def count(db: Database, table: Table, *where: ColumnElement[bool]) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_relay_publishes_each_event_once_by_its_id(db: Database, cfg: StreamSettings) -> None:
    ids = emit(db, 5)
    relay = NatsRelay(db, cfg)
    try:
        assert relay.drain() == 5
        assert count(db, outbox, outbox.c.published_at.is_(None)) == 0
        # A relay that crashed after the PubAck but before marking publishes again: JetStream
        # drops the copies by Nats-Msg-Id.
        with db.engine.begin() as conn:
            conn.execute(update(outbox).values(published_at=None))
        assert relay.drain() == 5
    finally:
        relay.stop()
    stored = stream_messages(cfg)
    assert [m.msg_id for m in stored] == ids
    assert {m.subject for m in stored} == {f"{cfg.prefix}.platform.test.parcel_scanned"}
    doc = orjson.loads(stored[0].data)
    assert doc["id"] == ids[0] and doc["type"] == "test.parcel_scanned" and doc["version"] == 1
    assert doc["parcel_id"] == "p0" and doc["occurred_at"]


def stream_positions(db: Database) -> dict[str, int | None]:
    with db.engine.connect() as conn:
        return {r.id: r.stream_seq for r in conn.execute(select(outbox.c.id, outbox.c.stream_seq))}


def redact(db: Database, event_id: str, parcel_id: str) -> None:
    """What a privacy erasure does to an outbox row (``erase_outbox_pii``)."""
    payload = orjson.dumps({"parcel_id": parcel_id}).decode()
    with db.engine.begin() as conn:
        due = {"payload": payload, "stream_redaction_due": clock.now()}
        conn.execute(update(outbox).where(outbox.c.id == event_id).values(due))


def test_relay_records_where_each_event_sits_in_the_stream(db: Database, cfg: StreamSettings) -> None:
    ids = emit(db, 3)
    relay = NatsRelay(db, cfg)
    try:
        relay.drain()
        first = stream_positions(db)
        assert sorted(first.values()) == [1, 2, 3]  # type: ignore[type-var]
        # Published again after a crash: the copies are dropped and the first positions come back.
        with db.engine.begin() as conn:
            conn.execute(update(outbox).values(published_at=None, stream_seq=None))
        relay.drain()
        assert stream_positions(db) == first
    finally:
        relay.stop()
    assert [m.msg_id for m in stream_messages(cfg)] == ids


def test_a_copy_redacted_twice_is_replaced_twice_and_an_expired_one_not_at_all(
    db: Database, cfg: StreamSettings
) -> None:
    kept, expired = emit(db, 2)
    relay = NatsRelay(db, cfg)
    try:
        relay.drain()
        publish_raw(cfg, f"{cfg.prefix}.platform.noise", b"{}")  # the stream moved on meanwhile
        gone = stream_positions(db)[expired]
        asyncio.run(_delete_message(cfg, gone))  # as the stream's limits would
        redact(db, kept, "[erased]")
        redact(db, expired, "[erased]")
        assert relay.replace_redacted(100) == 2
        once = stream_positions(db)
        redact(db, kept, "[erased twice]")
        assert relay.replace_redacted(100) == 1
        assert relay.replace_redacted(100) == 0
    finally:
        relay.stop()
    stored = {m.msg_id: orjson.loads(m.data) for m in stream_messages(cfg) if m.msg_id}
    # One copy of the kept event, the latest redaction; nothing for the expired one.
    assert [(i.split("~")[0], doc["parcel_id"]) for i, doc in stored.items()] == [(kept, "[erased twice]")]
    assert stream_positions(db)[expired] == gone and once[kept] == 4  # 1, 2 and the noise before it
    assert stream_positions(db)[kept] == 5


async def _delete_message(cfg: StreamSettings, seq: int | None) -> None:
    nc = await nats.connect(cfg.url)
    try:
        assert seq is not None and await nc.jetstream().delete_msg(cfg.stream, seq)
    finally:
        await nc.close()


def test_two_relays_at_once_publish_every_event_once(db: Database, cfg: StreamSettings) -> None:
    ids = emit(db, 300)
    relays = [NatsRelay(db, cfg), NatsRelay(db, cfg)]
    published: list[int] = []
    try:
        threads = [threading.Thread(target=lambda r=r: published.append(r.drain())) for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for r in relays:
            r.stop()
    stored = stream_messages(cfg)
    assert sorted(m.msg_id for m in stored) == sorted(ids)
    assert count(db, outbox, outbox.c.published_at.is_(None)) == 0
    if db.dialect == "postgresql":  # SKIP LOCKED: the relays claimed disjoint batches
        assert sum(published) == 300


def test_worker_runs_subscribers_and_a_redelivery_changes_nothing(db: Database, cfg: StreamSettings) -> None:
    seen: list[str] = []

    def record(uow: UnitOfWork, env: Envelope) -> None:
        seen.append(env.payload["parcel_id"])

    ids = emit(db, 4)
    relay = NatsRelay(db, cfg)
    worker = Worker(db, cfg, [Subscription("test.parcel_scanned", "test.recorder", record)])
    try:
        relay.drain()
        with running(worker):
            assert wait_until(lambda: len(seen) == 4)
            # a copy that got past the dedupe window (published again without its msg id)
            first = stream_messages(cfg)[0]
            publish_raw(cfg, first.subject, first.data)
            assert wait_until(lambda: worker.stats.duplicates == 1)
    finally:
        relay.stop()
    assert sorted(seen) == ["p0", "p1", "p2", "p3"]
    assert count(db, processed_events, processed_events.c.consumer == "test.recorder") == len(ids)


def test_failing_subscriber_is_retried_then_dead_lettered(db: Database, cfg: StreamSettings) -> None:
    cfg = replace(cfg, max_deliver=3, backoff=(0.05, 0.1))
    calls: list[str] = []

    def broken(uow: UnitOfWork, env: Envelope) -> None:
        calls.append(env.id)
        raise RuntimeError("downstream says no\r\nX-Injected: 1")

    [event_id] = emit(db, 1)
    relay = NatsRelay(db, cfg)
    worker = Worker(db, cfg, [Subscription("test.parcel_scanned", "test.broken", broken)])
    try:
        relay.drain()
        with running(worker):
            assert wait_until(lambda: worker.stats.dead_lettered == 1)
    finally:
        relay.stop()
    assert calls == [event_id] * 3  # max_deliver tries, then no more
    assert count(db, processed_events) == 0  # every failed try rolled back
    [dead] = stream_messages(cfg, cfg.dlq_subject("test_broken--test_parcel_scanned"))
    assert orjson.loads(dead.data)["id"] == event_id
    assert dead.headers["Omni-Consumer"] == "test.broken"
    assert dead.headers["Omni-Deliveries"] == "3"
    assert "\n" not in dead.headers["Omni-Error"] and "downstream says no" in dead.headers["Omni-Error"]


def test_flaky_subscriber_succeeds_on_redelivery_with_one_effect(db: Database, cfg: StreamSettings) -> None:
    cfg = replace(cfg, backoff=(0.05,))
    tries: list[str] = []

    def flaky(uow: UnitOfWork, env: Envelope) -> None:
        tries.append(env.id)
        uow.emit(ParcelScanned(parcel_id="effect-of-" + env.payload["parcel_id"]))
        if len(tries) == 1:
            raise RuntimeError("first try fails after writing")

    emit(db, 1)
    relay = NatsRelay(db, cfg)
    worker = Worker(db, cfg, [Subscription("test.parcel_scanned", "test.flaky", flaky)])
    try:
        relay.drain()
        with running(worker):
            assert wait_until(lambda: worker.stats.handled == 1)
    finally:
        relay.stop()
    assert len(tries) == 2 and worker.stats.failures == 1
    # the failed try's write rolled back with it: one effect
    with db.engine.connect() as conn:
        payloads = [orjson.loads(p) for p in conn.execute(select(outbox.c.payload)).scalars()]
    assert [p["parcel_id"] for p in payloads].count("effect-of-p0") == 1


def test_subjects_names_and_backoff_of_a_stream() -> None:
    cfg = StreamSettings(url="nats://x", prefix="shop", backoff=(1.0, 5.0))
    assert cfg.subject("omni.orders.order.placed") == "shop.orders.order.placed"
    assert cfg.filter_subject("order.placed") == "shop.*.order.placed"
    assert cfg.filter_subject("*") == "shop.>"
    assert [cfg.redelivery_delay(n) for n in (1, 2, 3, 9)] == [1.0, 5.0, 5.0, 5.0]
    sub = Subscription("order.paid", "fulfillment.route-paid-order", lambda uow, env: None)
    assert durable_name(sub) == "fulfillment_route-paid-order--order_paid"
    assert cfg.dlq_subject(durable_name(sub)) == "shop.dlq.fulfillment_route-paid-order--order_paid"


def test_context_subscribers_are_found_by_name() -> None:
    subs = load_subscribers()
    assert any(s.consumer == "integrations.webhooks" and s.event_type == ANY_EVENT for s in subs)
    assert len({(s.event_type, s.consumer) for s in subs}) == len(subs)  # registered once each
    assert load_subscribers() == subs  # loading again registers nothing twice


def test_a_message_that_is_no_event_goes_straight_to_the_dead_letters(
    db: Database, cfg: StreamSettings
) -> None:
    calls: list[str] = []
    worker = Worker(
        db, cfg, [Subscription("test.parcel_scanned", "test.strict", lambda uow, env: calls.append(env.id))]
    )
    with running(worker):
        publish_raw(cfg, f"{cfg.prefix}.platform.test.parcel_scanned", b"not json")
        assert wait_until(lambda: worker.stats.dead_lettered == 1)
    assert calls == []
    [dead] = stream_messages(cfg, f"{cfg.prefix}.dlq.>")
    assert dead.data == b"not json" and "undecodable" in dead.headers["Omni-Error"]


class ParcelWeighed(Event):
    context = "platform"
    type: Literal["test.parcel_weighed"] = "test.parcel_weighed"
    version: Literal[1] = 1
    parcel_id: str


def test_webhook_fan_out_runs_under_the_worker(db: Database, cfg: StreamSettings) -> None:
    from omnicommerce.integrations import service as webhooks
    from omnicommerce.integrations.models import webhook_deliveries
    from omnicommerce.integrations.schemas import EndpointCreate
    from omnicommerce.platform.auth import SYSTEM
    from omnicommerce.platform.db import transaction

    with transaction(db) as uow:
        webhooks.create_endpoint(
            uow,
            SYSTEM,
            EndpointCreate(url="https://partner.example.com/h", event_types=["test.parcel_scanned"]),
            allow_private=False,
        )
    [fan_out] = [s for s in load_subscribers() if s.consumer == "integrations.webhooks"]
    [scanned] = emit(db, 1)
    with db.uow() as uow:
        uow.emit(ParcelWeighed(parcel_id="p0"))  # nobody subscribed: skipped before any write
        uow.commit()
    relay = NatsRelay(db, cfg)
    worker = Worker(db, cfg, [fan_out])
    try:
        relay.drain()
        with running(worker):
            assert wait_until(lambda: count(db, webhook_deliveries) == 1)
            # scanned → handled; weighed and webhook.endpoint_created → declined without a write
            assert wait_until(lambda: worker.stats.handled + worker.stats.skipped == 3)
    finally:
        relay.stop()
    with db.engine.connect() as conn:
        assert conn.execute(select(webhook_deliveries.c.event_id)).scalar_one() == scanned
        marked = set(conn.execute(select(processed_events.c.event_id)).scalars())
    assert marked == {scanned} and worker.stats.skipped == 2
