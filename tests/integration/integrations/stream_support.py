"""Helpers for event-stream tests: per-test JetStream streams on the shared NATS, a private
nats-server that a test may stop and restart, and reading back what a stream holds."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy import text

from omnicommerce.platform.db import Database
from omnicommerce.platform.stream import StreamSettings, Worker

REPO = Path(__file__).resolve().parents[3]
PROBE_MODULE = "tests.integration.integrations.stream_probe"  # never imported here: see its docstring
PROBE_CONSUMER = "test.probe"
SHARED_NATS = os.environ.get("OMNI_TEST_NATS_URL", "nats://127.0.0.1:4222")
NATS_SERVER = "/usr/sbin/nats-server"


def unique_stream(url: str = SHARED_NATS, **overrides: object) -> StreamSettings:
    """A stream and subject prefix no other test uses."""
    tag = uuid.uuid4().hex[:10]
    cfg = StreamSettings(url=url, stream=f"T_{tag}", prefix=f"t{tag}")
    return replace(cfg, **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class StoredMessage:
    subject: str
    msg_id: str
    data: bytes
    headers: dict[str, str]


async def _read_all(cfg: StreamSettings, subject: str) -> list[StoredMessage]:
    nc = await nats.connect(cfg.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(cfg.stream)
        if info.state.messages == 0:
            return []
        pull = await js.pull_subscribe(
            subject,
            stream=cfg.stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, inactive_threshold=30
            ),
        )
        out: list[StoredMessage] = []
        while True:
            try:
                msgs = await pull.fetch(500, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            for m in msgs:
                headers = dict(m.headers or {})
                out.append(StoredMessage(m.subject, headers.get("Nats-Msg-Id", ""), m.data, headers))
        return out
    finally:
        await nc.close()


def stream_messages(cfg: StreamSettings, subject: str | None = None) -> list[StoredMessage]:
    """Every message the stream holds on ``subject`` (default: every event subject)."""
    return asyncio.run(_read_all(cfg, subject or f"{cfg.prefix}.>"))


async def _publish(cfg: StreamSettings, subject: str, data: bytes) -> None:
    nc = await nats.connect(cfg.url)
    try:
        await nc.jetstream().publish(subject, data, stream=cfg.stream)
    finally:
        await nc.close()


def publish_raw(cfg: StreamSettings, subject: str, data: bytes) -> None:
    """Publish ``data`` without a Nats-Msg-Id (a copy JetStream will not de-duplicate)."""
    asyncio.run(_publish(cfg, subject, data))


async def _delete(cfg: StreamSettings) -> None:
    nc = await nats.connect(cfg.url)
    try:
        with suppress(NotFoundError):
            await nc.jetstream().delete_stream(cfg.stream)
    finally:
        await nc.close()


def delete_stream(cfg: StreamSettings) -> None:
    asyncio.run(_delete(cfg))


@contextmanager
def temporary_stream() -> Iterator[StreamSettings]:
    """A stream of the test's own on the shared NATS, deleted afterwards."""
    cfg = unique_stream()
    try:
        yield cfg
    finally:
        delete_stream(cfg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateNats:
    """A nats-server of the test's own (JetStream on, file store under ``store``), so a test may
    stop and restart it without touching the shared one."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.store = store
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("private nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@contextmanager
def private_nats(store: Path) -> Iterator[PrivateNats]:
    server = PrivateNats(store)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- the probe subscriber's table -----------------------------------------------------------


@contextmanager
def probe_table(db: Database) -> Iterator[None]:
    """``stream_probe`` for the probe subscriber's effects; dropped after (it is no model's)."""
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS stream_probe"))
        conn.execute(text("CREATE TABLE stream_probe (event_id VARCHAR(40) NOT NULL, pid INTEGER NOT NULL)"))
    try:
        yield
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS stream_probe"))


def probe_rows(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT event_id FROM stream_probe")).scalars())


# --- omni processes -----------------------------------------------------------------------------


def omni(
    args: list[str], *, db: Database, cfg: StreamSettings, log: Path, **env: str
) -> subprocess.Popen[bytes]:
    """``omni ARGS`` as its own process against the test's database and stream."""
    environment = {
        **os.environ,
        "OMNI_DATABASE_URL": db.url,
        "OMNI_NATS_URL": cfg.url,
        "OMNI_NATS_STREAM": cfg.stream,
        "OMNI_NATS_SUBJECT_PREFIX": cfg.prefix,
        "OMNI_WORKER_ACK_WAIT_SECONDS": "2",
        "OMNI_WORKER_BACKOFF_SECONDS": "[0.2]",
        "OMNI_RELAY_INTERVAL_SECONDS": "0.05",
        "PYTHONPATH": str(REPO),
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "omnicommerce.cli.main", *args],
            cwd=REPO,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def probe_worker(
    db: Database, cfg: StreamSettings, log: Path, *, sleep: float = 0.0
) -> subprocess.Popen[bytes]:
    return omni(
        ["worker", "--import", PROBE_MODULE, "--consumer", PROBE_CONSUMER, "--no-webhooks"],
        db=db,
        cfg=cfg,
        log=log,
        OMNI_TEST_PROBE_SLEEP=str(sleep),
    )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait (SIGKILL if it will not go)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """``worker`` on a thread of its own, subscribed, until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    assert worker.ready.wait(15), "worker did not subscribe"
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=15)
