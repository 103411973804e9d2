"""THE test of issue 5: a marker planted in every place personal data can reach (through the real
API) survives erasure in no text column of any table; the financial record stays."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.orders.models import order_lines, orders
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from omnicommerce.platform.outbox import outbox
from omnicommerce.platform.pii import ERASED
from tests.conftest import bearer, make_key
from tests.e2e.customers.privacy.support import EMAIL, MARKER, PHONE, Planted, marker_hits, plant_everywhere
from tests.e2e.integrations.test_webhooks_api import deliver
from tests.integration.integrations.receiver import webhook_receiver

# Where the planted person must be found before erasure: proof that the data really got there.
PLANTED_IN = {
    "customers.email",
    "customers.first_name",
    "customers.last_name",
    "customer_identities.value",
    "customer_events.payload",
    "customer_events.anonymous_id",
    "carts.email",
    "carts.fulfillment",
    "orders.email",
    "orders.fulfillment",
    "fulfillment_orders.arrival_car",
    "outbox.payload",  # curbside.arrived names the car
    "webhook_deliveries.payload",  # and so does its delivery to the partner
    "idempotency_records.body",
    "customer_custom_traits.value",  # the identify's firstName and address, kept as custom traits
    # engagement: a message to them and one from them, a service case and its note
    "messages.address",
    "messages.subject",
    "messages.body",
    "cases.subject",
    "case_notes.body",
}


def plant_in_engagement(client: TestClient, db: Database, person: Planted) -> None:
    """A message to them (their email, their name in it), one from them (their phone), and a
    service case about them with a note — through the real API."""
    staff = bearer(make_key(db, Scope.ENGAGEMENT_WRITE, Scope.CASES_WRITE))
    customer = person.customer_id
    sent = client.post(
        f"/api/v1/customers/{customer}/messages",
        json={"channel": "email", "purpose": "transactional", "subject": f"Hello {MARKER}",
              "body": f"Dear {MARKER}, your order is on its way."},
        headers={**staff, "Idempotency-Key": f"msg-{MARKER}"},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    inbound = client.post(
        f"/api/v1/customers/{customer}/messages/inbound",
        json={"channel": "sms", "address": PHONE, "body": f"This is {MARKER}, call me back"},
        headers=staff,
    )
    assert inbound.status_code == 201, inbound.text
    case = client.post(
        "/api/v1/cases",
        json={"customer_id": customer, "channel": "call_center", "subject": f"{MARKER} wants a refund",
              "note": f"{MARKER} called from 555-2671"},
        headers=staff,
    )  # fmt: skip
    assert case.status_code == 201, case.text


def test_no_trace_of_the_marker_survives_erasure(api: TestClient, hooks_app: FastAPI, db: Database) -> None:
    with webhook_receiver() as rx:
        person = plant_everywhere(api, hooks_app, db, rx.url)
        plant_in_engagement(api, db, person)
        deliver(hooks_app)
    before = marker_hits(db)
    assert set(before) >= PLANTED_IN, sorted(PLANTED_IN - set(before))
    admin = bearer(make_key(db, Scope.PRIVACY_WRITE))

    res = api.post("/api/v1/privacy/erasure", json={"email": EMAIL, "reason": "ticket 42"}, headers=admin)

    assert res.status_code == 201, res.text
    body = res.json()
    assert body["customer_id"] == person.customer_id
    assert body["erased"]["customers"] > 0 and body["erased"]["orders"] == 2
    assert body["erased"]["engagement"] == 4  # two messages, one case, one note
    assert body["suppressed_identifiers"] >= 4  # email, phone, user id, anonymous id, device id
    assert marker_hits(db) == {}
    deliver(hooks_app)  # the erasure's own event goes out too, and carries no personal data
    assert marker_hits(db) == {}

    # The financial record stays: amounts, SKUs, quantities, who (as an id) and when.
    with db.engine.connect() as conn:
        kept = {r.id: r for r in conn.execute(select(orders).where(orders.c.id.in_(person.order_ids)))}
        skus = set(
            conn.execute(
                select(order_lines.c.sku).where(order_lines.c.order_id.in_(person.order_ids))
            ).scalars()
        )
    assert {oid: r.total for oid, r in kept.items()} == person.order_totals
    assert {r.customer_id for r in kept.values()} == {person.customer_id} and skus == {"SKU-A"}
    assert all(r.email is None and r.placed_at is not None for r in kept.values())


def test_export_then_erasure_then_export(api: TestClient, hooks_app: FastAPI, db: Database) -> None:
    with webhook_receiver() as rx:
        person = plant_everywhere(api, hooks_app, db, rx.url)
        plant_in_engagement(api, db, person)
    admin = bearer(make_key(db, Scope.PRIVACY_WRITE))

    exported = api.post("/api/v1/privacy/export", json={"customer_id": person.customer_id}, headers=admin)

    assert exported.status_code == 200, exported.text
    data = exported.json()["data"]
    assert {"customers", "carts", "orders", "fulfillment", "integrations"} <= set(data)
    assert {"profiles", "identities", "consents", "traits", "merges", "segments", "events"} <= set(
        data["customers"]
    )
    assert data["customers"]["profiles"][0]["email"] == EMAIL
    assert "password_hash" not in data["customers"]["profiles"][0]
    assert {o["id"] for o in data["orders"]} == set(person.order_ids)
    assert any(MARKER in str(c["fulfillment"]) for c in data["carts"])
    assert any(MARKER in str(e["payload"]) for e in data["customers"]["events"])
    assert any(f.get("arrival_car") == f"red {MARKER}" for f in data["fulfillment"])
    assert data["integrations"], "the webhook deliveries about their orders"
    assert {r["record"] for r in data["engagement"]} == {"message", "case", "case_note"}
    assert sum(MARKER in str(r) for r in data["engagement"]) == 4

    erased = api.post("/api/v1/privacy/erasure", json={"customer_id": person.customer_id}, headers=admin)
    assert erased.status_code == 201, erased.text
    again = api.post("/api/v1/privacy/export", json={"customer_id": person.customer_id}, headers=admin).json()
    assert MARKER not in str(again["data"]) and "4155552671" not in str(again["data"])
    assert {o["id"] for o in again["data"]["orders"]} == set(person.order_ids)  # the orders remain
    journal = api.get(f"/api/v1/privacy/requests/{person.customer_id}", headers=admin).json()
    assert [j["kind"] for j in journal] == ["export", "erasure", "export"]
    assert MARKER not in str(journal)
    by_email = api.post("/api/v1/privacy/export", json={"email": EMAIL}, headers=admin)
    assert by_email.status_code == 404  # nobody holds that email any more


def test_erasure_keeps_the_events_of_others_and_the_ids_in_its_own(
    api: TestClient, hooks_app: FastAPI, db: Database
) -> None:
    with webhook_receiver() as rx:
        person = plant_everywhere(api, hooks_app, db, rx.url)
    with db.engine.connect() as conn:
        before = dict(conn.execute(select(outbox.c.id, outbox.c.payload)).all())
    admin = bearer(make_key(db, Scope.PRIVACY_WRITE))

    res = api.post("/api/v1/privacy/erasure", json={"customer_id": person.customer_id}, headers=admin)

    assert res.status_code == 201, res.text
    with db.engine.connect() as conn:
        after = dict(conn.execute(select(outbox.c.id, outbox.c.payload)).all())
    changed = {i for i in before if after[i] != before[i]}
    assert changed, "the curbside arrival named their car"
    assert all(ERASED in after[i] and person.customer_id in after[i] for i in changed)
    assert res.json()["erased"]["outbox"] == len(changed)
