"""The hot checkout path's SQL budget: the five requests of ``bench/checkout.py`` through the real
HTTP app, counting every statement the database receives (SQLite's BEGINs included), after one
warm-up flow as a running server has it (API key cached, channel and promotions cached).

A regression anywhere on the path (an extra read, a savepoint, an N+1) fails here with the
per-request breakdown printed."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from omnicommerce.api.app import create_app
from omnicommerce.platform.auth import Scope
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from tests.conftest import bearer, make_key
from tests.integration.orders.shop import DC, seed
from tests.statements import counting

SKU = "TEE-M"
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Chicago", "postal_code": "60603", "country": "US"}

# Statements per request, as reached (lower them when the path gets cheaper). SQLite also sends a
# BEGIN per transaction (one per request, three in checkout: claim, the test gateway's charge,
# the order), and its inventory.reserve / inventory.commit take 2 / 1 more statements.
BUDGET = {
    "postgresql": {"create": 3, "line": 8, "fulfil": 2, "checkout": 10, "read": 1},
    "sqlite": {"create": 4, "line": 11, "fulfil": 3, "checkout": 14, "read": 2},
}
TOTAL = {"postgresql": 24, "sqlite": 34}


def _flow(client: TestClient, db: Database, headers: dict[str, str]) -> dict[str, list[str]]:
    """One shopper's flow; the statements of each request."""
    out: dict[str, list[str]] = {}

    def call(name: str, method: str, url: str, status: int, **kw: Any) -> dict[str, Any]:
        with counting(db) as seen:
            res = client.request(method, url, **kw)
        assert res.status_code == status, (name, res.text)
        out[name] = list(seen)
        return dict(res.json())

    cart = call("create", "POST", "/api/v1/carts", 201, headers=headers, json={"email": _email()})
    lines = f"/api/v1/carts/{cart['id']}/lines"
    call("line", "POST", lines, 200, headers=headers, json={"sku": SKU, "quantity": 1})
    fulfillment = f"/api/v1/carts/{cart['id']}/fulfillment"
    call("fulfil", "PUT", fulfillment, 200, headers=headers, json={"type": "ship", "address": ADDRESS})
    order = call(
        "checkout",
        "POST",
        f"/api/v1/carts/{cart['id']}/checkout",
        201,
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"payment_token": "tok_visa"},
    )
    read = call("read", "GET", f"/api/v1/orders/{order['id']}", 200, headers=headers)
    assert read == order and order["lines"][0]["name"] == f"Product {SKU} — Variant {SKU}"
    return out


def _email() -> str:
    return f"s-{uuid.uuid4().hex[:12]}@example.com"


def test_checkout_flow_statement_budget(db: Database, settings: Settings) -> None:
    seed(db, {SKU: {DC: 1000}}, prices={SKU: 2999})
    headers = bearer(make_key(db, Scope.CARTS_READ, Scope.CARTS_WRITE, Scope.ORDERS_READ, channel="web"))
    app = create_app(settings.model_copy(update={"api_key_cache_seconds": 10}), db=db, run_relay=False)
    with TestClient(app) as client:
        _flow(client, db, headers)  # warm-up: API key, channel, promotions, compiled statements
        flow = _flow(client, db, headers)

    counts = {name: len(statements) for name, statements in flow.items()}
    print(f"\ncheckout flow on {db.dialect}: {counts} total {sum(counts.values())}")
    for name, statements in flow.items():
        print(f"== {name} ({len(statements)})")
        for s in statements:
            print("   ", " ".join(s.split())[:140])
    assert not [s for ss in flow.values() for s in ss if "SAVEPOINT" in s], "no savepoints on the hot path"
    over = {n: (c, BUDGET[db.dialect][n]) for n, c in counts.items() if c > BUDGET[db.dialect][n]}
    assert not over, f"over budget (count, budget): {over}"
    assert sum(counts.values()) <= TOTAL[db.dialect]
