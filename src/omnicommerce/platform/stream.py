"""NATS JetStream: the outbox relay's publisher and the workers running the subscribers.

With ``OMNI_NATS_URL`` set, :class:`NatsRelay` publishes every committed outbox row to one
stream (``OMNI_NATS_STREAM``, subjects ``<prefix>.>``) on ``<prefix>.<context>.<type>``, with the
event id as ``Nats-Msg-Id`` so JetStream drops a second copy inside the duplicate window, and
marks the rows published only after the stream acknowledged them. :class:`Worker` runs the
registered subscribers (``outbox.load_subscribers``) on durable pull consumers: it acks after the
handler's transaction committed, naks with a growing delay when the handler fails, and after
``OMNI_WORKER_MAX_DELIVER`` failures publishes the event to ``<prefix>.dlq.<durable>`` and stops
redelivering it. ``processed_events`` makes a redelivered event change nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import nats
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RawStreamMsg, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.engine import Row

from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.outbox import (
    ANY_EVENT,
    EVENT_ROW,
    Envelope,
    OutboxRelay,
    Relay,
    Subscription,
    handle_once,
    outbox,
)

log = logging.getLogger("omnicommerce.stream")

T = TypeVar("T")

STORED_PREFIX = "omni"  # the outbox stores subjects as omni.<context>.<type>
PUBLISH_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5.0
META_FIELDS = ("id", "type", "version", "occurred_at")


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Where events go and how consumers retry; built from :class:`Settings`."""

    url: str
    stream: str = "OMNI"
    prefix: str = "omni"
    duplicate_window: float = 600.0
    max_deliver: int = 5
    backoff: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)
    ack_wait: float = 30.0
    replicas: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamSettings:
        if not settings.nats_url:
            raise ValueError("OMNI_NATS_URL is not set")
        return cls(
            url=settings.nats_url,
            stream=settings.nats_stream,
            prefix=settings.nats_subject_prefix,
            duplicate_window=settings.nats_duplicate_window_seconds,
            max_deliver=settings.worker_max_deliver,
            backoff=tuple(settings.worker_backoff_seconds) or (1.0,),
            ack_wait=settings.worker_ack_wait_seconds,
            replicas=settings.nats_stream_replicas,
        )

    def subject(self, stored_subject: str) -> str:
        """The NATS subject of an outbox row: the stored ``omni.`` prefix swapped for ours."""
        rest = stored_subject.removeprefix(STORED_PREFIX + ".")
        return f"{self.prefix}.{rest}"

    def filter_subject(self, event_type: str) -> str:
        # One token for the context: a subscriber names the event type, not who publishes it.
        return f"{self.prefix}.>" if event_type == ANY_EVENT else f"{self.prefix}.*.{event_type}"

    def dlq_subject(self, durable: str) -> str:
        return f"{self.prefix}.dlq.{durable}"

    def redelivery_delay(self, deliveries: int) -> float:
        """Delay before the next try after the ``deliveries``-th failed one (the last repeats)."""
        return self.backoff[min(deliveries, len(self.backoff)) - 1]


# --- the wire format ---------------------------------------------------------------------


def message_body(row: Row[Any]) -> bytes:
    """The event document as in docs/events.md: id, type, version, occurred_at and the fields."""
    payload = orjson.loads(row.payload)
    return orjson.dumps(
        {
            "id": row.id,
            "type": row.type,
            "version": row.version,
            "occurred_at": row.occurred_at.isoformat(),
            **payload,
        }
    )


def envelope_from_message(subject: str, data: bytes) -> Envelope:
    """Raises ``ValueError``/``KeyError`` for a body that is not an event document."""
    doc = orjson.loads(data)
    payload = {k: v for k, v in doc.items() if k not in META_FIELDS}
    return Envelope(
        id=str(doc["id"]),
        type=str(doc["type"]),
        version=int(doc["version"]),
        subject=subject,
        occurred_at=datetime.fromisoformat(doc["occurred_at"]),
        payload=payload,
    )


_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")


