"""A customer whose account was merged into another profile is that profile now: its token reads
the survivor (``/me``, the profile, consents); an unmerge separates the two again."""

from fastapi.testclient import TestClient

from omnicommerce.customers import service
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.e2e.engagement.support import send
from tests.integration.orders.shop import DC, new_cart, seed

API = "/api/v1"
PASSWORD = "correct horse battery"


def _sign_up(client: TestClient, **contact: str) -> tuple[str, dict[str, str]]:
    res = client.post(f"{API}/auth/sign-up", json={**contact, "password": PASSWORD, "channel": "web"})
    assert res.status_code == 201, res.text
    return res.json()["customer_id"], bearer(res.json()["access_token"])


def _identify(client: TestClient, key: str, message_id: str, **fields: object) -> str:
    event = {"type": "identify", "messageId": message_id, **fields}
    res = client.post(f"{API}/events", json={"batch": [event]}, headers=bearer(key))
    assert res.status_code == 200 and res.json()["accepted"] == 1, res.text
    return str(res.json()["results"][0]["customer_id"])


def _merge_b_into_a(client: TestClient, db: Database) -> tuple[str, dict[str, str], str, dict[str, str]]:
    """Ada signed up with her email, later with her phone on another device (account B); the
    browser of B then signs in with the email: B is merged into A."""
    a, a_token = _sign_up(client, email="ada@example.com")
    b, b_token = _sign_up(client, phone="+14155550123")
    key = make_key(db, Scope.EVENTS_WRITE)
    assert _identify(client, key, "m1", anonymousId="anon-b", traits={"phone": "+1 415 555 0123"}) == b
    assert _identify(client, key, "m2", anonymousId="anon-b", traits={"email": "ada@example.com"}) == a
    return a, a_token, b, b_token


def _status(client: TestClient, path: str, headers: dict[str, str]) -> int:
    return client.get(API + path, headers=headers).status_code


def test_the_token_of_a_merged_account_reads_the_survivor(client: TestClient, db: Database) -> None:
    a, a_token, b, b_token = _merge_b_into_a(client, db)

    assert client.get(f"{API}/me", headers=b_token).json()["id"] == a
    for path in (f"/customers/{b}/profile", f"/customers/{a}/profile"):
        res = client.get(API + path, headers=b_token)
        assert res.status_code == 200, res.text
        assert res.json()["customer"]["id"] == a and res.json()["merged_from"] == [b]
    assert client.get(f"{API}/customers/{b}", headers=b_token).json()["id"] == a
    assert _status(client, f"/customers/{a}/consents", b_token) == 200
    # The survivor's token reaches the account merged into it: one person.
    assert client.get(f"{API}/customers/{b}/profile", headers=a_token).json()["customer"]["id"] == a
    # Nobody else does.
    _other, other_token = _sign_up(client, email="grace@example.com")
    for path in (f"/customers/{a}/profile", f"/customers/{b}/profile", f"/customers/{a}"):
        assert _status(client, path, other_token) == 404


