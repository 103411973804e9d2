"""``omni jobs list | run`` against the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from omnicommerce.cli.main import app
from omnicommerce.platform.config import get_settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.scheduler import Scheduler


@pytest.fixture
def cli(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("OMNI_DATABASE_URL", db.url)
    monkeypatch.setenv("COLUMNS", "200")  # the table's cells in full
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_run_a_job_by_hand_then_list_its_state(cli: CliRunner, db: Database) -> None:
    ran = cli.invoke(app, ["jobs", "run", "fulfillment.sweep"])
    assert ran.exit_code == 0, ran.output
    assert "fulfillment.sweep: pickups expired 0" in ran.output

    listed = cli.invoke(app, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    rows = {line.split("│")[1].strip(): line for line in listed.output.splitlines() if line.count("│") > 3}
    assert {"inventory.expire-holds", "fulfillment.sweep", "fulfillment.reoptimize"} <= set(rows)
    assert (
        "OMNI_PICKUP_SWEEP_SECONDS" in rows["fulfillment.sweep"]
        and "pickups expired 0" in rows["fulfillment.sweep"]
    )
    [state] = [s for s in Scheduler(db, get_settings()).states() if s.name == "fulfillment.sweep"]
    assert state.runs == 1 and state.lease_owner is None


def test_an_unknown_job_is_refused(cli: CliRunner) -> None:
    res = cli.invoke(app, ["jobs", "run", "nope"])
    assert res.exit_code == 2 and "no job 'nope'" in res.output


def test_a_job_turned_off_still_runs_by_hand(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_REOPTIMIZE_SECONDS", "0")
    get_settings.cache_clear()
    res = cli.invoke(app, ["jobs", "run", "fulfillment.reoptimize"])
    assert res.exit_code == 0, res.output
    assert "fulfillment.reoptimize: no open orders" in res.output
    listed = cli.invoke(app, ["jobs", "list"])
    [row] = [line for line in listed.output.splitlines() if "fulfillment.reoptimize" in line]
    assert "off" in row
