"""Helpers of the engagement API tests: shoppers, keys and a provider that refuses."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from omnicommerce.engagement.providers import Outgoing, ProviderError
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

API = "/api/v1"
MESSAGING = (Scope.ENGAGEMENT_READ, Scope.ENGAGEMENT_WRITE)
CASES = (Scope.CASES_READ, Scope.CASES_WRITE)


def sign_up(
    client: TestClient, email: str, *, phone: str | None = None, channel: str = "web"
) -> tuple[str, dict[str, str]]:
    """(customer id, the customer's own Authorization header)."""
    body: dict[str, Any] = {"email": email, "password": "s3cret-pass", "channel": channel}
    if phone is not None:
        body["phone"] = phone
    res = client.post(f"{API}/auth/sign-up", json=body)
    assert res.status_code == 201, res.text
    signed = res.json()
    return signed["customer_id"], bearer(signed["access_token"])


def key(
    db: Database, *scopes: str, channel: str | None = None, location: str | None = None
) -> dict[str, str]:
    return bearer(make_key(db, *scopes, channel=channel, location=location))


def grant(client: TestClient, db: Database, customer_id: str, channel: str, *, granted: bool = True) -> None:
    res = client.put(
        f"{API}/customers/{customer_id}/consents",
        json={
            "source": "test",
            "consents": [{"purpose": "marketing", "channel": channel, "granted": granted}],
        },
        headers=key(db, Scope.CUSTOMERS_WRITE, Scope.CUSTOMERS_READ),
    )
    assert res.status_code == 200, res.text


def send(client: TestClient, headers: dict[str, str], customer_id: str, **body: Any) -> Any:
    payload = {"channel": "email", "purpose": "transactional", "body": "Your order is ready", **body}
    return client.post(f"{API}/customers/{customer_id}/messages", json=payload, headers=headers)


def problem_code(res: Any) -> str:
    assert res.headers["content-type"].startswith("application/problem+json"), res.text
    return str(res.json()["type"]).rsplit("/", 1)[-1]


class RefusingProvider:
    """A provider whose account is out of credit."""

    name = "refusing"

    def send(self, message: Outgoing) -> str:
        raise ProviderError("account suspended")
