"""Custom traits over HTTP: a Segment identify's traits on the profile next to the computed ones,
the latest event winning over a late one, and gone after a privacy erasure (exported before)."""

import base64

from fastapi.testclient import TestClient

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

API = "/api/v1"


def _identify(client: TestClient, write_key: str, message_id: str, timestamp: str, **traits: object) -> dict:
    basic = {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}
    body = {"messageId": message_id, "userId": "u-ada", "timestamp": timestamp, "traits": traits}
    res = client.post("/v1/identify", json=body, headers=basic)
    assert res.status_code == 200, res.text
    return res.json()["results"][0]


def test_identify_traits_show_on_the_profile_latest_event_first(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    first = _identify(
        client, key, "t1", "2026-11-30T10:00:00Z", email="ada@example.com", plan="pro", shoe_size=38
    )
    _identify(client, key, "t0", "2026-11-30T09:00:00Z", plan="free", company="Analytical Engines")
    customer_id = first["customer_id"]
    reader = bearer(make_key(db, Scope.CUSTOMERS_READ))

    profile = client.get(f"{API}/customers/{customer_id}/profile", headers=reader).json()

    assert profile["custom_traits"] == {"company": "Analytical Engines", "plan": "pro", "shoe_size": 38}
    assert profile["traits"]["event_count"] == 2  # the computed traits, next to them
    assert "email" not in profile["custom_traits"]  # an identifier: it is among the identities


def test_custom_traits_are_exported_and_erased(client: TestClient, db: Database) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    customer_id = _identify(
        client, key, "p1", "2026-11-30T10:00:00Z", email="ada@example.com", nickname="Countess"
    )["customer_id"]
    privacy = bearer(make_key(db, Scope.PRIVACY_WRITE))

    exported = client.post(f"{API}/privacy/export", json={"customer_id": customer_id}, headers=privacy)
    assert exported.status_code == 200, exported.text
    [kept] = exported.json()["data"]["customers"]["custom_traits"]
    assert (kept["name"], kept["value"]) == ("nickname", '"Countess"')

    erased = client.post(f"{API}/privacy/erasure", json={"customer_id": customer_id}, headers=privacy)
    assert erased.status_code == 201, erased.text
    reader = bearer(make_key(db, Scope.CUSTOMERS_READ))
    assert client.get(f"{API}/customers/{customer_id}/profile", headers=reader).json()["custom_traits"] == {}
