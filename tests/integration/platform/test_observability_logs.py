"""Structured logs: one JSON object per line carrying the request id, and no secret or personal
data anywhere in the output of a whole shopper scenario logged at DEBUG."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext

from omnicommerce.api.app import create_app
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.observability import (
    configure_logging,
    current_request_id,
    redact,
    telemetry_config,
)
from tests.e2e.security.scenario import run_shopper_scenario


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """These tests reconfigure the root logger (DEBUG, JSON); later tests get it back as it was."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_app(db: Database, settings: Settings, **changes: object) -> FastAPI:
    changed = settings.model_copy(update={"log_format": "json", "log_level": "DEBUG", **changes})
    return create_app(changed, db=db, run_relay=False)


def json_lines(text: str) -> list[dict[str, object]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return [json.loads(ln) for ln in lines]  # every line must be JSON


def test_every_log_line_of_a_request_carries_its_request_id(
    db: Database, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = json_app(db, settings)

    @app.get("/test-only/log-inside")
    def log_inside() -> dict[str, str | None]:
        # A sync route runs in the thread pool: the id must follow it there.
        logging.getLogger("omnicommerce.test").warning("inside the route")
        return {"seen": current_request_id()}

    with TestClient(app) as client:
        capsys.readouterr()
        res = client.get("/test-only/log-inside", headers={"X-Request-Id": "req-42"})
        minted = client.get("/healthz")
    assert res.json() == {"seen": "req-42"} and res.headers["X-Request-Id"] == "req-42"
    entries = json_lines(capsys.readouterr().err)
    ours = [e for e in entries if e["request_id"] == "req-42"]
    assert {e["logger"] for e in ours} >= {"omnicommerce.test", "omnicommerce.access"}
    inside = next(e for e in ours if e["logger"] == "omnicommerce.test")
    assert inside["message"] == "inside the route" and inside["level"] == "WARNING"
    access = next(e for e in ours if e["logger"] == "omnicommerce.access")
    assert access["status"] == 200 and access["method"] == "GET"
    assert access["route"] == "/test-only/log-inside" and isinstance(access["duration_ms"], float)
    minted_id = minted.headers["X-Request-Id"]
    assert any(e["request_id"] == minted_id and e["path"] == "/healthz" for e in entries)


def test_a_whole_shopper_scenario_logs_no_secret_and_no_personal_data(
    db: Database, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(json_app(db, settings), raise_server_exceptions=False) as client:
        capsys.readouterr()
        sensitive = run_shopper_scenario(client, db)
        # Values that reach error paths too: a card number refused, a bad token, a bogus key.
        client.post("/api/v1/auth/sign-in", json={"identifier": sensitive.email, "password": "x" * 300})
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {sensitive.access_token}x"})
        client.get("/api/v1/orders", headers={"Authorization": f"Bearer {sensitive.api_key_secret}x"})
        client.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {sensitive.staff_access_token}x"})
        client.post("/api/v1/staff/sign-in", json={"email": sensitive.staff_email, "password": "y" * 300})
        client.post("/api/v1/staff/refresh", json={"refresh_token": sensitive.staff_refresh_token})  # reused
    output = capsys.readouterr()
    logged = output.err + output.out
    entries = json_lines(output.err)
    assert len(entries) >= 15  # the scenario was logged (access lines at least), not silenced
    assert all(e["request_id"] for e in entries)
    leaked = [value for value in sensitive.values() if value in logged]
    assert leaked == [], f"found in the logs: {leaked}"
    assert "omk_" not in logged.replace("omk_[REDACTED]", "")
    assert "oms_" not in logged.replace("oms_[REDACTED]", "")


@pytest.mark.parametrize(
    ("dirty", "kept_out"),
    [
        ("login failed for ada@example.com", "ada@example.com"),
        ("sms to +14155550123 failed", "+14155550123"),
        ("Authorization: Bearer omk_abcDEF123_-xyz", "omk_abcDEF123_-xyz"),
        ("key omk_abcDEF123_-xyz revoked", "abcDEF123_-xyz"),
        ("staff token oms_eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdGYifQ.c2ln expired", "eyJzdWIiOiJzdGYifQ"),
        ("refresh omsr_Zm9vYmFy-_x reused", "Zm9vYmFy-_x"),
        ("refresh omr_Zm9vYmFy-_x reused", "Zm9vYmFy-_x"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjdXMifQ.c2lnbmF0dXJl expired", "eyJzdWIiOiJjdXMifQ"),
        ('{"password": "hunter2 hunter2", "channel": "web"}', "hunter2"),
        ("password=hunter2&channel=web", "hunter2"),
        ("charge tok_visa_1234 declined", "tok_visa_1234"),
        ("card 4242 4242 4242 4242 seen", "4242 4242 4242 4242"),
        (
            "(psycopg.errors.UniqueViolation) duplicate key\n[SQL: INSERT INTO customers ...]\n"
            "[parameters: {'first_name': 'Ada', 'last_name': 'Lovelace'}]",
            "Lovelace",
        ),
        ("1 validation error\n  input_value='Lovelace', input_type=str", "Lovelace"),
    ],
)
def test_redaction_removes_secrets_and_contact_details(dirty: str, kept_out: str) -> None:
    assert kept_out not in redact(dirty)


def test_redaction_keeps_ordinary_text() -> None:
    line = "GET /api/v1/orders/ord_01JD 200 3.1ms at 2026-11-30T05:00:00+00:00"
    assert redact(line) == line


def test_otel_enabled_without_the_sdk_keeps_traces_off_and_says_what_to_install(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    config = telemetry_config(settings.model_copy(update={"otel_enabled": True}))
    assert config["tracing"] is False
    assert "opentelemetry-sdk" in caplog.text
    assert telemetry_config(settings)["tracing"] is False  # off unless asked for


def test_a_malformed_log_call_neither_raises_nor_leaks_its_arguments(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = configure_logging(settings.model_copy(update={"log_format": "json"}))
    record = logging.LogRecord(
        "omnicommerce.test", logging.WARNING, __file__, 1, "two %s %s", ("a@b.io",), None
    )
    handler.handle(record)  # straight to our handler: pytest's own handler would raise first
    (entry,) = json_lines(capsys.readouterr().err)
    assert str(entry["message"]).startswith("two %s %s") and "a@b.io" not in str(entry)


def test_with_traces_on_log_lines_carry_the_current_trace_and_span_ids(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings.model_copy(update={"log_format": "json", "otel_enabled": True}))
    span = NonRecordingSpan(SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=False))
    with trace.use_span(span):
        logging.getLogger("omnicommerce.test").warning("inside a span")
    logging.getLogger("omnicommerce.test").warning("outside")
    inside, outside = json_lines(capsys.readouterr().err)[-2:]
    assert inside["trace_id"] == f"{0xABC:032x}" and inside["span_id"] == f"{0xDEF:016x}"
    assert "trace_id" not in outside
