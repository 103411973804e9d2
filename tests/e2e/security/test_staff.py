"""Staff users over HTTP: admin-only administration (idempotent creation), sign-in that never
tells whether an e-mail exists, refresh rotation, and sessions that end as soon as the account's
role, binding, password or status changes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from omnicommerce.platform.auth import Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.outbox import outbox
from tests.conftest import bearer, make_key
from tests.e2e.security.staff_support import PASSWORD, create_staff, sign_in, staff_headers
from tests.integration.orders.shop import customer_token, seed


def test_an_admin_creates_a_staff_user_who_signs_in_and_sees_their_role(
    client: TestClient, admin_headers: dict[str, str], db: Database
) -> None:
    seed(db, {"MUG": {"store-001": 1}})
    body = {
        "email": "Rosalind.Okafor@Example.com",
        "name": "Rosalind",
        "role": "store_associate",
        "password": PASSWORD,
        "location": "store-001",
    }
    keyed = {**admin_headers, "Idempotency-Key": "hire-rosalind"}
    first = client.post("/api/v1/staff", json=body, headers=keyed)
    assert first.status_code == 201, first.text
    created = first.json()
    assert (created["email"], created["role"], created["location"]) == (
        "rosalind.okafor@example.com",
        "store_associate",
        "store-001",
    )
    assert created["channel"] == "pos"  # the one store channel, where their sales are rung up
    assert "password" not in first.text and PASSWORD not in first.text
    replay = client.post("/api/v1/staff", json=body, headers=keyed)
    assert replay.json() == created and replay.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/api/v1/staff", json={**body, "name": "Ros"}, headers=keyed)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    again = client.post(
        "/api/v1/staff", json={**body, "email": "rosalind.okafor@example.COM"}, headers=admin_headers
    )
    assert again.status_code == 409 and again.json()["type"].endswith("/staff-exists")

    signed = client.post(
        "/api/v1/staff/sign-in", json={"email": "ROSALIND.okafor@example.com", "password": PASSWORD}
    )
    assert signed.status_code == 200, signed.text
    tokens = signed.json()
    assert tokens["access_token"].startswith("oms_") and tokens["refresh_token"].startswith("omsr_")
    me = client.get("/api/v1/staff/me", headers=bearer(tokens["access_token"])).json()
    assert me["id"] == created["id"] and me["last_sign_in_at"] is not None
    assert Scope.INVENTORY_WRITE in me["scopes"] and Scope.CUSTOMERS_READ not in me["scopes"]
    listed = client.get("/api/v1/staff", headers=admin_headers)
    assert [s["id"] for s in listed.json()["items"]] == [created["id"]]
    assert "argon2" not in listed.text and "password" not in listed.text


def test_a_failed_sign_in_never_tells_whether_the_email_exists(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    kept = create_staff(client, admin_headers, "analyst", "known@example.com")
    create_staff(client, admin_headers, "analyst", "gone@example.com")
    gone = client.get("/api/v1/staff", params={"role": "analyst"}, headers=admin_headers).json()["items"]
    gone_id = next(s["id"] for s in gone if s["email"] == "gone@example.com")
    assert client.delete(f"/api/v1/staff/{gone_id}", headers=admin_headers).status_code == 204
    answers = [
        client.post("/api/v1/staff/sign-in", json={"email": email, "password": password})
        for email, password in (
            ("nobody@example.com", PASSWORD),  # no such account
            ("known@example.com", PASSWORD + "x"),  # wrong password
            ("gone@example.com", PASSWORD),  # disabled
        )
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert answers[0].json()["detail"] == "invalid e-mail or password"
    assert kept["active"] is True


def test_refresh_rotates_and_a_reused_token_ends_every_session_of_that_sign_in(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    create_staff(client, admin_headers, "marketer", "mara@example.com")
    first = client.post(
        "/api/v1/staff/sign-in", json={"email": "mara@example.com", "password": PASSWORD}
    ).json()
    second = client.post("/api/v1/staff/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    assert client.get("/api/v1/staff/me", headers=bearer(second.json()["access_token"])).status_code == 200
    reused = client.post("/api/v1/staff/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and reused.json()["type"].endswith("/refresh-token-reused")
    # The thief's copy and the user's latest token are both dead now.
    latest = client.post("/api/v1/staff/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert latest.status_code == 401
    unknown = client.post("/api/v1/staff/refresh", json={"refresh_token": "omsr_nothing"})
    assert unknown.status_code == 401 and unknown.json()["type"].endswith("/invalid-refresh-token")


def test_a_new_role_or_disabling_ends_the_sessions_at_once(
    client: TestClient, admin_headers: dict[str, str], db: Database
) -> None:
    staff = create_staff(client, admin_headers, "service_agent", "sam@example.com")
    url = f"/api/v1/staff/{staff['id']}"
    token = sign_in(client, "sam@example.com")
    refresh = client.post("/api/v1/staff/sign-in", json={"email": "sam@example.com", "password": PASSWORD})
    assert client.get("/api/v1/customers", headers=token).status_code == 200

    renamed = client.patch(url, json={"name": "Samuel"}, headers=admin_headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Samuel"
    assert client.get("/api/v1/customers", headers=token).status_code == 200  # a new name ends nothing

    demoted = client.patch(url, json={"role": "marketer"}, headers=admin_headers)
    assert demoted.status_code == 200 and demoted.json()["role"] == "marketer"
    ended = client.get("/api/v1/customers", headers=token)
    assert ended.status_code == 401 and "sign in again" in ended.json()["detail"]
    stale = client.post("/api/v1/staff/refresh", json={"refresh_token": refresh.json()["refresh_token"]})
    assert stale.status_code == 401  # refresh tokens of the old role are revoked too
    marketer = sign_in(client, "sam@example.com")
    assert client.get("/api/v1/orders", headers=marketer).status_code == 403
    assert client.get("/api/v1/segments", headers=marketer).status_code == 200

    assert client.delete(url, headers=admin_headers).status_code == 204
    assert client.get("/api/v1/segments", headers=marketer).status_code == 401
    assert client.delete(url, headers=admin_headers).status_code == 204  # idempotent
    assert client.get(url, headers=admin_headers).json()["active"] is False
    re_enabled = client.patch(url, json={"active": True}, headers=admin_headers)
    assert re_enabled.status_code == 200 and re_enabled.json()["active"] is True
    assert client.get("/api/v1/segments", headers=sign_in(client, "sam@example.com")).status_code == 200

    with db.engine.connect() as conn:
        kinds = list(conn.execute(select(outbox.c.type).where(outbox.c.type.startswith("staff."))).scalars())
    assert kinds.count("staff.created") == 1 and kinds.count("staff.disabled") == 1
    assert kinds.count("staff.updated") == 3 and kinds.count("staff.signed_in") == 4


def test_the_last_admin_can_be_neither_demoted_nor_disabled(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    ada = create_staff(client, admin_headers, "admin", "ada@example.com")
    as_ada = sign_in(client, "ada@example.com")
    refused = client.delete(f"/api/v1/staff/{ada['id']}", headers=as_ada)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/last-admin")
    demote = client.patch(f"/api/v1/staff/{ada['id']}", json={"role": "analyst"}, headers=admin_headers)
    assert demote.status_code == 409
    create_staff(client, as_ada, "admin", "grace@example.com")  # a staff admin manages staff too
    assert (
        client.patch(
            f"/api/v1/staff/{ada['id']}", json={"role": "analyst"}, headers=admin_headers
        ).status_code
        == 200
    )


def test_bad_staff_accounts_are_refused_with_problems(
    client: TestClient, admin_headers: dict[str, str], db: Database
) -> None:
    seed(db, {"MUG": {"store-001": 1}})
    base = {"email": "x@example.com", "name": "X", "password": PASSWORD}
    cases = [
        ({**base, "role": "store_associate"}, 422, "invalid-staff"),  # no store
        ({**base, "role": "analyst", "location": "store-001"}, 422, "invalid-staff"),
        ({**base, "role": "store_associate", "location": "store-999"}, 404, "unknown-location"),
        (
            {**base, "role": "store_associate", "location": "store-001", "channel": "nope"},
            404,
            "unknown-channel",
        ),
        ({**base, "role": "analyst", "password": "short"}, 422, "weak-password"),
        ({**base, "role": "owner"}, 422, "validation-error"),
        ({**base, "email": "not-an-email", "role": "analyst"}, 422, "validation-error"),
    ]
    for body, status, code in cases:
        res = client.post("/api/v1/staff", json=body, headers=admin_headers)
        assert (res.status_code, res.json()["type"].rsplit("/", 1)[1]) == (status, code), body
    assert client.get("/api/v1/staff", headers=admin_headers).json()["items"] == []
    assert client.get("/api/v1/staff/stf_missing", headers=admin_headers).status_code == 404
    assert (
        client.patch("/api/v1/staff/stf_missing", json={"name": "n"}, headers=admin_headers).status_code
        == 404
    )


def test_only_admins_manage_staff_and_me_answers_for_staff_tokens_only(
    client: TestClient, admin_headers: dict[str, str], db: Database
) -> None:
    analyst = staff_headers(client, admin_headers, "analyst", "ana@example.com")
    body = {"email": "new@example.com", "name": "N", "role": "admin", "password": PASSWORD}
    for headers in (analyst, bearer(make_key(db, *[s for s in Scope if s != Scope.ADMIN]))):
        assert client.post("/api/v1/staff", json=body, headers=headers).status_code == 403
        assert client.get("/api/v1/staff", headers=headers).status_code == 403
    me = client.get("/api/v1/staff/me", headers=admin_headers)
    assert me.status_code == 403 and me.json()["type"].endswith("/not-staff")
    assert client.get("/api/v1/staff/me", headers=analyst).json()["role"] == "analyst"
    forged = analyst["Authorization"][:-3] + "abc"
    assert client.get("/api/v1/staff/me", headers={"Authorization": forged}).status_code == 401


def test_staff_and_customer_tokens_cannot_pass_for_one_another(
    client: TestClient, admin_headers: dict[str, str], db: Database, settings: Settings
) -> None:
    staff_jwt = staff_headers(client, admin_headers, "admin", "root@example.com")[
        "Authorization"
    ].removeprefix("Bearer oms_")
    _, shopper = customer_token(db, settings, "shopper@example.com", "web")
    customer_jwt = shopper["Authorization"].removeprefix("Bearer ")
    # An admin's staff JWT without its prefix is not a customer token; a customer's with it is not staff.
    assert client.get("/api/v1/me", headers=bearer(staff_jwt)).status_code == 401
    assert client.get("/api/v1/staff", headers=bearer("oms_" + customer_jwt)).status_code == 401
    assert client.get("/api/v1/me", headers=shopper).status_code == 200
