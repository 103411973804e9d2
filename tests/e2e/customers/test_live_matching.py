"""A new profile that shares no identifier with anyone is scored against stored profiles after
commit (the customer.created subscriber): merged from a trusted source, proposed otherwise, and
never merged from a shopper's own sign-up."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from omnicommerce.customers import linkage
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.customers.people import MAPPING, people

API = "/api/v1"


@pytest.fixture(autouse=True)
def _fresh_models() -> None:
    linkage.forget_models()


@pytest.fixture
def known(client: TestClient, admin_headers: dict[str, str]) -> list[dict[str, str]]:
    data = people(200, seed=3)
    res = client.post(
        f"{API}/customers/import",
        params={"source": "crm", "mapping": json.dumps(MAPPING)},
        content=data.csv().encode(),
        headers={**admin_headers, "Content-Type": "text/csv"},
    )
    assert res.status_code == 200, res.text
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    return data.rows


def _identify(client: TestClient, key: str, person: dict[str, str], user_id: str) -> str:
    traits = {
        "email": f"{user_id}@elsewhere.example",
        "firstName": person["First Name"],
        "lastName": person["Last Name"],
        "birthday": person["DOB"],
        "address": {"street": f"{person['Street No']} {person['Street']}", "postalCode": person["Zip"]},
    }
    res = client.post(
        f"{API}/events",
        json={"batch": [{"type": "identify", "userId": user_id, "traits": traits}]},
        headers=bearer(key),
    )
    assert res.status_code == 200, res.text
    customer_id = res.json()["results"][0]["customer_id"]
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    return customer_id


def _root(client: TestClient, headers: dict[str, str], customer_id: str) -> list[dict]:
    return client.get(f"{API}/customers/{customer_id}/merges", headers=headers).json()


def test_trusted_source_merges_on_the_matchers_evidence(
    client: TestClient, db: Database, admin_headers: dict[str, str], known: list[dict[str, str]]
) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    customer_id = _identify(client, key, known[5], "web-user-5")
    journal = _root(client, admin_headers, customer_id)
    assert len(journal) == 1 and journal[0]["merged_id"] == customer_id
    evidence = journal[0]["evidence"]
    assert evidence["method"] == "probabilistic" and evidence["origin"] == "ingestion"
    assert evidence["levels"]["date_of_birth"] == "exact" and evidence["probability"] >= 0.95


def test_untrusted_source_is_proposed_for_review(
    client: TestClient, db: Database, admin_headers: dict[str, str], known: list[dict[str, str]]
) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)
    key_id = client.get(f"{API}/identity/rules", headers=admin_headers).json()  # defaults: all trusted
    assert key_id["default_trust"] == "trusted"
    res = client.put(f"{API}/identity/rules", json={"default_trust": "untrusted"}, headers=admin_headers)
    assert res.status_code == 200
    customer_id = _identify(client, key, known[9], "web-user-9")
    assert _root(client, admin_headers, customer_id) == []
    pending = client.get(f"{API}/identity/reviews", headers=admin_headers).json()["items"]
    assert [r["left_id"] for r in pending] == [customer_id]


def test_own_sign_up_never_merges(
    client: TestClient, known: list[dict[str, str]], admin_headers: dict[str, str]
) -> None:
    person = known[11]
    res = client.post(
        f"{API}/auth/sign-up",
        json={
            "email": "someone.else@example.org",
            "password": "correct horse battery",
            "first_name": person["First Name"],
            "last_name": person["Last Name"],
            "channel": "web",
        },
    )
    assert res.status_code == 201, res.text
    customer_id = res.json()["customer_id"]
    client.app.state.relay.drain()  # type: ignore[attr-defined]
    assert _root(client, admin_headers, customer_id) == []
    pending = client.get(f"{API}/identity/reviews", headers=admin_headers).json()["items"]
    assert all(r["source"] == "self-sign-up" for r in pending if r["left_id"] == customer_id)
