"""``omni serve --workers 2``: connections spread over the workers, a port in use fails clearly,
and no worker outlives its supervisor."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil

from tests.integration.integrations.stream_support import free_port, wait_until

CONNECTIONS = 16


@contextmanager
def omni_serve(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ, OMNI_DATABASE_URL=f"sqlite:///{tmp_path / 'omni.db'}", OMNI_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnicommerce.cli.main", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: _answers(port) or proc.poll() is not None, timeout=60), (
            "server did not start"
        )
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert wait_until(lambda: listening(workers(proc), port) == 2, timeout=60)
        yield proc
    finally:
        for pid in [proc.pid, *workers(proc)]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def workers(proc: subprocess.Popen[bytes]) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
    except psutil.Error:
        return []


def listening(pids: list[int], port: int) -> int:
    """How many of ``pids`` listen on ``port`` (a worker still starting takes no connection)."""
    count = 0
    for pid in pids:
        with suppress(psutil.Error):
            held = psutil.Process(pid).net_connections(kind="tcp")
            count += any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in held)
    return count


def connections_per_worker(pids: list[int], port: int) -> list[int]:
    counts = []
    for pid in pids:
        held = psutil.Process(pid).net_connections(kind="tcp")
        counts.append(sum(1 for c in held if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port))
    return counts


def open_at_once(port: int, n: int) -> list[socket.socket]:
    """``n`` keep-alive connections opened in one burst, as a proxy or a load generator does
    (every connect in flight before any worker accepts), then one request on each."""
    held = [socket.socket() for _ in range(n)]
    for s in held:
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
    _, writable, _ = select.select([], held, [], 10)
    assert len(writable) == n
    for s in held:
        s.setblocking(True)
        s.settimeout(10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: omni\r\n\r\n")
    for s in held:
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    return held


def test_a_burst_of_connections_is_spread_over_both_workers(tmp_path: Path) -> None:
    port = free_port()
    with omni_serve(tmp_path, port) as proc:
        held = open_at_once(port, CONNECTIONS)
        try:
            per_worker = connections_per_worker(workers(proc), port)
        finally:
            for s in held:
                s.close()
    assert sum(per_worker) == CONNECTIONS and min(per_worker) >= 1, per_worker


def test_each_worker_listens_on_a_socket_of_its_own(tmp_path: Path) -> None:
    """The mechanism behind the spread: one socket shared by every worker (uvicorn's supervisor)
    lets the first worker to wake accept a whole burst — under load, all of it."""
    port = free_port()
    with omni_serve(tmp_path, port) as proc:
        sockets = [listening_socket(pid, port) for pid in workers(proc)]
    assert len(set(sockets)) == 2, sockets


def test_answers_small_and_large_come_whole_over_one_keep_alive_connection(tmp_path: Path) -> None:
    """Each answer leaves in one write (``OneWritePerAnswer``); a large one still arrives whole."""
    port = free_port()
    with omni_serve(tmp_path, port), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(3):
            assert client.get("/healthz").json() == {"status": "ok"}
            schema = client.get("/openapi.json")
            assert schema.status_code == 200 and len(schema.content) > 100_000
            assert schema.json()["info"]["title"] == "Omnicommerce API"
            assert client.head("/healthz").status_code in (200, 405)


def listening_socket(pid: int, port: int) -> str:
    """The kernel's identity (``socket:[inode]``) of the socket ``pid`` listens on ``port`` with."""
    [fd] = [
        c.fd
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def test_a_port_in_use_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, OMNI_DATABASE_URL=f"sqlite:///{tmp_path / 'omni.db'}")
        done = subprocess.run(
            [sys.executable, "-m", "omnicommerce.cli.main", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            capture_output=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr.decode()
    assert b"API docs" not in done.stdout  # refused before announcing where to open it


def test_workers_replaced_when_killed_and_gone_with_their_supervisor(tmp_path: Path) -> None:
    port = free_port()
    with omni_serve(tmp_path, port) as proc:
        first = workers(proc)
        os.kill(first[0], signal.SIGKILL)
        assert wait_until(lambda: first[0] not in workers(proc) and listening(workers(proc), port) == 2, 60)
        survivors = workers(proc)

        os.kill(proc.pid, signal.SIGKILL)  # the supervisor alone, without a chance to stop them
        proc.wait(timeout=10)
        assert wait_until(lambda: not any(psutil.pid_exists(p) for p in survivors), timeout=30)
        assert not _answers(port)


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    port = free_port()
    with omni_serve(tmp_path, port) as proc:
        pids = workers(proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        assert not any(psutil.pid_exists(p) for p in pids) and time.monotonic() - started < 40


def test_an_answer_leaves_in_one_write_and_nothing_is_lost_at_close() -> None:
    """The API's HTTP protocol sends the head and body written in one turn of the event loop as
    one write; closing sends what is pending first."""
    from omnicommerce.cli.serving import _CoalescingTransport

    class Recording:
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        loop = asyncio.get_running_loop()
        first, second = Recording(), Recording()
        answer = _CoalescingTransport(first, loop)  # type: ignore[arg-type]
        answer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        answer.write(b"{}")
        assert first.writes == []  # nothing sent before the turn ends
        await asyncio.sleep(0)
        closing = _CoalescingTransport(second, loop)  # type: ignore[arg-type]
        closing.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
        closing.close()
        assert second.closed
        return first.writes, second.writes

    one, closed = asyncio.run(scenario())
    assert one == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    assert closed == [b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"]
