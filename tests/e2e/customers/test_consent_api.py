"""Consent per purpose and channel: opt-in, latest decision wins, customers manage their own,
and a merged profile's consent follows its accounts' decisions."""

from fastapi.testclient import TestClient

from omnicommerce.customers import consent
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key

API = "/api/v1"


def _sign_up(client: TestClient, email: str) -> dict:
    res = client.post(
        f"{API}/auth/sign-up", json={"email": email, "password": "s3cret-pass", "channel": "web"}
    )
    assert res.status_code == 201, res.text
    return res.json()


def _has(db: Database, customer_id: str, purpose: str, channel: str) -> bool:
    with db.uow(readonly=True) as uow:
        return consent.has_consent(uow, customer_id=customer_id, purpose=purpose, channel=channel)


def test_consent_is_opt_in_and_the_latest_decision_wins(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    cid = _sign_up(client, "ada@example.com")["customer_id"]
    assert not _has(db, cid, "marketing", "email")
    res = client.put(
        f"{API}/customers/{cid}/consents",
        json={
            "source": "preference-center",
            "consents": [
                {
                    "purpose": "marketing",
                    "channel": "any",
                    "granted": True,
                    "recorded_at": "2026-01-01T00:00:00Z",
                },
                {
                    "purpose": "marketing",
                    "channel": "sms",
                    "granted": False,
                    "recorded_at": "2026-01-02T00:00:00Z",
                },
            ],
        },
        headers=admin_headers,
    )
    assert res.status_code == 200, res.text
    assert {(c["channel"], c["granted"], c["source"]) for c in res.json()} == {
        ("any", True, "preference-center"),
        ("sms", False, "preference-center"),
    }
    assert _has(db, cid, "marketing", "email") and not _has(db, cid, "marketing", "sms")
    assert not _has(db, cid, "sale_of_data", "any")
    # A decision that arrives late but was made earlier does not override the newer one.
    stale = {"purpose": "marketing", "channel": "sms", "granted": True, "recorded_at": "2025-12-01T00:00:00Z"}
    client.put(f"{API}/customers/{cid}/consents", json={"consents": [stale]}, headers=admin_headers)
    assert not _has(db, cid, "marketing", "sms")
    # A newer "any" decision outranks the older per-channel one.
    newer = {"purpose": "marketing", "channel": "any", "granted": True, "recorded_at": "2026-02-01T00:00:00Z"}
    client.put(f"{API}/customers/{cid}/consents", json={"consents": [newer]}, headers=admin_headers)
    assert _has(db, cid, "marketing", "sms")


def test_customers_manage_their_own_consent_only(client: TestClient, db: Database) -> None:
    ada, bob = _sign_up(client, "ada@example.com"), _sign_up(client, "bob@example.com")
    body = {"consents": [{"purpose": "personalization", "channel": "any", "granted": True}]}
    own = client.put(
        f"{API}/customers/{ada['customer_id']}/consents", json=body, headers=bearer(ada["access_token"])
    )
    assert own.status_code == 200 and own.json()[0]["source"] == "customer:api"
    other = client.put(
        f"{API}/customers/{bob['customer_id']}/consents", json=body, headers=bearer(ada["access_token"])
    )
    assert other.status_code == 404
    reader = bearer(make_key(db, Scope.CUSTOMERS_READ))
    assert (
        client.put(f"{API}/customers/{ada['customer_id']}/consents", json=body, headers=reader).status_code
        == 403
    )
    assert client.get(f"{API}/customers/{ada['customer_id']}/consents", headers=reader).json()[0]["granted"]
    bad = {"consents": [{"purpose": "telepathy", "channel": "any", "granted": True}]}
    assert (
        client.put(f"{API}/customers/{ada['customer_id']}/consents", json=bad, headers=reader).status_code
        == 422
    )
    missing = client.get(f"{API}/customers/cus_nobody/consents", headers=reader)
    assert missing.status_code == 404


def test_merged_profile_consent_follows_its_accounts_and_splits_back(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    key = make_key(db, Scope.EVENTS_WRITE)

    def send(event: dict) -> str:
        res = client.post(f"{API}/events", json={"batch": [event]}, headers=bearer(key))
        return res.json()["results"][0]["customer_id"]

    b = send(
        {"type": "identify", "messageId": "b", "anonymousId": "anon-b", "traits": {"phone": "+14155550123"}}
    )
    a = send({"type": "identify", "messageId": "a", "userId": "u-a", "traits": {"email": "a@example.com"}})
    opt_out = {
        "purpose": "marketing",
        "channel": "email",
        "granted": False,
        "recorded_at": "2026-03-01T00:00:00Z",
    }
    opt_in = {
        "purpose": "marketing",
        "channel": "email",
        "granted": True,
        "recorded_at": "2026-01-01T00:00:00Z",
    }
    client.put(f"{API}/customers/{a}/consents", json={"consents": [opt_in]}, headers=admin_headers)
    client.put(f"{API}/customers/{b}/consents", json={"consents": [opt_out]}, headers=admin_headers)
    send({"type": "identify", "messageId": "ab", "userId": "u-a", "anonymousId": "anon-b"})  # B into A
    assert not _has(db, a, "marketing", "email")  # the person's latest word, from B's account
    profile = client.get(f"{API}/customers/{a}/profile", headers=admin_headers).json()
    assert [(c["customer_id"], c["granted"]) for c in profile["consents"]] == [(b, False)]
    client.post(f"{API}/customers/{b}/unmerge", headers=admin_headers)
    assert _has(db, a, "marketing", "email") and not _has(db, b, "marketing", "email")
