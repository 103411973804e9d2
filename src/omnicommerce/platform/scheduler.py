"""Periodic jobs: one scheduler per process, one run of a job at a time across every process.

A context declares its jobs in ``omnicommerce/<context>/jobs.py`` (or ``<context>/<sub>/jobs.py``)::

    @periodic("inventory.expire-holds", every="hold_sweep_seconds")
    def sweep_holds(db: Database, settings: Settings) -> str: ...

``every`` names the ``Settings`` field (``OMNI_*``) holding the interval in seconds; 0 turns the
job off. The :class:`Scheduler` runs inside ``omni serve`` and ``omni worker`` (``OMNI_SCHEDULER_ENABLED``).
Every job has a lease row in ``scheduler_jobs``: a process runs a job only after taking the
lease with a conditional UPDATE (due, and nobody's lease still running), so with any number of
processes on PostgreSQL or SQLite each job runs once per interval, never twice at the same
time. A process that dies mid-run leaves its lease to expire (``lease_seconds``) and another
takes over. Jobs run outside any transaction (they open their own) and must be safe to re-run:
a run cut short is simply run again.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pkgutil
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Integer, String, Table, Text, and_, or_, select, update

from omnicommerce.platform import clock
from omnicommerce.platform.background import BackgroundLoop
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, UTCDateTime, conflict_insert, metadata

log = logging.getLogger("omnicommerce.scheduler")

RETRY_AFTER_FAILURE_SECONDS = 30.0  # a failed run is tried again this soon (or at its interval, if sooner)
OUTCOME_LIMIT = 500

scheduler_jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("next_run_at", UTCDateTime(), nullable=False),
    Column("lease_owner", String(120), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("last_started_at", UTCDateTime(), nullable=True),
    Column("last_finished_at", UTCDateTime(), nullable=True),
    Column("last_outcome", Text(), nullable=True),
    Column("runs", Integer(), nullable=False, default=0),
    Column("failures", Integer(), nullable=False, default=0),
)

JobFn = Callable[[Database, Settings], object]


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    run: JobFn
    every: str  # the Settings field with the interval in seconds (0: off)
    lease_seconds: float  # longer than a run ever takes; a dead process's lease expires after it
    description: str

    def interval(self, settings: Settings) -> float:
        return float(getattr(settings, self.every))


JOBS: dict[str, PeriodicJob] = {}


def periodic(name: str, *, every: str, lease_seconds: float = 900.0) -> Callable[[JobFn], JobFn]:
    """Register ``fn`` as a periodic job named ``name``, run every ``settings.<every>`` seconds."""
    if every not in Settings.model_fields:
        raise ValueError(f"periodic job {name!r}: no setting {every!r}")

    def register(fn: JobFn) -> JobFn:
        doc = (fn.__doc__ or "").strip().split("\n\n")[0]
        JOBS[name] = PeriodicJob(name, fn, every, lease_seconds, " ".join(doc.split()))
        return fn

    return register


def load_jobs(package: str = "omnicommerce") -> list[PeriodicJob]:
    """Import every ``<package>.<context>[.<sub>].jobs`` module and return the registered jobs.
    Found by name, like the subscribers, so the platform depends on no context."""
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        if not info.ispkg:
            continue
        _import_if_present(f"{package}.{info.name}.jobs")
        context = importlib.import_module(f"{package}.{info.name}")
        for sub in pkgutil.iter_modules(context.__path__):
            if sub.ispkg:
                _import_if_present(f"{package}.{info.name}.{sub.name}.jobs")
    return sorted(JOBS.values(), key=lambda j: j.name)


def _import_if_present(name: str) -> None:
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class JobState:
    name: str
    next_run_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_outcome: str | None
    runs: int
    failures: int


class Scheduler(BackgroundLoop):
    """Checks every ``OMNI_SCHEDULER_TICK_SECONDS`` which jobs are due and runs the ones whose
    lease it takes, one after another on its thread."""

    thread_name = "omni-scheduler"

    def __init__(
        self,
        db: Database,
        settings: Settings,
        jobs: Sequence[PeriodicJob] | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        super().__init__(interval=settings.scheduler_tick_seconds)
        self.db = db
        self.settings = settings
        chosen = load_jobs() if jobs is None else jobs
        self.jobs = {j.name: j for j in chosen if j.interval(settings) > 0}
        self.owner = owner or _default_owner()
        self.join_timeout = 30.0
        self._known_due: datetime | None = None  # earliest next run seen; no read before it

    def start(self) -> None:
        if self.jobs:
            super().start()

    def drain(self) -> int:
        """One pass per tick (a job due again at once waits for the next tick: stop stays prompt)."""
        return self.run_once()

    def run_once(self) -> int:
        """Run every job that is due and whose lease this process takes; returns how many ran."""
        now = clock.now()
        if self._known_due is not None and now < self._known_due:
            return 0
        states = self._registered_states()
        ran = 0
        for state in states:
            job = self.jobs.get(state.name)
            if job is not None and state.next_run_at <= now and self._take_lease(job, now):
                self._run(job)
                ran += 1
        if ran:
            states = self.states()
        self._known_due = min((s.next_run_at for s in states if s.name in self.jobs), default=None)
        return ran

    def run_job(self, name: str) -> bool:
        """Run ``name`` now, even if its interval turns it off, unless a process is running it
        (an operator's ``omni jobs run``)."""
        job = self.jobs.get(name) or JOBS[name]
        self._add_rows([job])
        with self.db.engine.begin() as conn:
            conn.execute(
                update(scheduler_jobs).where(scheduler_jobs.c.name == name).values(next_run_at=clock.now())
            )
        if not self._take_lease(job, clock.now()):
            return False
        self._run(job)
        return True

    def states(self) -> list[JobState]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(scheduler_jobs).order_by(scheduler_jobs.c.name)).all()
        return [JobState(**_utc(row._mapping)) for row in rows]

    def _registered_states(self) -> list[JobState]:
        """The jobs' states, after adding the lease row of any job that has none yet. A new row
        is first due one interval from now: a fleet starting up (or a benchmark) is not met by
        every job at once."""
        states = self.states()
        missing = [job for name, job in sorted(self.jobs.items()) if name not in {s.name for s in states}]
        if not missing:
            return states
        self._add_rows(missing)
        return self.states()

    def _add_rows(self, jobs: Sequence[PeriodicJob]) -> None:
        now = clock.now()
        rows = [
            {"name": j.name, "next_run_at": now + timedelta(seconds=j.interval(self.settings))} for j in jobs
        ]
        with self.db.engine.begin() as conn:
            conn.execute(
                conflict_insert(scheduler_jobs, self.db.dialect)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["name"])
            )

    def _take_lease(self, job: PeriodicJob, now: datetime) -> bool:
        """The conditional UPDATE that lets exactly one process run a due job."""
        t = scheduler_jobs.c
        with self.db.engine.begin() as conn:
            taken = conn.execute(
                update(scheduler_jobs)
                .where(
                    t.name == job.name,
                    t.next_run_at <= now,
                    or_(t.lease_until.is_(None), t.lease_until <= now),
                )
                .values(
                    lease_owner=self.owner,
                    lease_until=now + timedelta(seconds=job.lease_seconds),
                    last_started_at=now,
                )
            ).rowcount
        return taken == 1

    def _run(self, job: PeriodicJob) -> None:
        interval = job.interval(self.settings)
        try:
            outcome = job.run(self.db, self.settings)
        except Exception as exc:
            log.warning("job %s failed (%s: %s)", job.name, type(exc).__name__, exc, exc_info=True)
            self._release(
                job, f"failed: {type(exc).__name__}: {exc}", min(interval, RETRY_AFTER_FAILURE_SECONDS), 1
            )
            return
        log.info("job %s: %s", job.name, outcome)
        self._release(job, str(outcome), interval, 0)

    def _release(self, job: PeriodicJob, outcome: str, after: float, failed: int) -> None:
        t = scheduler_jobs.c
        finished = clock.now()
        with self.db.engine.begin() as conn:
            conn.execute(
                update(scheduler_jobs)
                .where(and_(t.name == job.name, t.lease_owner == self.owner))
                .values(
                    lease_owner=None,
                    lease_until=None,
                    last_finished_at=finished,
                    next_run_at=finished + timedelta(seconds=after),
                    last_outcome=outcome[:OUTCOME_LIMIT],
                    runs=t.runs + 1,
                    failures=t.failures + failed,
                )
            )


def _utc(row: Any) -> dict[str, Any]:
    return {k: clock.as_utc(v) if isinstance(v, datetime) else v for k, v in dict(row).items()}


def describe(jobs: Iterable[PeriodicJob], settings: Settings) -> list[tuple[str, float, str, str]]:
    """(name, interval seconds, setting, description) of each job, for docs and ``omni jobs list``."""
    return [(j.name, j.interval(settings), f"OMNI_{j.every.upper()}", j.description) for j in jobs]
