"""Message providers: what actually sends an email, an SMS, a push or a WhatsApp message.

A provider is called inside the request that records the message, before the commit, with the
message id as its idempotency key: a provider that honours it delivers once even when the
request is retried (the Idempotency-Key of the request replays the first answer). The shipped
``log`` provider sends nothing: it logs the message id and channel (never the address or the
text) and keeps the last messages in memory, for development and tests.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("omnicommerce.engagement")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What a provider needs to send one message."""

    message_id: str  # the idempotency key at the provider
    channel: str
    address: str
    subject: str | None
    body: str


class ProviderError(Exception):
    """The provider refused or could not take the message; ``str(exc)`` is stored (≤ 300 chars),
    so it must not contain the address or the text."""


class Provider(Protocol):
    name: str

    def send(self, message: Outgoing) -> str:
        """Hand the message over; returns the provider's message id. Raises ProviderError."""
        ...


class LogProvider:
    """Records instead of sending: no network."""

    name = "log"

    def __init__(self, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self.sent: deque[Outgoing] = deque(maxlen=keep)

    def send(self, message: Outgoing) -> str:
        with self._lock:
            self.sent.append(message)
        log.info("message %s (%s) recorded by the log provider", message.message_id, message.channel)
        return f"log_{message.message_id}"


_default: Provider = LogProvider()


def current() -> Provider:
    """The process's provider (``log`` unless one was installed)."""
    return _default


def install(provider: Provider) -> Provider:
    """Make ``provider`` the process's provider; returns the one it replaces."""
    global _default
    previous, _default = _default, provider
    return previous
