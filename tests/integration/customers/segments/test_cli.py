"""``omni segments refresh`` runs the windowed re-evaluation against the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from omnicommerce.cli.main import app
from omnicommerce.platform import clock
from omnicommerce.platform.config import get_settings
from omnicommerce.platform.db import Database
from tests.integration.customers.segments.test_evaluation import (
    NOW,
    STORE_ONLY,
    _create,
    _members,
    _order,
    _profile,
)


@pytest.fixture
def cli(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("OMNI_DATABASE_URL", db.url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_refresh_drops_members_whose_window_passed(cli: CliRunner, db: Database) -> None:
    clock.set_clock(lambda: NOW)
    ada = _profile(db, "u-ada")
    _order(db, ada, channel="pos", days_ago=89)
    segment_id = _create(db, "Store-only buyers", STORE_ONLY)
    assert _members(db, segment_id) == {ada}
    clock.set_clock(lambda: NOW + timedelta(days=2))
    result = cli.invoke(app, ["segments", "refresh"])
    assert result.exit_code == 0, result.output
    assert "windowed segments 1: members added 0, removed 1" in result.output
    assert _members(db, segment_id) == set()
