"""A background loop: passes of work on a daemon thread, for the outbox relay and job runners."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("omnicommerce.background")


class BackgroundLoop:
    """Runs :meth:`drain` every ``interval`` seconds on a daemon thread until :meth:`stop`.

    A failing pass is logged and retried a second later: a loop must outlive a database restart
    or a broker outage, and whatever it did not finish stays to be done.
    """

    thread_name = "omni-background"
    join_timeout = 5.0

    def __init__(self, *, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One pass; returns how much it did (0 = nothing left for now)."""
        raise NotImplementedError

    def drain(self) -> int:
        total = 0
        while (n := self.run_once()) > 0:
            total += n
        return total

    def _pass_due(self) -> bool:
        """Whether this tick should run a pass (the relay skips idle ticks)."""
        return True

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._pass_due():
                continue
            try:
                self.drain()
            except Exception as exc:
                log.warning(
                    "%s pass failed (%s: %s); will retry",
                    self.thread_name,
                    type(exc).__name__,
                    exc,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                self._stop.wait(1.0)
