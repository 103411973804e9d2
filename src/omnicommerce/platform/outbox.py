"""Transactional outbox, the subscriber registry and the in-process relay.

Events are rows written in the same transaction as the state they describe. The relay reads
committed rows in order and hands them to subscribers; delivery is at-least-once, so each
subscriber records the event ids it has handled (``processed_events``) and skips repeats.

Subscribing: a context puts its reactions in ``omnicommerce/<context>/subscribers.py``::

    @subscriber("order.paid", consumer="fulfillment.route-paid-order")
    def route_paid_order(uow: UnitOfWork, env: Envelope) -> None: ...

:func:`load_subscribers` imports every such module, and the same handlers then run under the
in-process :class:`Relay` (the default) and under ``omni worker`` when events go through NATS
JetStream (``platform/stream.py``). A handler runs inside the unit of work that also records
its ``processed_events`` row (:func:`handle_once`); it must not commit. ``"*"`` subscribes to
every event type.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from omnicommerce.platform import clock, direct
from omnicommerce.platform.background import BackgroundLoop
from omnicommerce.platform.db import Database, UnitOfWork, UTCDateTime, metadata
from omnicommerce.platform.events import Event
from omnicommerce.platform.pii import redact_documents

log = logging.getLogger("omnicommerce.outbox")

IDLE_POLL_SECONDS = 2.0

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("type", String(80), nullable=False),
    Column("version", Integer, nullable=False),
    Column("subject", String(160), nullable=False),
    Column("payload", Text, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("published_at", UTCDateTime(), nullable=True, index=True),
    # Where the NATS relay's PubAck put the event in the JetStream stream (null: in process).
    Column("stream_seq", BigInteger, nullable=True),
    # Set by a privacy erasure that redacted the payload: the stream copy must be replaced.
    Column("stream_redaction_due", UTCDateTime(), nullable=True, index=True),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(80), primary_key=True),
    Column("event_id", String(40), primary_key=True),
    Column("processed_at", UTCDateTime(), nullable=False),
)


_INSERT_EVENTS = insert(outbox)  # built once; the rows come as execute parameters


def write_events(conn: Connection, events: Sequence[Event], *, ends_transaction: bool = False) -> None:
    """One multi-row INSERT for all events of a transaction (``ends_transaction``: the caller
    commits right after; see :func:`omnicommerce.platform.direct.execute`)."""
    direct.execute(
        conn,
        _INSERT_EVENTS,
        [
            {
                "id": e.id,
                "type": e.type,
                "version": e.version,
                "subject": e.subject,
                "payload": orjson.dumps(e.payload()).decode(),
                "occurred_at": e.occurred_at,
            }
            for e in events
        ],
        ends_transaction=ends_transaction,
    )


@dataclass(frozen=True, slots=True)
class Envelope:
    """An event as delivered: its identity and the JSON payload."""

    id: str
    type: str
    version: int
    subject: str
    occurred_at: datetime
    payload: dict[str, Any]


Handler = Callable[[UnitOfWork, Envelope], None]

ANY_EVENT = "*"


@dataclass(frozen=True, slots=True)
class Subscription:
    """``handler`` reacts to ``event_type`` (or :data:`ANY_EVENT`) under the name ``consumer``,
    the key of its ``processed_events`` rows (and of its durable consumer on NATS)."""

    event_type: str
    consumer: str
    handler: Handler
    # A cheap test run before any transaction: events it declines are skipped without a
    # processed_events row (e.g. webhooks when no endpoint wants this event type).
    accepts: Callable[[Database, Envelope], bool] | None = None

    def wants(self, db: Database, env: Envelope) -> bool:
        return self.accepts is None or self.accepts(db, env)


SUBSCRIPTIONS: list[Subscription] = []


def subscriber(
    event_type: str, *, consumer: str, accepts: Callable[[Database, Envelope], bool] | None = None
) -> Callable[[Handler], Handler]:
    """Register the decorated function as a reaction to ``event_type``."""

    def register(handler: Handler) -> Handler:
        if not any(s.event_type == event_type and s.consumer == consumer for s in SUBSCRIPTIONS):
            SUBSCRIPTIONS.append(Subscription(event_type, consumer, handler, accepts))
        return handler

    return register


def load_subscribers(package: str = "omnicommerce") -> list[Subscription]:
    """Import every ``subscribers`` module of a context or of a context's sub-package
    (``<package>.<context>[.<part>].subscribers``) and return all registrations.

    Found by name, so the platform depends on no context (the layering stays one-way).
    """
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        if info.ispkg:
            _import_subscribers(f"{package}.{info.name}")
    return list(SUBSCRIPTIONS)


def _import_subscribers(context: str) -> None:
    if importlib.util.find_spec(f"{context}.subscribers") is not None:
        importlib.import_module(f"{context}.subscribers")
    for part in pkgutil.iter_modules(importlib.import_module(context).__path__):
        if part.ispkg and importlib.util.find_spec(f"{context}.{part.name}.subscribers") is not None:
            importlib.import_module(f"{context}.{part.name}.subscribers")


def handle_once(db: Database, consumer: str, handler: Handler, env: Envelope) -> bool:
    """Run ``handler`` for ``env`` in one transaction with its ``processed_events`` row.

    Returns False (and does nothing) when ``consumer`` already handled this event: at-least-once
    delivery, exactly-once effect. A handler error rolls back both, so a retry runs it again.
    """
    with db.uow() as uow:
        try:
            uow.conn.execute(
                insert(processed_events).values(consumer=consumer, event_id=env.id, processed_at=clock.now())
            )
        except IntegrityError:
            return False
        handler(uow, env)
        uow.commit()
    return True


def envelope_of(row: Row[Any]) -> Envelope:
    """The envelope of an outbox row (as :func:`pending` selects it)."""
    return Envelope(row.id, row.type, row.version, row.subject, row.occurred_at, orjson.loads(row.payload))


# What a relay reads of an outbox row to send it on (:func:`envelope_of`, ``stream.message_body``).
EVENT_ROW = (
    outbox.c.seq,
    outbox.c.id,
    outbox.c.type,
    outbox.c.version,
    outbox.c.subject,
    outbox.c.occurred_at,
    outbox.c.payload,
)


def pending(limit: int) -> Select[Any]:
    """The oldest ``limit`` unpublished outbox rows, in commit order."""
    return select(*EVENT_ROW).where(outbox.c.published_at.is_(None)).order_by(outbox.c.seq).limit(limit)


def claim_pending(limit: int) -> Select[Any]:
    """PostgreSQL: :func:`pending` locked for this transaction; rows another relay holds are
    skipped, so several relays share the backlog without publishing a row twice."""
    return pending(limit).with_for_update(skip_locked=True)


def mark_published(uow: UnitOfWork, rows: Sequence[Row[Any]], stream_seqs: Sequence[int] | None) -> None:
    """Rows delivered; ``stream_seqs`` (in row order) are their positions in the NATS stream."""
    if not rows:
        return
    now = clock.now()
    if stream_seqs is None:
        keys = [r.seq for r in rows]
        uow.conn.execute(update(outbox).where(outbox.c.seq.in_(keys)).values(published_at=now))
        return
    uow.conn.execute(
        update(outbox)
        .where(outbox.c.seq == bindparam("row_seq"))
        .values(published_at=now, stream_seq=bindparam("at")),
        [{"row_seq": r.seq, "at": at} for r, at in zip(rows, stream_seqs, strict=True)],
    )


class OutboxRelay(BackgroundLoop):
    """Moves committed outbox rows somewhere (``_send``) and marks them published.

    Runs as a background thread polling every ``interval`` seconds when a commit in this
    process wrote events, and every ``IDLE_POLL_SECONDS`` otherwise (events from other
    processes). :class:`Relay` hands rows to in-process subscribers; ``stream.NatsRelay``
    publishes them to NATS JetStream.
    """

    thread_name = "omni-outbox-relay"

    def __init__(self, db: Database, *, interval: float = 0.2) -> None:
        super().__init__(interval=interval)
        self.db = db
        self._dirty = threading.Event()
        self._last_pass = 0.0
        db.on_events_committed(self._dirty.set)

    def _send(self, rows: Sequence[Row[Any]]) -> Sequence[int] | None:
        """Hand ``rows`` on; return only once they are safely delivered (raise otherwise), with
        their positions in the stream they went to (None: delivered in process)."""
        raise NotImplementedError

    def run_once(self, limit: int = 500) -> int:
        """Send up to ``limit`` pending events; returns how many were published.

        On PostgreSQL the batch is claimed with ``FOR UPDATE SKIP LOCKED`` so several relays can
        run at once. SQLite has one writer at a time, so there the batch is read, sent and then
        marked, without holding a lock throughout (a second relay may send a row twice; the
        consumers' ``processed_events`` and NATS' ``Nats-Msg-Id`` de-duplication absorb it).
        """
        if self.db.dialect == "postgresql":
            with self.db.uow() as uow:
                rows = uow.conn.execute(claim_pending(limit)).all()
                mark_published(uow, rows, self._send(rows))
                uow.commit()
            return len(rows)
        with self.db.uow(readonly=True) as reader:
            rows = reader.conn.execute(pending(limit)).all()
        stream_seqs = self._send(rows)
        with self.db.uow() as uow:
            mark_published(uow, rows, stream_seqs)
            uow.commit()
        return len(rows)

    def _pass_due(self) -> bool:
        # One pass per interval, not one per commit: under load each pass publishes a batch, so the
        # relay adds a handful of commits per second instead of one per request. Events committed
        # by other processes are picked up by the idle poll.
        if not self._dirty.is_set() and time.monotonic() - self._last_pass < IDLE_POLL_SECONDS:
            return False
        self._dirty.clear()
        self._last_pass = time.monotonic()
        return True


class Relay(OutboxRelay):
    """Delivers committed outbox rows to in-process subscribers (the default, no NATS).

    Each subscriber runs in its own unit of work together with its ``processed_events`` row, so
    a handler's effects and the record that it ran commit together (exactly-once effects on top
    of at-least-once delivery).
    """

    def __init__(self, db: Database, *, interval: float = 0.2) -> None:
        super().__init__(db, interval=interval)
        self._subscriptions: dict[str, list[Subscription]] = defaultdict(list)

    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None:
        self._subscriptions[event_type].append(Subscription(event_type, consumer, handler))

    def subscribe_all(self, subscriptions: Iterable[Subscription]) -> None:
        for s in subscriptions:
            self._subscriptions[s.event_type].append(s)

    def _send(self, rows: Sequence[Row[Any]]) -> None:
        for row in rows:
            env = envelope_of(row)
            for sub in [*self._subscriptions.get(row.type, []), *self._subscriptions.get(ANY_EVENT, [])]:
                if sub.wants(self.db, env):
                    handle_once(self.db, sub.consumer, sub.handler, env)


def erase_outbox_pii(uow: UnitOfWork, *, keys: Collection[str], terms: Collection[str]) -> int:
    """Privacy erasure: redact personal data in the payloads of outbox rows that mention the
    person (``keys``: their ids and contacts; ``terms``: their identifying strings). Published
    rows and rows still waiting alike; the documents keep their shape, so a waiting event is
    still delivered, without the personal data. Each changed row is marked so the NATS relay
    replaces its copy in the stream (``stream.NatsRelay``). Returns the rows changed."""
    return redact_documents(
        uow.conn,
        outbox,
        outbox.c.seq,
        outbox.c.payload,
        mentioning=keys,
        terms=terms,
        also={"stream_redaction_due": clock.now()},
    )
