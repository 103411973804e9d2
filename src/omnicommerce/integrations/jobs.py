"""The webhook dispatcher: sends due deliveries, signed, and records each attempt.

Each pass claims due deliveries (one transaction; the claim leases them past the send timeout),
POSTs them outside any transaction, then records every outcome in one transaction. A 2xx
settles a delivery; anything else (status, time-out, refused destination) schedules the next
try with exponential backoff until ``OMNI_WEBHOOK_MAX_ATTEMPTS``. Redirects are not followed,
and unless ``OMNI_WEBHOOK_ALLOW_PRIVATE_NETWORKS`` is set a host resolving to a loopback,
private or link-local address is refused at send time (SSRF).
"""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx

from omnicommerce.integrations import service
from omnicommerce.integrations.domain import Attempt, AttemptResult, DueDelivery, blocked_address, sign
from omnicommerce.platform import clock
from omnicommerce.platform.background import BackgroundLoop
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database

log = logging.getLogger("omnicommerce.webhooks")

BATCH = 50
SENDERS = 4
ERROR_TEXT_LIMIT = 300


def _resolves_to_private(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False  # the request then fails as unreachable
    return any(blocked_address(str(info[4][0])) for info in infos)


class WebhookDispatcher(BackgroundLoop):
    """Runs on a thread beside the relay (``omni serve``) or the worker (``omni worker``); any
    number may run at once against PostgreSQL."""

    thread_name = "omni-webhooks"

    def __init__(self, db: Database, settings: Settings, *, interval: float = 0.5) -> None:
        super().__init__(interval=interval)
        self.join_timeout = settings.webhook_timeout_seconds + 5
        self.db = db
        self.settings = settings
        self._client: httpx.Client | None = None  # made on first send: most apps never send
        self._pool: ThreadPoolExecutor | None = None

    def run_once(self) -> int:
        """Send every delivery due now (one batch); returns how many were attempted."""
        with self.db.uow(readonly=True) as reader:
            if not service.any_due(reader):
                return 0
        with self.db.uow() as uow:
            due = service.claim_due(
                uow, limit=BATCH, lease_seconds=self.settings.webhook_timeout_seconds + 30
            )
            uow.commit()
        if not due:
            return 0
        if self._pool is None:
            self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="omni-webhook")
        results = list(self._pool.map(self.send, due))
        with self.db.uow() as uow:
            service.settle_all(
                uow,
                zip(due, results, strict=True),
                max_attempts=self.settings.webhook_max_attempts,
                backoff_base=self.settings.webhook_backoff_base_seconds,
            )
            uow.commit()
        return len(due)

    def send(self, due: DueDelivery) -> AttemptResult:
        host = urlsplit(due.url).hostname or ""
        if not self.settings.webhook_allow_private_networks and (
            host == "localhost" or blocked_address(host) or _resolves_to_private(host)
        ):
            return AttemptResult(Attempt.ERROR, error="destination resolves to a private address; refused")
        request = sign(due.secret, message_id=due.event_id, body=due.payload, at=clock.now())
        try:
            response = self.client.post(due.url, content=request.body.encode(), headers=request.headers)
        except httpx.HTTPError as exc:
            return AttemptResult(Attempt.ERROR, error=f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT])
        if 200 <= response.status_code < 300:
            return AttemptResult(Attempt.OK, status_code=response.status_code)
        return AttemptResult(
            Attempt.ERROR, status_code=response.status_code, error=f"HTTP {response.status_code}"
        )

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.settings.webhook_timeout_seconds, follow_redirects=False)
        return self._client

    def stop(self) -> None:
        super().stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
