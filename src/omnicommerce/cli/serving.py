"""``omni serve --workers N``: N uvicorn processes, each listening on its own socket bound to the
same port with ``SO_REUSEPORT``, so that the kernel spreads new connections over them.

Uvicorn's own supervisor hands every worker one shared socket: whichever worker wakes first
accepts every pending connection at once, and keep-alive clients then stay on it. Measured with
the checkout benchmark: one worker at 84 % CPU while the other idled, and 32 clients slower than
8 (docs/performance.md). With a socket per worker each connection lands on one of them by hash.

The supervisor restarts a worker that dies (``kill -9`` included), stops them all gracefully on
SIGINT/SIGTERM, and a worker whose supervisor is gone stops by itself, so no orphan keeps the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("omnicommerce.serve")

APP = "omnicommerce.api.app:create_app"
CHECK_SECONDS = 0.5
RESTART_PAUSE_SECONDS = 1.0  # a worker that cannot start is not restarted in a tight loop
GRACEFUL_SECONDS = 30.0


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def ensure_port_free(host: str, port: int) -> None:
    """Fail at once, clearly, when something listens on the port already: with ``SO_REUSEPORT`` a
    second server of the same user would otherwise silently share it."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def serve_workers(*, host: str, port: int, workers: int, log_level: str) -> None:
    """Run ``workers`` API processes until SIGINT/SIGTERM, replacing any that dies (the caller
    checked the port is free: :func:`ensure_port_free`)."""
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(host, port, log_level, os.getpid()))
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    while not stopping.wait(CHECK_SECONDS):
        for slot, process in enumerate(processes):
            if not process.is_alive() and not stopping.is_set():
                log.warning("API worker %s exited (code %s); starting another", process.pid, process.exitcode)
                time.sleep(RESTART_PAUSE_SECONDS)
                processes[slot] = start()
    _stop_all(processes)


def _stop_all(processes: list[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
    deadline = time.monotonic() + GRACEFUL_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def run_worker(host: str, port: int, log_level: str, supervisor: int) -> None:
    """One API process: its own listening socket, uvicorn's server and the app factory."""
    import uvicorn

    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    threading.Thread(target=_exit_with, args=(supervisor,), name="omni-supervisor-watch", daemon=True).start()
    config = uvicorn.Config(APP, factory=True, log_level=log_level, access_log=False, http=OneWritePerAnswer)
    uvicorn.Server(config).run(sockets=[sock])


class OneWritePerAnswer(HttpToolsProtocol):
    """Uvicorn's httptools protocol, sending each answer in one write.

    Uvicorn writes a response's head as soon as the app starts it and the body when it comes:
    two system calls and two TCP segments per answer, and a client woken twice. The connection's
    writes made in one turn of the event loop go out together instead (a streamed body still
    goes out chunk by chunk, as each chunk is awaited)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, _CoalescingTransport(transport, self.loop)))


class _CoalescingTransport:
    """A transport whose writes wait for the end of the event loop's turn and leave as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _exit_with(supervisor: int) -> None:
    # Re-parented means the supervisor died without stopping us (kill -9 of it alone).
    while os.getppid() == supervisor:
        time.sleep(1.0)
    with contextlib.suppress(ProcessLookupError):
        os.kill(os.getpid(), signal.SIGTERM)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
