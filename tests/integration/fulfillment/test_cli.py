"""``omni fulfillment route | sweep | reoptimize`` against the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from omnicommerce.cli.main import app
from omnicommerce.platform.config import get_settings
from omnicommerce.platform.db import Database
from tests.integration.fulfillment.support import DC, NEAR, allocations, place, seed, shopper


@pytest.fixture
def cli(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("OMNI_DATABASE_URL", db.url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_route_sweep_and_reoptimize_from_the_command_line(
    cli: CliRunner, client: TestClient, db: Database
) -> None:
    seed(db, {"SKU-A": {DC: 10, NEAR: 5}})
    order_id = place(client, shopper(db), {"SKU-A": 2})

    routed = cli.invoke(app, ["fulfillment", "route", order_id])
    assert routed.exit_code == 0, routed.output
    assert NEAR in routed.output and "pending" in routed.output
    assert allocations(db, order_id) == {("SKU-A", NEAR): 2}
    again = cli.invoke(app, ["fulfillment", "route", order_id])
    assert again.exit_code == 0 and again.output == routed.output  # once per order

    swept = cli.invoke(app, ["fulfillment", "sweep"])
    assert swept.exit_code == 0, swept.output
    assert "pickups expired 0" in swept.output
    batch = cli.invoke(app, ["fulfillment", "reoptimize", "--channel", "web", "--seconds", "2"])
    assert batch.exit_code == 0, batch.output
    assert "1 open orders, 0 re-planned" in batch.output
    missing = cli.invoke(app, ["fulfillment", "route", "ord_missing"])
    assert missing.exit_code == 2 and "no order" in missing.output