def test_unmerge_separates_the_two_tokens_again(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    a, a_token, b, b_token = _merge_b_into_a(client, db)
    assert _status(client, f"/customers/{a}/profile", b_token) == 200

    res = client.post(f"{API}/customers/{b}/unmerge", headers=admin_headers)

    assert res.status_code == 200, res.text
    assert client.get(f"{API}/me", headers=b_token).json()["id"] == b
    assert client.get(f"{API}/me", headers=a_token).json()["id"] == a
    assert client.get(f"{API}/customers/{b}/profile", headers=b_token).json()["customer"]["id"] == b
    for path in (f"/customers/{a}/profile", f"/customers/{a}", f"/customers/{a}/consents"):
        assert _status(client, path, b_token) == 404
    assert _status(client, f"/customers/{b}/profile", a_token) == 404


def test_profile_accounts_name_every_account_of_the_person(client: TestClient, db: Database) -> None:
    a, _a_token, b, _b_token = _merge_b_into_a(client, db)
    with db.uow(readonly=True) as uow:
        assert service.profile_accounts(uow, b) == [a, b]
        assert service.profile_accounts(uow, a) == [a, b]
        assert service.profile_accounts(uow, "cus_nobody") == []


def test_me_carts_are_the_whole_persons_until_an_unmerge(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    a, a_token = _sign_up(client, email="ada@example.com")
    b, b_token = _sign_up(client, phone="+14155550123")
    carts = {}
    for who, token in ((a, a_token), (b, b_token)):
        res = client.post(f"{API}/carts", json={"channel": "web"}, headers=token)
        assert res.status_code == 201 and res.json()["customer_id"] == who, res.text
        carts[who] = res.json()["id"]
    key = make_key(db, Scope.EVENTS_WRITE)
    _identify(client, key, "m1", anonymousId="anon-b", traits={"phone": "+1 415 555 0123"})
    assert _identify(client, key, "m2", anonymousId="anon-b", traits={"email": "ada@example.com"}) == a

    def my_carts(token: dict[str, str]) -> set[str]:
        res = client.get(f"{API}/me/carts", headers=token)
        assert res.status_code == 200, res.text
        return {c["id"] for c in res.json()}

    assert my_carts(a_token) == my_carts(b_token) == {carts[a], carts[b]}  # one person
    _other, other_token = _sign_up(client, email="grace@example.com")
    assert my_carts(other_token) == set()

    assert client.post(f"{API}/customers/{b}/unmerge", headers=admin_headers).status_code == 200
    assert my_carts(a_token) == {carts[a]} and my_carts(b_token) == {carts[b]}


def test_one_order_history_for_the_person_until_an_unmerge(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    seed(db, {"MUG": {DC: 5}}, prices={"MUG": 1250})
    a, a_token = _sign_up(client, email="ada@example.com")
    b, b_token = _sign_up(client, phone="+14155550123")
    placed = {}
    for who, token in ((a, a_token), (b, b_token)):
        cart_id = new_cart(client, token, {"MUG": 1}, channel="web")
        res = client.post(
            f"{API}/carts/{cart_id}/checkout", json={"payment_token": "tok_visa"}, headers=token
        )
        assert res.status_code == 201 and res.json()["customer_id"] == who, res.text
        placed[who] = res.json()["id"]
    key = make_key(db, Scope.EVENTS_WRITE)
    _identify(client, key, "m1", anonymousId="anon-b", traits={"phone": "+1 415 555 0123"})
    assert _identify(client, key, "m2", anonymousId="anon-b", traits={"email": "ada@example.com"}) == a

    def orders(path: str, headers: dict[str, str]) -> set[str]:
        res = client.get(API + path, headers=headers)
        assert res.status_code == 200, res.text
        return {o["id"] for o in res.json()["items"]}

    both = {placed[a], placed[b]}
    assert orders("/me/orders", a_token) == orders("/me/orders", b_token) == both
    assert orders(f"/customers/{a}/orders", admin_headers) == both  # the survivor's whole history
    assert orders(f"/customers/{b}/orders", b_token) == both
    _other, other_token = _sign_up(client, email="grace@example.com")
    assert client.get(f"{API}/customers/{a}/orders", headers=other_token).status_code == 404

    assert client.post(f"{API}/customers/{b}/unmerge", headers=admin_headers).status_code == 200
    assert orders("/me/orders", a_token) == {placed[a]} and orders("/me/orders", b_token) == {placed[b]}


def test_messages_and_cases_follow_the_person_until_an_unmerge(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    a, a_token, b, b_token = _merge_b_into_a(client, db)
    # Each record stays on the account it was written to; the person's lists gather them.
    sent = {}
    opened = {}
    for who in (a, b):
        res = send(client, admin_headers, who, channel="sms" if who == b else "email")
        assert res.status_code == 201, res.text
        sent[who] = res.json()["id"]
        res = client.post(
            f"{API}/cases",
            json={"customer_id": who, "channel": "call_center", "subject": "Parcel late"},
            headers=admin_headers,
        )
        assert res.status_code == 201, res.text
        opened[who] = res.json()["id"]

    def ids(path: str, headers: dict[str, str]) -> set[str]:
        res = client.get(API + path, headers=headers)
        assert res.status_code == 200, res.text
        return {item["id"] for item in res.json()["items"]}

    for token in (a_token, b_token, admin_headers):
        for who in (a, b):
            assert ids(f"/customers/{who}/messages", token) == set(sent.values())
            assert ids(f"/customers/{who}/cases", token) == set(opened.values())
    _other, other_token = _sign_up(client, email="grace@example.com")
    assert _status(client, f"/customers/{a}/messages", other_token) == 404
    assert _status(client, f"/customers/{b}/cases", other_token) == 404

    assert client.post(f"{API}/customers/{b}/unmerge", headers=admin_headers).status_code == 200
    assert ids(f"/customers/{a}/messages", a_token) == {sent[a]}
    assert ids(f"/customers/{b}/cases", b_token) == {opened[b]}
    assert _status(client, f"/customers/{a}/messages", b_token) == 404
