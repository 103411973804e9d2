"""Configuration from the environment (``OMNI_*`` variables)."""

from __future__ import annotations

from functools import lru_cache

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
        description="NATS JetStream URL for the scale-out relay (not used yet: events stay in-process)",
    )
    secret_key: str = Field(
        default="dev-only-change-me-0123456789abcdef",
        description="Signs customer tokens; set a long random value in production",
    )
    reservation_ttl_seconds: int = Field(default=900, ge=1, description="Lifetime of a cart's stock hold")
    access_token_ttl_seconds: int = Field(default=900, ge=1, description="Customer access token lifetime")
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=1, description="Refresh token lifetime")
    handoff_code_ttl_seconds: int = Field(default=1800, ge=1, description="Lifetime of a cart hand-off code")
    api_key_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long a verified API key is cached in-process (0 = no cache)"
    )
    db_pool_size: int = Field(default=20, ge=1, description="Connections per process (PostgreSQL)")
    relay_interval_seconds: float = Field(default=0.2, gt=0, description="Outbox relay poll interval")
    log_level: str = Field(default="INFO")


@lru_cache
def get_settings() -> Settings:
    return Settings()
