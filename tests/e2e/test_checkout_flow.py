"""A shopper's checkout through the HTTP API, end to end: quote, cart and order agree; failed
payments leave nothing behind; retries make one order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from omnicommerce.inventory import jobs
from omnicommerce.platform import clock
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database, transaction
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import (
    SHIP,
    STORES,
    new_cart,
    order_count,
    promotion_and_coupon,
    reserved,
    seed,
    stock,
)

WEB = (Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.ORDERS_READ)


@pytest.fixture
def web(db: Database) -> dict[str, str]:
    seed(db, {"TEE-M": {"dc-east": 20}, "MUG": {"dc-east": 20}}, prices={"TEE-M": 2999, "MUG": 1249})
    return bearer(make_key(db, *WEB, channel="web"))


def test_quote_cart_and_order_agree_to_the_minor_unit(
    client: TestClient, db: Database, web: dict[str, str], admin_headers: dict[str, str]
) -> None:
    promotion_and_coupon(db, sku="TEE-M", code="SAVE10")
    cart_id = new_cart(client, web, {"TEE-M": 3, "MUG": 1}, email="ada@example.com")
    assert (
        client.post(f"/api/v1/carts/{cart_id}/coupons", json={"code": "save10"}, headers=web).status_code
        == 200
    )
    cart = client.get(f"/api/v1/carts/{cart_id}", headers=web).json()
    quote = client.post(
        "/api/v1/prices/quote",
        headers=admin_headers,
        json={
            "channel": "web",
            "currency": "USD",
            "coupon_codes": ["SAVE10"],
            "lines": [{"sku": "TEE-M", "quantity": 3}, {"sku": "MUG", "quantity": 1}],
        },
    ).json()
    assert cart["discount_total"] < 0
    res = client.post(
        f"/api/v1/carts/{cart_id}/checkout",
        headers=web,
        json={"payment_token": "tok_visa", "expected_total": cart["total"]},
    )
    assert res.status_code == 201, res.text
    order = res.json()
    for key in ("subtotal", "discount_total", "total"):
        assert quote[key] == cart[key] == order[key]
    assert {ln["sku"]: ln["total"] for ln in order["lines"]} == {
        ln["sku"]: ln["total"] for ln in quote["lines"]
    }
    assert order["status"] == "paid" and order["payment"]["status"] == "captured"
    assert client.get(f"/api/v1/carts/{cart_id}", headers=web).json()["status"] == "completed"
    assert reserved(db, "TEE-M") == 3  # allocated to the order


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("tok_decline", 402, "payment-declined"),
        ("tok_insufficient_funds", 402, "insufficient-funds"),
        ("tok_timeout", 504, "payment-timeout"),
    ],
)
def test_failed_payment_leaves_no_order_and_no_holds(
    client: TestClient, db: Database, web: dict[str, str], token: str, status: int, code: str
) -> None:
    cart_id = new_cart(client, web, {"TEE-M": 2})
    assert reserved(db, "TEE-M") == 2
    res = client.post(f"/api/v1/carts/{cart_id}/checkout", headers=web, json={"payment_token": token})
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    assert res.json()["type"].endswith(code)
    assert order_count(db) == 0
    assert reserved(db, "TEE-M") == 0
    assert client.get(f"/api/v1/carts/{cart_id}", headers=web).json()["status"] == "open"
    retry = client.post(f"/api/v1/carts/{cart_id}/checkout", headers=web, json={"payment_token": "tok_visa"})
    assert retry.status_code == 201, retry.text
    assert order_count(db) == 1 and reserved(db, "TEE-M") == 2


def test_same_idempotency_key_gives_one_order_sequentially(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    cart_id = new_cart(client, web, {"MUG": 1})
    headers = {**web, "Idempotency-Key": "k-1"}
    first = client.post(
        f"/api/v1/carts/{cart_id}/checkout", headers=headers, json={"payment_token": "tok_visa"}
    )
    again = client.post(
        f"/api/v1/carts/{cart_id}/checkout", headers=headers, json={"payment_token": "tok_visa"}
    )
    other_key = client.post(
        f"/api/v1/carts/{cart_id}/checkout",
        headers={**web, "Idempotency-Key": "k-2"},
        json={"payment_token": "tok_visa"},
    )
    no_key = client.post(f"/api/v1/carts/{cart_id}/checkout", headers=web, json={"payment_token": "tok_visa"})
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert other_key.status_code == 200 and no_key.status_code == 200
    assert len({r.json()["id"] for r in (first, again, other_key, no_key)}) == 1
    assert order_count(db) == 1


def test_same_idempotency_key_gives_one_order_concurrently(
    app: object, db: Database, web: dict[str, str]
) -> None:
    """Ten racing requests with one key: one order, one charge, and every caller gets the same
    answer (the first request's, replayed)."""
    with TestClient(app, raise_server_exceptions=False) as c:  # type: ignore[arg-type]
        cart_id = new_cart(c, web, {"MUG": 2})
    start = threading.Barrier(10)

    def attempt(_: int) -> tuple[int, object]:
        with TestClient(app, raise_server_exceptions=False) as c:  # type: ignore[arg-type]
            start.wait()
            r = c.post(
                f"/api/v1/carts/{cart_id}/checkout",
                headers={**web, "Idempotency-Key": "same"},
                json={"payment_token": "tok_visa"},
            )
            return r.status_code, r.json()

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(attempt, range(10)))
    assert results[0][0] == 201, results[0]
    assert all(r == results[0] for r in results), results
    assert order_count(db) == 1
    assert reserved(db, "MUG") == 2
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM payment_test_charges")).scalar_one() == 1


