"""Shared benchmark plumbing: a scratch PostgreSQL database, a server process, pgbench, percentiles."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("OMNI_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@contextmanager
def scratch_database(prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database; yields (name, SQLAlchemy URL) and drops it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host = PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0]
    try:
        yield name, f"postgresql+psycopg://{host}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pgbench_tps(seconds: int = 15, clients: int = 8, threads: int = 2, scale: int = 10) -> float:
    """``pgbench -b tpcb-like -c 8 -j 2`` on the same server, in its own scratch database."""
    with scratch_database("omni_pgbench") as (name, _):
        base = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
        subprocess.run(
            ["pgbench", *base, "-i", "-q", "-s", str(scale), name], check=True, capture_output=True
        )
        out = subprocess.run(
            [
                "pgbench",
                *base,
                "-b",
                "tpcb-like",
                "-c",
                str(clients),
                "-j",
                str(threads),
                "-T",
                str(seconds),
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    match = re.search(r"tps = ([0-9.]+)", out)
    if not match:
        raise RuntimeError(f"could not read pgbench output:\n{out}")
    return float(match.group(1))


@contextmanager
def server(
    database_url: str,
    *,
    port: int,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Run ``omni serve`` in a child process until the block ends; yields the base URL.

    The server's stderr goes to ``log_path`` (by default a temporary file, removed afterwards): a
    pipe nobody reads would block a server that logs much, e.g. a stack trace per failed request."""
    env = dict(os.environ, OMNI_DATABASE_URL=database_url, OMNI_LOG_LEVEL="WARNING", **(extra_env or {}))
    own_log = log_path is None
    if log_path is None:
        with tempfile.NamedTemporaryFile(prefix="omni-bench-server-", suffix=".log", delete=False) as tmp:
            log_path = Path(tmp.name)
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omnicommerce.cli.main",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text(errors='replace')[-4000:]}")
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not become ready in 60 s")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        if own_log:
            log_path.unlink(missing_ok=True)


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plain_pg_url(database_url: str) -> str:
    """The libpq URL (for psycopg) behind a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def warm_keys(base: str, secrets: Sequence[str], rounds: int = 8) -> None:
    """A few authenticated reads per key so every worker has verified and cached each key
    (as a server that has been up a while has) before the measured part starts."""
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(rounds):
            for secret in secrets:
                client.get(
                    "/api/v1/carts/crt_00000000000000000000000000",
                    headers={"Authorization": f"Bearer {secret}"},
                )
