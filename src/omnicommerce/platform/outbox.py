"""Transactional outbox and the in-process relay.

Events are rows written in the same transaction as the state they describe. The relay reads
committed rows in order and hands them to subscribers; delivery is at-least-once, so each
subscriber records the event ids it has handled (``processed_events``) and skips repeats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
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
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from omnicommerce.platform import clock
from omnicommerce.platform.db import Database, UnitOfWork, UTCDateTime, metadata
from omnicommerce.platform.events import Event

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
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(80), primary_key=True),
    Column("event_id", String(40), primary_key=True),
    Column("processed_at", UTCDateTime(), nullable=False),
)


def write_events(conn: Connection, events: Sequence[Event]) -> None:
    """One multi-row INSERT for all events of a transaction."""
    conn.execute(
        insert(outbox),
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


class Relay:
    """Moves committed outbox rows to in-process subscribers.

    Each subscriber runs in its own unit of work together with its ``processed_events`` row, so
    a handler's effects and the record that it ran commit together (exactly-once effects on top
    of at-least-once delivery).
    """

    def __init__(self, db: Database, *, interval: float = 0.2) -> None:
        self.db = db
        self.interval = interval
        self._handlers: dict[str, list[tuple[str, Handler]]] = defaultdict(list)
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        db.on_events_committed(self._dirty.set)

    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None:
        self._handlers[event_type].append((consumer, handler))

    def run_once(self, limit: int = 500) -> int:
        """Deliver up to ``limit`` pending events; returns how many were published.

        On PostgreSQL the batch is claimed with ``FOR UPDATE SKIP LOCKED`` so several relays can
        run at once. SQLite has one writer at a time, so there the batch is read, delivered (each
        handler in its own write transaction) and then marked, without holding a lock throughout.
        """
        if self.db.dialect == "postgresql":
            with self.db.uow() as uow:
                rows = uow.conn.execute(self._pending(limit).with_for_update(skip_locked=True)).all()
                self._deliver_all(rows)
                self._mark_published(uow, rows)
                uow.commit()
            return len(rows)
        with self.db.uow(readonly=True) as reader:
            rows = reader.conn.execute(self._pending(limit)).all()
        self._deliver_all(rows)
        with self.db.uow() as uow:
            self._mark_published(uow, rows)
            uow.commit()
        return len(rows)

    @staticmethod
    def _pending(limit: int) -> Select[Any]:
        return (
            select(
                outbox.c.seq,
                outbox.c.id,
                outbox.c.type,
                outbox.c.version,
                outbox.c.subject,
                outbox.c.occurred_at,
                outbox.c.payload,
            )
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.seq)
            .limit(limit)
        )

    def _deliver_all(self, rows: Sequence[Row[Any]]) -> None:
        for row in rows:
            env = Envelope(
                row.id, row.type, row.version, row.subject, row.occurred_at, orjson.loads(row.payload)
            )
            for consumer, handler in self._handlers.get(row.type, []):
                self._deliver(consumer, handler, env)

    @staticmethod
    def _mark_published(uow: UnitOfWork, rows: Sequence[Row[Any]]) -> None:
        if rows:
            uow.conn.execute(
                update(outbox).where(outbox.c.seq.in_([r.seq for r in rows])).values(published_at=clock.now())
            )

    def _deliver(self, consumer: str, handler: Handler, env: Envelope) -> None:
        with self.db.uow() as uow:
            try:
                uow.conn.execute(
                    insert(processed_events).values(
                        consumer=consumer, event_id=env.id, processed_at=clock.now()
                    )
                )
            except IntegrityError:
                return  # already handled: at-least-once delivery, exactly-once effect
            handler(uow, env)
            uow.commit()

    def drain(self) -> int:
        total = 0
        while (n := self.run_once()) > 0:
            total += n
        return total

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="omni-outbox-relay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        # One pass per interval, not one per commit: under load each pass publishes a batch, so the
        # relay adds a handful of commits per second instead of one per request. Events committed
        # by other processes are picked up by the idle poll.
        last_pass = 0.0
        while not self._stop.wait(self.interval):
            if not self._dirty.is_set() and time.monotonic() - last_pass < IDLE_POLL_SECONDS:
                continue
            self._dirty.clear()
            last_pass = time.monotonic()
            try:
                self.drain()
            except Exception:  # the relay must outlive a bad moment; rows stay unpublished
                log.exception("outbox relay pass failed; will retry")
                self._stop.wait(1.0)