def test_lapsed_holds_are_taken_again_at_checkout(
    client: TestClient, db: Database, web: dict[str, str], settings: Settings
) -> None:
    """Checkout does not re-reserve up front: placing the order re-takes units whose holds lapsed."""
    cart_id = new_cart(client, web, {"MUG": 3})
    later = clock.now() + timedelta(seconds=settings.reservation_ttl_seconds + 60)
    clock.set_clock(lambda: later)
    with transaction(db) as uow:
        assert jobs.expire_holds(uow) == 1  # the sweeper gave the units back
    assert reserved(db, "MUG") == 0
    res = client.post(f"/api/v1/carts/{cart_id}/checkout", headers=web, json={"payment_token": "tok_visa"})
    assert res.status_code == 201, res.text
    assert reserved(db, "MUG") == 3 and order_count(db) == 1


def test_lapsed_holds_whose_units_are_gone_fail_checkout_and_void_the_payment(
    client: TestClient, db: Database, web: dict[str, str], settings: Settings
) -> None:
    cart_id = new_cart(client, web, {"MUG": 15})
    later = clock.now() + timedelta(seconds=settings.reservation_ttl_seconds + 60)
    clock.set_clock(lambda: later)
    other = new_cart(client, web, {"MUG": 10})  # takes the lapsed units (20 on hand)
    res = client.post(f"/api/v1/carts/{cart_id}/checkout", headers=web, json={"payment_token": "tok_visa"})
    assert res.status_code == 409 and res.json()["type"].endswith("insufficient-stock"), res.text
    assert order_count(db) == 0
    assert reserved(db, "MUG") == 10  # only the other cart's
    assert client.get(f"/api/v1/carts/{cart_id}", headers=web).json()["status"] == "open"
    with db.engine.connect() as conn:
        assert [r.status for r in conn.execute(text("SELECT status FROM payment_test_charges"))] == ["voided"]
    assert other


def test_checkout_moving_the_cart_to_a_store_moves_its_holds(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    seed(db, {"CAP": {"dc-east": 5, STORES[0]: 5}})
    cart_id = new_cart(client, web, {"CAP": 2})
    pickup = {"type": "pickup", "location_id": STORES[0]}
    res = client.post(
        f"/api/v1/carts/{cart_id}/checkout",
        headers=web,
        json={"payment_token": "tok_visa", "fulfillment": pickup, "email": "pat@example.com"},
    )
    assert res.status_code == 201, res.text
    assert (res.json()["fulfillment"], res.json()["email"]) == (pickup, "pat@example.com")
    assert stock(db, "CAP")[STORES[0]] == (5, 2) and stock(db, "CAP")["dc-east"] == (5, 0)


def test_card_number_is_refused_and_nothing_changes(
    client: TestClient, db: Database, web: dict[str, str]
) -> None:
    cart_id = new_cart(client, web, {"MUG": 1})
    for token in ("4242424242424242", "4111 1111 1111 1111", "123456789012"):
        res = client.post(
            f"/api/v1/carts/{cart_id}/checkout",
            headers={**web, "Idempotency-Key": token},
            json={"payment_token": token},
        )
        assert res.status_code == 422, res.text
        assert res.json()["detail"] == "card numbers are not accepted; send a payment token"
        assert token not in res.text.replace(res.json()["detail"], "")
    assert (
        client.post(
            f"/api/v1/carts/{cart_id}/checkout", headers=web, json={"payment_token": "pm_abc"}
        ).status_code
        == 422
    )
    assert order_count(db) == 0
    assert client.get(f"/api/v1/carts/{cart_id}", headers=web).json()["status"] == "open"
    with db.engine.connect() as conn:
        from sqlalchemy import text

        dump = " ".join(
            str(r)
            for t in ("idempotency_records", "payment_test_charges", "outbox")
            for r in conn.execute(text(f"SELECT * FROM {t}"))
        )
    assert "4242424242424242" not in dump and "4111" not in dump


def test_expected_total_mismatch_is_409_and_cart_stays_open(client: TestClient, web: dict[str, str]) -> None:
    cart_id = new_cart(client, web, {"MUG": 1})
    res = client.post(
        f"/api/v1/carts/{cart_id}/checkout",
        headers=web,
        json={"payment_token": "tok_visa", "expected_total": 1},
    )
    assert res.status_code == 409 and res.json()["type"].endswith("total-changed")
    assert client.get(f"/api/v1/carts/{cart_id}", headers=web).json()["status"] == "open"


def test_checkout_needs_fulfillment_and_lines(client: TestClient, web: dict[str, str]) -> None:
    empty = new_cart(client, web, {}, fulfillment=SHIP)
    assert (
        client.post(f"/api/v1/carts/{empty}/checkout", headers=web, json={"payment_token": "tok_visa"})
        .json()["type"]
        .endswith("cart-empty")
    )
    unshipped = new_cart(client, web, {"MUG": 1}, fulfillment=None)
    res = client.post(f"/api/v1/carts/{unshipped}/checkout", headers=web, json={"payment_token": "tok_visa"})
    assert res.status_code == 409 and res.json()["type"].endswith("fulfillment-required")
    ok = client.post(
        f"/api/v1/carts/{unshipped}/checkout",
        headers=web,
        json={"payment_token": "tok_visa", "fulfillment": SHIP},
    )
    assert ok.status_code == 201, ok.text
