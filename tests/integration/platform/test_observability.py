"""Prometheus metrics at /metrics: latency by route template, and the business figures read from
the database at scrape time (orders placed, outbox lag, consumer lag, reservation expiries)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from omnicommerce.api.app import create_app
from omnicommerce.platform import clock
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.ids import new_id
from omnicommerce.platform.outbox import outbox, processed_events


def samples(client: TestClient, headers: dict[str, str] | None = None) -> dict[tuple[str, frozenset], float]:
    res = client.get("/metrics", headers=headers or {})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(res.text)
        for s in family.samples
    }


def test_latency_is_labelled_by_route_template_and_status_class(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    for order_id in ("ord_aaa", "ord_bbb"):
        assert client.get(f"/api/v1/orders/{order_id}", headers=admin_headers).status_code == 404
    assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/path/cus_secret").status_code == 404

    res = client.get("/metrics")
    got = samples(client)
    count = "omni_http_request_duration_seconds_count"
    order_404 = frozenset({"method": "GET", "route": "/api/v1/orders/{order_id}", "status": "4xx"}.items())
    assert got[(count, order_404)] == 2
    health = frozenset({"method": "GET", "route": "/healthz", "status": "2xx"}.items())
    assert got[(count, health)] == 1
    unmatched = frozenset({"method": "GET", "route": "(unmatched)", "status": "4xx"}.items())
    assert got[(count, unmatched)] == 1
    scrape = frozenset({"method": "GET", "route": "/metrics", "status": "2xx"}.items())
    assert got[(count, scrape)] == 1  # plain (non-API) routes are labelled by their path too
    # Raw paths never become label values (unbounded series, and ids of customers).
    assert "ord_aaa" not in res.text and "cus_secret" not in res.text


def _outbox_row(event_type: str, *, published: bool, age: timedelta = timedelta(0)) -> dict[str, object]:
    occurred = clock.now() - age
    return {
        "id": new_id("evt"),
        "type": event_type,
        "version": 1,
        "subject": f"omni.test.{event_type}",
        "payload": "{}",
        "occurred_at": occurred,
        "published_at": occurred if published else None,
    }


def test_business_figures_come_from_the_database_at_scrape_time(client: TestClient, db: Database) -> None:
    placed = [_outbox_row("order.placed", published=True) for _ in range(2)]
    late = _outbox_row("order.placed", published=False, age=timedelta(minutes=2))
    expired = [_outbox_row("hold.expired", published=True) for _ in range(3)]
    with db.engine.begin() as conn:
        conn.execute(insert(outbox), [*placed, late, *expired])
        # "mailer" handled the first order.placed only; "audit" handled every hold.expired.
        now = clock.now()
        conn.execute(
            insert(processed_events),
            [
                {"consumer": "mailer", "event_id": placed[0]["id"], "processed_at": now},
                *({"consumer": "audit", "event_id": e["id"], "processed_at": now} for e in expired),
            ],
        )

    got = samples(client)
    plain = frozenset()
    assert got[("omni_orders_placed_total", plain)] == 3
    assert got[("omni_reservation_expiries_total", plain)] == 3
    assert got[("omni_events_total", frozenset({("type", "order.placed")}))] == 3
    assert got[("omni_outbox_unpublished_events", plain)] == 1
    assert 110 <= got[("omni_outbox_oldest_unpublished_age_seconds", plain)] <= 600
    assert got[("omni_consumer_lag_events", frozenset({("consumer", "mailer")}))] == 2
    assert got[("omni_consumer_lag_events", frozenset({("consumer", "audit")}))] == 0
    assert got[("omni_metrics_database_up", plain)] == 1


def test_checkout_counts_an_order_placed(client: TestClient, db: Database) -> None:
    from tests.e2e.security.scenario import run_shopper_scenario

    before = samples(client)[("omni_orders_placed_total", frozenset())]
    run_shopper_scenario(client, db)
    assert samples(client)[("omni_orders_placed_total", frozenset())] == before + 1


def test_metrics_token_protects_the_endpoint(db: Database, settings: Settings) -> None:
    guarded = settings.model_copy(update={"metrics_token": "scrape-me-0123456789"})
    with TestClient(create_app(guarded, db=db, run_relay=False)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert samples(client, {"Authorization": "Bearer scrape-me-0123456789"})
