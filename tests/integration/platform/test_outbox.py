"""The outbox: events commit with state or not at all; delivery is at-least-once, effects once."""

import contextlib
from typing import Literal

from sqlalchemy import func, select

from omnicommerce.platform.db import Database, UnitOfWork
from omnicommerce.platform.events import Event
from omnicommerce.platform.outbox import Envelope, Relay, outbox, processed_events


class ThingHappened(Event):
    context = "platform"
    type: Literal["test.thing_happened"] = "test.thing_happened"
    version: Literal[1] = 1
    thing_id: str


def _count(db: Database, table) -> int:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_events_roll_back_with_the_transaction(db: Database) -> None:
    with db.uow() as uow:
        uow.emit(ThingHappened(thing_id="a"))
        # leaving without commit rolls back
    assert _count(db, outbox) == 0
    with db.uow() as uow:
        uow.emit(ThingHappened(thing_id="b"))
        uow.commit()
    assert _count(db, outbox) == 1


def test_relay_delivers_each_event_once_per_consumer(db: Database) -> None:
    seen: list[str] = []

    def handler(uow: UnitOfWork, env: Envelope) -> None:
        seen.append(env.payload["thing_id"])

    relay = Relay(db)
    relay.subscribe("test.thing_happened", "test-consumer", handler)
    with db.uow() as uow:
        for i in range(3):
            uow.emit(ThingHappened(thing_id=str(i)))
        uow.commit()
    assert relay.drain() == 3
    assert seen == ["0", "1", "2"]
    assert relay.drain() == 0
    # a redelivery (e.g. a relay that died before marking rows published) changes nothing twice
    with db.engine.begin() as conn:
        conn.execute(outbox.update().values(published_at=None))
    assert relay.drain() == 3
    assert seen == ["0", "1", "2"]
    assert _count(db, processed_events) == 3


def test_failed_handler_leaves_no_processed_mark(db: Database) -> None:
    calls = []

    def flaky(uow: UnitOfWork, env: Envelope) -> None:
        calls.append(env.id)
        raise RuntimeError("boom")

    relay = Relay(db)
    relay.subscribe("test.thing_happened", "flaky", flaky)
    with db.uow() as uow:
        uow.emit(ThingHappened(thing_id="x"))
        uow.commit()
    with contextlib.suppress(RuntimeError):
        relay.run_once()
    assert _count(db, processed_events) == 0
    with db.engine.connect() as conn:
        assert conn.execute(select(outbox.c.published_at)).scalar_one() is None


def test_background_relay_delivers_committed_events(db: Database) -> None:
    import time

    seen: list[str] = []
    relay = Relay(db, interval=0.02)
    relay.subscribe(
        "test.thing_happened", "bg-consumer", lambda uow, env: seen.append(env.payload["thing_id"])
    )
    relay.start()
    try:
        with db.uow() as uow:
            uow.emit(ThingHappened(thing_id="bg"))
            uow.commit()
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        relay.stop()
    assert seen == ["bg"]
