"""The scheduler: due jobs run by themselves inside the API process; with several schedulers on
one database (processes, here separate engines) each job runs in one of them at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from omnicommerce.api.app import create_app
from omnicommerce.platform import clock
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.scheduler import JOBS, PeriodicJob, Scheduler, load_jobs
from tests.integration.fulfillment.support import NEAR, levels, seed, shopper
from tests.integration.orders.shop import new_cart

WAIT_SECONDS = 20.0  # a generous bound for a thread ticking every 20 ms: never a timing claim


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class CountingScheduler(Scheduler):
    """Counts the leases it found taken by the other scheduler."""

    refused = 0

    def _take_lease(self, job: PeriodicJob, now: datetime) -> bool:
        taken = super()._take_lease(job, now)
        self.refused += not taken
        return taken


def _runs(scheduler: Scheduler, name: str) -> int:
    return next((s.runs for s in scheduler.states() if s.name == name), 0)


def test_every_job_is_registered_and_an_interval_of_0_turns_it_off(db: Database, settings: Settings) -> None:
    names = {j.name for j in load_jobs()}
    assert {"inventory.expire-holds", "fulfillment.sweep", "fulfillment.reoptimize"} <= names
    off = Settings(**{**settings.model_dump(), "reoptimize_seconds": 0})
    assert "fulfillment.reoptimize" in Scheduler(db, settings).jobs
    assert "fulfillment.reoptimize" not in Scheduler(db, off).jobs


def test_a_due_job_runs_inside_the_api_without_anyone_calling_it(db: Database, settings: Settings) -> None:
    """Abandoned carts' holds are released by the scheduler the API process runs."""
    seed(db, {"SKU-A": {NEAR: 5}})
    fast = Settings(**{**settings.model_dump(), "scheduler_tick_seconds": 0.02, "hold_sweep_seconds": 0.2})
    with TestClient(create_app(fast, db=db, run_relay=False)) as client:
        new_cart(client, shopper(db), {"SKU-A": 2}, fulfillment=None)
    assert levels(db, "SKU-A")[NEAR] == (5, 2)
    ahead = timedelta(seconds=fast.reservation_ttl_seconds + 60)  # the cart was abandoned
    clock.set_clock(lambda: datetime.now(UTC) + ahead)
    app = create_app(fast, db=db)  # run_relay=True: what `omni serve` starts
    assert app.state.scheduler is not None
    with TestClient(app):
        assert wait_until(lambda: levels(db, "SKU-A")[NEAR] == (5, 0))
        assert wait_until(lambda: _runs(app.state.scheduler, "inventory.expire-holds") >= 1)  # recorded
    states = {s.name: s for s in app.state.scheduler.states()}
    hold_sweep = states["inventory.expire-holds"]
    assert hold_sweep.runs >= 1 and hold_sweep.failures == 0 and hold_sweep.lease_owner is None
    assert hold_sweep.last_outcome is not None and hold_sweep.last_outcome.startswith("holds released")
    assert hold_sweep.last_finished_at is not None
    assert hold_sweep.next_run_at == hold_sweep.last_finished_at + timedelta(seconds=fast.hold_sweep_seconds)
    assert states["fulfillment.sweep"].runs == 0  # its first run is one interval (300 s) after start


def test_two_schedulers_never_run_the_same_job_at_once(db: Database, settings: Settings) -> None:
    fast = Settings(**{**settings.model_dump(), "scheduler_tick_seconds": 0.005, "hold_sweep_seconds": 0.001})
    lock = threading.Lock()
    running: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    ran_by: list[str] = []

    def busy_job(db_: Database, settings_: Settings) -> str:
        owner = threading.current_thread().name
        with lock:
            running.append(owner)
            if len(running) > 1:
                overlaps.append(tuple(running))
            ran_by.append(owner)
        time.sleep(0.03)  # long enough for the other scheduler's ticks to find it due
        with lock:
            running.remove(owner)
        return "ok"

    job = PeriodicJob("test.busy", busy_job, "hold_sweep_seconds", 60.0, "a job that takes a while")
    engines = [Database(db.url, pool_size=2) for _ in range(2)]  # two processes' connection pools
    schedulers = [CountingScheduler(e, fast, [job], owner=f"proc-{i}") for i, e in enumerate(engines)]
    for i, s in enumerate(schedulers):
        s.thread_name = f"proc-{i}"
        s.start()
    try:
        assert wait_until(lambda: len(ran_by) >= 12)
    finally:
        for s in schedulers:
            s.stop()
    [state] = [s for s in schedulers[0].states() if s.name == "test.busy"]
    for e in engines:
        e.dispose()
    assert overlaps == []
    assert sum(s.refused for s in schedulers) > 0  # they did contend: a lease was found taken
    assert state.runs == len(ran_by)  # every run went through the lease row
    assert state.failures == 0


def test_a_live_lease_blocks_and_a_dead_one_expires(db: Database, settings: Settings) -> None:
    ran: list[str] = []
    job = PeriodicJob("test.once", lambda d, s: ran.append("x"), "hold_sweep_seconds", 30.0, "")
    alive = Scheduler(db, settings, [job], owner="alive")
    other = Scheduler(db, settings, [job], owner="other")
    start = clock.now()
    clock.set_clock(lambda: start)
    alive._registered_states()
    assert other.run_once() == 0  # first due one interval after registration
    due = start + timedelta(seconds=settings.hold_sweep_seconds)
    clock.set_clock(lambda: due)
    assert alive._take_lease(job, due)  # alive is "running" it now
    assert not other._take_lease(job, due)
    assert other.run_once() == 0 and ran == []
    # alive died mid-run: once its lease is past, another process takes over
    later = due + timedelta(seconds=31)
    clock.set_clock(lambda: later)
    assert other.run_once() == 1 and ran == ["x"]
    [state] = other.states()
    assert state.lease_owner is None and state.next_run_at == later + timedelta(
        seconds=settings.hold_sweep_seconds
    )


def test_a_failing_job_is_retried_soon_and_counted(db: Database, settings: Settings) -> None:
    def broken(d: Database, s: Settings) -> None:
        raise RuntimeError("provider down")

    job = PeriodicJob("test.broken", broken, "pickup_sweep_seconds", 30.0, "")
    scheduler = Scheduler(db, settings, [job])
    start = clock.now()
    clock.set_clock(lambda: start)
    assert scheduler.run_once() == 0
    now = start + timedelta(seconds=settings.pickup_sweep_seconds)
    clock.set_clock(lambda: now)
    assert scheduler.run_once() == 1
    [state] = scheduler.states()
    assert state.failures == 1 and state.last_outcome == "failed: RuntimeError: provider down"
    assert state.next_run_at == now + timedelta(seconds=30)  # not the 300 s interval
    assert state.lease_owner is None
    assert "fulfillment.sweep" in JOBS
