"""Erasure reaches the copies of events in the NATS JetStream stream: every message that carried
the person's data — the published event and its dead letter — is replaced by the redacted
document, against the real NATS and both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import nats
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import select, update

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database, UnitOfWork
from omnicommerce.platform.outbox import ANY_EVENT, Envelope, Subscription, outbox
from omnicommerce.platform.stream import NatsRelay, StreamSettings, Worker
from tests.conftest import bearer, make_key
from tests.e2e.customers.privacy.support import EMAIL, NEEDLES, plant_everywhere
from tests.integration.integrations.receiver import webhook_receiver
from tests.integration.integrations.stream_support import (
    StoredMessage,
    running,
    stream_messages,
    temporary_stream,
    wait_until,
)

LATE = "late-reader"  # a consumer that has read nothing yet when the erasure runs


@pytest.fixture
def cfg() -> Iterator[StreamSettings]:
    with temporary_stream() as cfg:
        yield replace(cfg, max_deliver=1)  # the first failure dead-letters


def plant(api: TestClient, app: FastAPI, db: Database) -> None:
    """The person of the marker test, with the in-process relay; then every event is published
    to the stream as a NATS deployment would have (the curbside arrival names their car)."""
    with webhook_receiver() as rx:
        plant_everywhere(api, app, db, rx.url)
    with db.engine.begin() as conn:
        conn.execute(update(outbox).values(published_at=None))


def carries_marker(m: StoredMessage) -> bool:
    text = (m.data.decode() + " ".join(m.headers.values())).lower()
    return any(n.lower() in text for n in NEEDLES)


def event_id(m: StoredMessage) -> str:
    return m.msg_id.rsplit(":", 1)[-1].split("~")[0]


@contextmanager
def failing_worker(db: Database, cfg: StreamSettings) -> Iterator[Worker]:
    """A subscriber that fails on every event: with max_deliver=1 each one is dead-lettered."""

    def broken(uow: UnitOfWork, env: Envelope) -> None:
        raise RuntimeError("partner API down")

    with running(Worker(db, cfg, [Subscription(ANY_EVENT, "test.broken", broken)])) as worker:
        yield worker


async def _read_as(cfg: StreamSettings, durable: str, *, create: bool) -> list[bytes]:
    """A durable consumer's unread events (``create``: subscribe without reading)."""
    nc = await nats.connect(cfg.url)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
            filter_subject=f"{cfg.prefix}.*.>",
        )  # fmt: skip
        pull = await js.pull_subscribe(f"{cfg.prefix}.*.>", durable=durable, stream=cfg.stream, config=config)
        if create:
            return []
        read: list[bytes] = []
        while True:
            try:
                batch = await pull.fetch(100, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                return read
            for m in batch:
                if not m.subject.startswith(f"{cfg.prefix}.dlq."):
                    read.append(m.data)
                await m.ack()
    finally:
        await nc.close()


def test_erasure_replaces_every_stream_copy_that_carried_the_person(
    api: TestClient, hooks_app: FastAPI, db: Database, cfg: StreamSettings
) -> None:
    plant(api, hooks_app, db)
    relay = NatsRelay(db, cfg)
    try:
        assert relay.drain() > 0
        asyncio.run(_read_as(cfg, LATE, create=True))
        published = [m for m in stream_messages(cfg) if ".dlq." not in m.subject]
        with failing_worker(db, cfg):
            assert wait_until(lambda: len(stream_messages(cfg)) == 2 * len(published))
        before = stream_messages(cfg)
        marked = {event_id(m) for m in before if carries_marker(m)}
        letters = [m for m in before if ".dlq." in m.subject]
        assert marked and {event_id(m) for m in letters if carries_marker(m)} == marked

        erased = api.post(
            "/api/v1/privacy/erasure",
            json={"email": EMAIL, "reason": "ticket 7"},
            headers=bearer(make_key(db, Scope.PRIVACY_WRITE)),
        )
        assert erased.status_code == 201, erased.text
        relay.drain()  # publishes privacy.erasure_completed and replaces the copies
        assert relay.replace_redacted(100) == 0  # nothing left to do
    finally:
        relay.stop()

    after = stream_messages(cfg)
    assert [m.msg_id for m in after if carries_marker(m)] == []
    # Nothing lost: every event and every dead letter is still there once, the erased ones as
    # replacements that say so.
    assert sorted(event_id(m) for m in after if ".dlq." in m.subject) == sorted(event_id(m) for m in letters)
    events_after = [event_id(m) for m in after if ".dlq." not in m.subject]
    assert sorted(events_after) == sorted([event_id(m) for m in published] + [_erasure_event(db)])
    replaced = [m for m in after if event_id(m) in marked]
    assert len(replaced) == 2 * len(marked) and all(
        m.headers.get("Omni-Redacted") == "true" for m in replaced
    )
    # A consumer that had not read them yet still gets every event, without the personal data.
    unread = asyncio.run(_read_as(cfg, LATE, create=False))
    assert len(unread) == len(events_after)
    assert not [d for d in unread if any(n.lower() in d.decode().lower() for n in NEEDLES)]
    # The outbox knows where the replacements are and has nothing more due.
    with db.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.id, outbox.c.stream_seq, outbox.c.stream_redaction_due)).all()
    assert all(r.stream_redaction_due is None and r.stream_seq is not None for r in rows)
    at = asyncio.run(_ids_at(cfg, [r.stream_seq for r in rows]))
    assert at == [r.id if r.id not in marked else f"{r.id}~" for r in rows]


async def _ids_at(cfg: StreamSettings, seqs: list[int]) -> list[str]:
    """The event id stored at each position (replacements shortened to ``<id>~``)."""
    nc = await nats.connect(cfg.url)
    try:
        js = nc.jetstream()
        ids = [((await js.get_msg(cfg.stream, seq=s)).headers or {})["Nats-Msg-Id"] for s in seqs]
        return [i.split("~")[0] + "~" if "~" in i else i for i in ids]
    finally:
        await nc.close()


def _erasure_event(db: Database) -> str:
    with db.engine.connect() as conn:
        return str(
            conn.execute(select(outbox.c.id).where(outbox.c.type == "privacy.erasure_completed")).scalar_one()
        )
