"""A payment gateway with faults on demand, installed into the in-process app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI

from omnicommerce.orders.api import get_provider
from omnicommerce.orders.payments import PaymentResult, ProviderTimeout, TestPaymentProvider
from omnicommerce.platform.db import Database


def _open() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@dataclass
class FlakyGateway:
    """The test gateway, with faults: the first ``lose`` charges go through but their answers
    are lost (a time-out after the money moved; a retry by key gets the answer); a void waits
    until ``may_void`` is set, then fails ``void_outages`` times (gateway unreachable)."""

    inner: TestPaymentProvider
    lose: int = 1
    void_outages: int = 0
    name: str = "test"
    charged: threading.Event = field(default_factory=threading.Event)
    may_void: threading.Event = field(default_factory=_open)

    def authorize(self, amount: int, currency: str, token: str, key: str, capture: bool) -> PaymentResult:
        result = self.inner.authorize(amount, currency, token, key, capture)
        if self.lose > 0:
            self.lose -= 1
            self.charged.set()
            raise ProviderTimeout("answer lost after the charge")
        return result

    def capture(self, reference: str, idempotency_key: str) -> PaymentResult:
        return self.inner.capture(reference, idempotency_key)

    def void(self, reference: str | None, idempotency_key: str) -> PaymentResult:
        self.may_void.wait(timeout=20)
        if self.void_outages > 0:
            self.void_outages -= 1
            raise ProviderTimeout("gateway unreachable")
        return self.inner.void(reference, idempotency_key)

    def refund(self, reference: str, amount: int, idempotency_key: str) -> PaymentResult:
        return self.inner.refund(reference, amount, idempotency_key)


@pytest.fixture
def gateway(app: FastAPI, db: Database) -> Iterator[FlakyGateway]:
    flaky = FlakyGateway(TestPaymentProvider(db))
    app.dependency_overrides[get_provider] = lambda: flaky
    yield flaky
    flaky.may_void.set()
    app.dependency_overrides.pop(get_provider, None)
