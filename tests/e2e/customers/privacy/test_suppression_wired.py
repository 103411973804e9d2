"""An erased person is not re-created by their next event or sign-up: ingestion and customer
creation consult the suppression list (``customers.privacy.service.is_suppressed`` /
``suppressed`` / ``check_not_suppressed``). Passes once the lead has wired those calls into the
ingestion path and customer creation (see docs/privacy.md, "Suppression")."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient
from sqlalchemy import func, or_, select

from omnicommerce.customers.models import customer_identities, customers
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

EMAIL = "erased.person@example.com"


def _traces(db: Database) -> int:
    with db.engine.connect() as conn:
        people = conn.execute(select(func.count()).select_from(customers).where(customers.c.email == EMAIL))
        links = conn.execute(
            select(func.count())
            .select_from(customer_identities)
            .where(or_(customer_identities.c.value == EMAIL, customer_identities.c.value == "anon-erased-1"))
        )
        return int(people.scalar_one()) + int(links.scalar_one())


def test_the_next_event_or_sign_up_does_not_bring_them_back(client: TestClient, db: Database) -> None:
    events_key = make_key(db, Scope.EVENTS_WRITE)
    basic = {"Authorization": "Basic " + base64.b64encode(f"{events_key}:".encode()).decode()}
    identify = {"userId": "user-erased-1", "anonymousId": "anon-erased-1", "traits": {"email": EMAIL}}
    assert client.post("/v1/identify", json=identify, headers=basic).status_code == 200
    assert _traces(db) >= 2
    admin = bearer(make_key(db, Scope.PRIVACY_WRITE))
    assert client.post("/api/v1/privacy/erasure", json={"email": EMAIL}, headers=admin).status_code == 201
    assert _traces(db) == 0

    again = client.post("/v1/identify", json={**identify, "messageId": "after-erasure"}, headers=basic)
    assert again.status_code == 422, again.text  # rejected: its identifiers were erased on request
    batch = client.post(
        "/api/v1/events",
        json={"batch": [{"type": "page", "name": "Home", "anonymousId": "anon-erased-1"}]},
        headers=bearer(events_key),
    )
    assert batch.status_code == 200 and batch.json()["results"][0]["status"] == "rejected"
    sign_up = client.post(
        "/api/v1/auth/sign-up",
        json={"email": EMAIL.upper(), "password": "correct horse battery", "channel": "web"},
    )
    assert sign_up.status_code == 409 and sign_up.json()["type"].endswith("/identifier-suppressed")
    assert _traces(db) == 0