def durable_name(sub: Subscription) -> str:
    """One durable consumer per (subscriber, event type); NATS names allow no dots."""
    event = "all" if sub.event_type == ANY_EVENT else sub.event_type
    return _NOT_IN_NAME.sub("_", f"{sub.consumer}--{event}")


def _header_value(text: str) -> str:
    # Headers are line-based: an error message must not smuggle a line break into them.
    return " ".join(text.split())[:300]


# --- connection plumbing -----------------------------------------------------------------


async def connect(url: str, *, name: str) -> NatsClient:
    """A client that keeps reconnecting (for ever) after it connected once."""

    async def quiet(exc: Exception) -> None:
        # Each failed reconnect lands here; the relay and worker report the outage themselves.
        log.debug("nats: %s", type(exc).__name__)

    return await nats.connect(
        [u.strip() for u in url.split(",") if u.strip()],  # a cluster: several URLs, comma separated
        name=name,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        error_cb=quiet,
    )


async def ensure_stream(js: JetStreamContext, cfg: StreamSettings) -> None:
    """Create the stream, or bring an existing one to this configuration."""
    config = StreamConfig(
        name=cfg.stream,
        subjects=[f"{cfg.prefix}.>"],
        storage=StorageType.FILE,
        duplicate_window=cfg.duplicate_window,
        num_replicas=cfg.replicas,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


class LoopThread:
    """An asyncio loop on its own daemon thread, for sync code (the relay) to run coroutines on."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


# --- the relay ---------------------------------------------------------------------------


class NatsRelay(OutboxRelay):
    """Publishes committed outbox rows to JetStream and marks them published after the PubAck.

    While NATS is unreachable each pass fails, the rows stay unpublished (the outbox grows) and
    the API keeps taking orders; once NATS answers again the backlog goes out in order of
    commit. A row published but not yet marked (a crash in between, or a second relay on
    SQLite) is published again with the same ``Nats-Msg-Id`` and JetStream drops the copy.
    """

    thread_name = "omni-nats-relay"

    def __init__(self, db: Database, cfg: StreamSettings, *, interval: float = 0.2) -> None:
        super().__init__(db, interval=interval)
        self.cfg = cfg
        self._io: LoopThread | None = None  # started on first use
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None

    def _send(self, rows: Sequence[Row[Any]]) -> list[int]:
        return self._call(self._publish(rows)) if rows else []

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = PUBLISH_TIMEOUT_SECONDS * 2 + 5) -> T:
        if self._io is None:
            self._io = LoopThread("omni-nats-io")
        return self._io.call(coro, timeout=timeout)

    def run_once(self, limit: int = 500) -> int:
        return super().run_once(limit) + self.replace_redacted(REDACTION_BATCH)

    def replace_redacted(self, limit: int) -> int:
        """Privacy erasure, stream side: each outbox row an erasure redacted has its copy in the
        stream (and any dead letter of it) replaced by the redacted document — published anew,
        then the old message deleted (NATS overwrites its bytes on disk). Consumers that had not
        read the event yet still get it, without the personal data; ours skip it if they had
        (``processed_events``). Returns the rows done."""
        with self.db.uow(readonly=True) as reader:
            rows = reader.conn.execute(_redaction_due(limit)).all()
        if not rows:
            return 0
        new_seqs = self._call(self._replace(rows), timeout=REDACTION_TIMEOUT_SECONDS)
        with self.db.uow() as uow:
            # Only rows not redacted again meanwhile (a second erasure): those go round once more.
            uow.conn.execute(
                update(outbox)
                .where(outbox.c.seq == bindparam("row_seq"), outbox.c.payload == bindparam("read"))
                .values(stream_redaction_due=None, stream_seq=bindparam("at")),
                [
                    {"row_seq": r.seq, "read": r.payload, "at": at}
                    for r, at in zip(rows, new_seqs, strict=True)
                ],
            )
            uow.commit()
        return len(rows)

    async def _jetstream(self) -> JetStreamContext:
        if self._js is None or self._nc is None or self._nc.is_closed:
            # Bounded: the first connect otherwise retries for ever, and this pass must fail so
            # the rows stay unpublished and the next pass tries again.
            self._nc = await asyncio.wait_for(
                connect(self.cfg.url, name="omni-relay"), timeout=CONNECT_TIMEOUT_SECONDS
            )
            self._js = self._nc.jetstream()
            await ensure_stream(self._js, self.cfg)
        return self._js

    async def _publish(self, rows: Sequence[Row[Any]]) -> list[int]:
        js = await self._jetstream()
        # All publishes in flight at once, then every PubAck awaited: one round trip per batch.
        # A copy JetStream dropped as a duplicate is acknowledged with the first one's position.
        acks = await asyncio.gather(
            *(
                js.publish(
                    self.cfg.subject(row.subject),
                    message_body(row),
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                    headers={"Nats-Msg-Id": row.id},
                )
                for row in rows
            )
        )
        return [ack.seq for ack in acks]

    async def _replace(self, rows: Sequence[Row[Any]]) -> list[int | None]:
        js = await self._jetstream()
        new_seqs = [await self._replace_copy(js, row) for row in rows]
        await self._replace_dead_letters(js, {row.id: row for row in rows})
        return new_seqs

    async def _replace_copy(self, js: JetStreamContext, row: Row[Any]) -> int | None:
        """The stream position of the redacted copy, or the row's old one when the stream no
        longer holds the event (its limits dropped it, or the stream was recreated)."""
        if row.stream_seq is None:
            return None  # delivered in process, or published before positions were recorded
        old = await _stored(js, self.cfg.stream, row.stream_seq)
        if old is None or _event_id(old.headers) != row.id:
            return row.stream_seq
        new_seq = await self._republish(js, old, message_body(row), f"{row.id}~{row.stream_seq}")
        await _erase(js, self.cfg.stream, row.stream_seq)
        return new_seq

    async def _replace_dead_letters(self, js: JetStreamContext, rows: dict[str, Row[Any]]) -> None:
        """Dead letters are copies too; the DLQ is small, so it is read through (up to where the
        stream ended when the pass began: the replacements go after that)."""
        end = (await js.stream_info(self.cfg.stream)).state.last_seq
        seq = 1
        while (old := await _next_stored(js, self.cfg.stream, seq, self.cfg.dlq_subject("*"))) is not None:
            if old.seq is None or old.seq > end:
                break
            seq = old.seq + 1
            # A dead letter's id is "dlq:<durable>:<event id>[~<replaced position>]".
            letter_id = (old.headers or {}).get("Nats-Msg-Id", "")
            row = rows.get(_event_id({"Nats-Msg-Id": letter_id.rsplit(":", 1)[-1]}))
            if row is None:
                continue
            await self._republish(js, old, message_body(row), f"{letter_id.split('~')[0]}~{old.seq}")
            await _erase(js, self.cfg.stream, old.seq)

    async def _republish(self, js: JetStreamContext, old: RawStreamMsg, body: bytes, msg_id: str) -> int:
        # The id names the message it replaces: a pass repeated after a crash is dropped as a
        # duplicate instead of leaving a second copy.
        headers = {**(old.headers or {}), "Nats-Msg-Id": msg_id, "Omni-Redacted": "true"}
        ack = await js.publish(old.subject or "", body, timeout=PUBLISH_TIMEOUT_SECONDS, headers=headers)
        return ack.seq

    def stop(self) -> None:
        super().stop()
        if self._io is None:
            return
        if self._nc is not None:
            with contextlib.suppress(Exception):
                self._io.call(self._nc.close(), timeout=5)
        self._io.close()
        self._io = None


REDACTION_BATCH = 100
REDACTION_TIMEOUT_SECONDS = 300.0  # a pass reads the dead letters through: allow for a long DLQ


def _redaction_due(limit: int) -> Select[Any]:
    """Published outbox rows an erasure redacted, oldest first. A row redacted before it was
    published waits here until it is, and is then replaced once more: one redundant copy, rather
    than a race with a relay that read the row before the erasure and publishes it after."""
    return (
        select(*EVENT_ROW, outbox.c.stream_seq)
        .where(outbox.c.stream_redaction_due.is_not(None), outbox.c.published_at.is_not(None))
        .order_by(outbox.c.seq)
        .limit(limit)
    )


def _event_id(headers: dict[str, str] | None) -> str:
    """The event a stream message carries: its ``Nats-Msg-Id`` before any ``~`` (replacements)."""
    return (headers or {}).get("Nats-Msg-Id", "").split("~")[0]


async def _stored(js: JetStreamContext, stream: str, seq: int) -> RawStreamMsg | None:
    try:
        return await js.get_msg(stream, seq=seq)
    except NotFoundError:
        return None


async def _next_stored(js: JetStreamContext, stream: str, seq: int, subject: str) -> RawStreamMsg | None:
    """The first message at or after ``seq`` on ``subject`` (wildcards allowed)."""
    try:
        return await js.get_msg(stream, seq=seq, subject=subject, next=True)
    except NotFoundError:
        return None


async def _erase(js: JetStreamContext, stream: str, seq: int) -> None:
    """Delete one message; without ``no_erase`` the server overwrites its bytes on disk."""
    with contextlib.suppress(NotFoundError):  # a repeated pass: already gone
        await js.delete_msg(stream, seq)


def make_relay(db: Database, settings: Settings, subscriptions: Sequence[Subscription]) -> OutboxRelay:
    """The relay ``omni serve`` and ``omni relay`` run: to NATS when ``OMNI_NATS_URL`` is set (the
    subscribers then run under ``omni worker``), else straight to the in-process subscribers."""
    if settings.nats_url:
        return NatsRelay(db, StreamSettings.from_settings(settings), interval=settings.relay_interval_seconds)
    relay = Relay(db, interval=settings.relay_interval_seconds)
    relay.subscribe_all(subscriptions)
    return relay


# --- the worker --------------------------------------------------------------------------


@dataclass
class WorkerStats:
    handled: int = 0
    duplicates: int = 0
    skipped: int = 0  # declined by the subscription's ``accepts``
    failures: int = 0
    dead_lettered: int = 0
    by_consumer: dict[str, int] = field(default_factory=dict)


class Worker:
    """Runs ``subscriptions`` on durable pull consumers until ``stop`` is set.

    Any number of workers may run against the same stream: a durable pull consumer hands each
    message to one of them, and ``processed_events`` absorbs a redelivery after a crash.
    """

    def __init__(
        self,
        db: Database,
        cfg: StreamSettings,
        subscriptions: Sequence[Subscription],
        *,
        batch: int = 50,
        concurrency: int = 8,
    ) -> None:
        self.db = db
        self.cfg = cfg
        self.subscriptions = list(subscriptions)
        self.batch = batch
        self.concurrency = concurrency
        self.stats = WorkerStats()
        self.ready = threading.Event()  # set once every consumer is subscribed

    def run(self, stop: threading.Event) -> None:
        """Blocking: for ``omni worker`` and for tests running a worker on a thread."""
        asyncio.run(self.serve(stop))

    async def serve(self, stop: threading.Event) -> None:
        nc = await self._connect(stop)
        if nc is None:
            return
        try:
            js = nc.jetstream()
            await ensure_stream(js, self.cfg)
            self._slots = asyncio.Semaphore(self.concurrency)  # handler transactions at once
            pulls = [await self._subscribe(js, sub) for sub in self.subscriptions]
            self.ready.set()
            await asyncio.gather(*(self._consume(js, sub, pull, stop) for sub, pull in pulls))
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _connect(self, stop: threading.Event) -> NatsClient | None:
        """Wait for NATS (a worker may start before it), or return None when told to stop."""
        while not stop.is_set():
            try:
                return await asyncio.wait_for(
                    connect(self.cfg.url, name="omni-worker"), timeout=CONNECT_TIMEOUT_SECONDS
                )
            except TimeoutError:
                log.warning("worker: NATS at %s not reachable yet; waiting", self.cfg.url)
        return None

    async def _subscribe(
        self, js: JetStreamContext, sub: Subscription
    ) -> tuple[Subscription, JetStreamContext.PullSubscription]:
        durable = durable_name(sub)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            # A worker that died holding a message: it is redelivered after this long.
            ack_wait=self.cfg.ack_wait,
            # One more than ours: the worker dead-letters on the last try; the server's limit only
            # stops a message that kills its worker every time.
            max_deliver=self.cfg.max_deliver + 1,
            max_ack_pending=1000,
            filter_subject=self.cfg.filter_subject(sub.event_type),
        )
        pull = await js.pull_subscribe(
            config.filter_subject or "", durable=durable, stream=self.cfg.stream, config=config
        )
        return sub, pull

    async def _consume(
        self,
        js: JetStreamContext,
        sub: Subscription,
        pull: JetStreamContext.PullSubscription,
        stop: threading.Event,
    ) -> None:
        while not stop.is_set():
            try:
                msgs = await pull.fetch(self.batch, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception:  # a reconnect in progress: wait and pull again
                log.warning("worker fetch failed for %s; retrying", durable_name(sub), exc_info=True)
                await asyncio.sleep(0.5)
                continue
            # A batch's messages run side by side (each its own transaction): events of one type
            # may be handled out of order, as they may be after any redelivery anyway.
            await asyncio.gather(*(self._bounded(js, sub, msg) for msg in msgs))

    async def _bounded(self, js: JetStreamContext, sub: Subscription, msg: Msg) -> None:
        async with self._slots:
            await self._handle(js, sub, msg)

    async def _handle(self, js: JetStreamContext, sub: Subscription, msg: Msg) -> None:
        dlq_prefix = f"{self.cfg.prefix}.dlq."
        if msg.subject.startswith(dlq_prefix):  # a catch-all consumer must not eat dead letters
            await msg.ack()
            return
        try:
            env = envelope_from_message(msg.subject, msg.data)
        except (ValueError, KeyError, TypeError) as exc:
            await self._dead_letter(js, sub, msg, f"undecodable event: {exc}")
            return
        # ``accepts`` may read the database: off the event loop, like the handler.
        if sub.accepts is not None and not await asyncio.to_thread(sub.wants, self.db, env):
            await msg.ack()
            self.stats.skipped += 1
            return
        try:
            first = await asyncio.to_thread(handle_once, self.db, sub.consumer, sub.handler, env)
        except Exception as exc:
            await self._failed(js, sub, msg, exc)
            return
        await msg.ack()  # only now: the handler's effects and its processed mark are committed
        if first:
            self.stats.handled += 1
            self.stats.by_consumer[sub.consumer] = self.stats.by_consumer.get(sub.consumer, 0) + 1
        else:
            self.stats.duplicates += 1

    async def _failed(self, js: JetStreamContext, sub: Subscription, msg: Msg, exc: Exception) -> None:
        self.stats.failures += 1
        deliveries = msg.metadata.num_delivered or 1
        log.warning(
            "subscriber %s failed on %s (delivery %d): %s", sub.consumer, msg.subject, deliveries, exc
        )
        if deliveries >= self.cfg.max_deliver:
            await self._dead_letter(js, sub, msg, f"{type(exc).__name__}: {exc}")
        else:
            await msg.nak(delay=self.cfg.redelivery_delay(deliveries))

    async def _dead_letter(self, js: JetStreamContext, sub: Subscription, msg: Msg, reason: str) -> None:
        durable = durable_name(sub)
        event_id = (msg.headers or {}).get("Nats-Msg-Id", str(msg.metadata.sequence.stream))
        await js.publish(
            self.cfg.dlq_subject(durable),
            msg.data,
            timeout=PUBLISH_TIMEOUT_SECONDS,
            headers={
                "Nats-Msg-Id": f"dlq:{durable}:{event_id}",
                "Omni-Consumer": sub.consumer,
                "Omni-Original-Subject": msg.subject,
                "Omni-Deliveries": str(msg.metadata.num_delivered),
                "Omni-Error": _header_value(reason),
            },
        )
        await msg.term()  # no further redelivery: the dead letter is the record
        self.stats.dead_lettered += 1
        log.error("event %s dead-lettered for %s: %s", event_id, sub.consumer, reason)
