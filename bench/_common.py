"""Shared benchmark plumbing: a scratch PostgreSQL database, a server process, pgbench, percentiles."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
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
    database_url: str, *, port: int, workers: int = 2, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``omni serve`` in a child process until the block ends; yields the base URL."""
    env = dict(os.environ, OMNI_DATABASE_URL=database_url, OMNI_LOG_LEVEL="WARNING", **(extra_env or {}))
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
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
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
