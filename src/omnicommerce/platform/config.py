"""Configuration from the environment (``OMNI_*`` variables)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNI_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./omnicommerce.db",
        description="SQLAlchemy URL; sqlite:///file.db (default) or postgresql+psycopg://user@host/db",
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS JetStream URL: the relay publishes events there and `omni worker` runs the "
        "subscribers (unset: events are delivered in-process)",
    )
    nats_stream: str = Field(default="OMNI", description="JetStream stream holding every event")
    nats_subject_prefix: str = Field(
        default="omni", description="First subject token: events go to <prefix>.<context>.<type>"
    )
    nats_stream_replicas: int = Field(
        default=1, ge=1, le=5, description="Stream replicas (3 on a JetStream cluster of 3 or more servers)"
    )
    api_runs_relay: bool = Field(
        default=True,
        description="Run the outbox relay and the webhook dispatcher inside each API process (turn off "
        "when `omni relay` / `omni worker` run as processes of their own)",
    )
    api_inline_handlers: bool = Field(
        default=False,
        description="Run route handlers on each API process's event loop, one request at a time per "
        "process, instead of in a thread pool: less CPU per request. Run more workers than cores "
        "(`omni serve --workers`, PostgreSQL); see docs/deploy.md",
    )
    nats_duplicate_window_seconds: float = Field(
        default=600, gt=0, description="JetStream de-duplication window (Nats-Msg-Id = event id)"
    )
    worker_max_deliver: int = Field(
        default=5, ge=1, description="Failed deliveries of an event before it goes to <prefix>.dlq.<consumer>"
    )
    worker_backoff_seconds: list[float] = Field(
        default=[1.0, 5.0, 30.0, 120.0],
        description="Redelivery delay after the 1st, 2nd, … failure (the last repeats); JSON list",
    )
    worker_ack_wait_seconds: float = Field(
        default=30.0, gt=0, description="A message unacknowledged this long (its worker died) is redelivered"
    )
    webhook_max_attempts: int = Field(default=8, ge=1, description="Delivery attempts before a webhook fails")
    webhook_backoff_base_seconds: float = Field(
        default=2.0, gt=0, description="Webhook retry delay: base * 2^(attempt-1), capped at 1 hour"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one webhook POST")
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="Let webhook URLs point at loopback/private addresses (development only: SSRF)",
    )
    secret_key: str = Field(
        default="dev-only-change-me-0123456789abcdef",
        description="Signs customer tokens; set a long random value in production",
    )
    reservation_ttl_seconds: int = Field(default=900, ge=1, description="Lifetime of a cart's stock hold")
    checkout_stalled_seconds: int = Field(
        default=600,
        ge=60,
        description="A checkout untouched this long was cut off: its payment is voided, its cart reopened",
    )
    checkout_recovery_seconds: float = Field(
        default=60, ge=0, description="Look for checkouts cut off mid-way every N seconds (0: off)"
    )
    refund_stranded_seconds: int = Field(
        default=300,
        ge=60,
        description="A refund or cancel claimed this long ago whose order never moved is retried by a job",
    )
    refund_retry_seconds: float = Field(
        default=60, ge=0, description="Look for refunds and cancels cut off mid-way every N seconds (0: off)"
    )
    access_token_ttl_seconds: int = Field(default=900, ge=1, description="Customer access token lifetime")
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=1, description="Refresh token lifetime")
    handoff_code_ttl_seconds: int = Field(default=1800, ge=1, description="Lifetime of a cart hand-off code")
    staff_access_token_ttl_seconds: int = Field(default=900, ge=1, description="Staff access token lifetime")
    staff_refresh_token_ttl_seconds: int = Field(
        default=12 * 3600, ge=1, description="Staff refresh token lifetime (a shift: sign in again next day)"
    )
    api_key_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long a verified API key is cached in-process (0 = no cache)"
    )
    db_pool_size: int = Field(default=20, ge=1, description="Connections per process (PostgreSQL)")
    relay_interval_seconds: float = Field(default=0.2, gt=0, description="Outbox relay poll interval")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text or one JSON object per line (with request_id)"
    )
    access_log: bool = Field(default=True, description="One INFO line per request (method, route, status)")
    metrics_token: str | None = Field(
        default=None, description="When set, GET /metrics needs `Authorization: Bearer <token>`"
    )
    otel_enabled: bool = Field(
        default=False,
        description="OpenTelemetry traces via FastAPI's native telemetry (needs opentelemetry-sdk, "
        "opentelemetry-exporter-otlp-proto-http and OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    rate_limit_enabled: bool = Field(default=True, description="Token-bucket rate limits (per process)")
    rate_limit_per_minute: int = Field(
        default=36000, ge=1, description="Requests per minute per API key (integrations, POS)"
    )
    rate_limit_customer_per_minute: int = Field(
        default=600, ge=1, description="Requests per minute per customer token"
    )
    rate_limit_staff_per_minute: int = Field(
        default=1200, ge=1, description="Requests per minute per staff token (console users)"
    )
    rate_limit_anonymous_per_minute: int = Field(
        default=300, ge=1, description="Requests per minute per client IP without a credential"
    )
    rate_limit_burst_seconds: float = Field(
        default=10.0, gt=0, description="Bucket size: this many seconds' worth of requests at once"
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest request body accepted (413 above it)"
    )
    privacy_hash_key: str | None = Field(
        default=None,
        description="Keys the suppression list's hashes of erased identifiers (HMAC-SHA256); keep it "
        "stable and secret (unset: the secret key is used)",
    )
    scheduler_enabled: bool = Field(
        default=True,
        description="Run the periodic jobs inside `omni serve` and `omni worker` (each job runs in one "
        "process at a time, whatever the number of processes)",
    )
    scheduler_tick_seconds: float = Field(
        default=1.0, gt=0, description="How often the scheduler looks for due jobs"
    )
    hold_sweep_seconds: float = Field(
        default=60, ge=0, description="Release expired stock holds every N seconds (0: off)"
    )
    pickup_sweep_seconds: float = Field(
        default=300,
        ge=0,
        description="Cancel and refund pickups past their window, retry pending refunds, every N seconds "
        "(0: off)",
    )
    reoptimize_seconds: float = Field(
        default=300, ge=0, description="Re-plan open shipment orders together every N seconds (0: off)"
    )
    segments_refresh_seconds: float = Field(
        default=3600, ge=0, description="Re-evaluate windowed segments every N seconds (0: off)"
    )
    reoptimize_time_budget_seconds: float = Field(
        default=20, gt=0, description="Solver time budget of one channel's scheduled batch re-planning"
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
