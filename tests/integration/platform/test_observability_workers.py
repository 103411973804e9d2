"""`omni serve --workers 2` as deployed: /metrics merges every worker's figures (prometheus
multiprocess mode), and the server's own log output is JSON lines carrying request ids."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    (tmp_path / "prom").mkdir()
    log = tmp_path / "server.log"
    env = dict(
        os.environ,
        OMNI_DATABASE_URL=f"sqlite:///{tmp_path / 'omni.db'}",
        OMNI_LOG_FORMAT="json",
        OMNI_LOG_LEVEL="INFO",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
    )
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnicommerce.cli.main", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield base, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_metrics_merge_the_workers_and_logs_are_json_with_request_ids(
    two_workers: tuple[str, Path],
) -> None:
    base, log = two_workers
    with httpx.Client(base_url=base) as client:
        for i in range(40):
            # A fresh connection each time, so both workers get a share of the requests.
            res = httpx.get(f"{base}/api/v1/orders/ord_{i}", headers={"X-Request-Id": f"probe-{i}"})
            assert res.status_code == 401
        text = client.get("/metrics").text
    counts = {
        s.labels["route"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "omni_http_request_duration_seconds_count" and s.labels.get("status") == "4xx"
    }
    assert counts["/api/v1/orders/{order_id}"] == 40  # every worker's requests, whichever answered

    time.sleep(0.5)  # let the workers flush their last lines
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [e for e in entries if e["logger"] == "omnicommerce.access"]
    assert {e["request_id"] for e in access} >= {f"probe-{i}" for i in range(40)}
    assert all(
        e["route"] == "/api/v1/orders/{order_id}" for e in access if e["request_id"].startswith("probe-")
    )
    assert {e["pid"] for e in entries} and all(isinstance(e["pid"], int) for e in entries)
