"""``omni staff create | list | disable`` against the test database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rich.console import Console
from typer.testing import CliRunner

from omnicommerce.cli import staff as staff_cli
from omnicommerce.cli.main import app
from omnicommerce.platform.config import Settings, get_settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.errors import Unauthorized
from omnicommerce.platform.staff import service
from tests.integration.orders.shop import seed

PASSWORD = "counter staff secret 42"


@pytest.fixture
def cli(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("OMNI_DATABASE_URL", db.url)
    monkeypatch.setattr(staff_cli, "console", Console(width=200))  # a table wide enough to read
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_create_list_disable_a_store_associate(cli: CliRunner, db: Database, settings: Settings) -> None:
    seed(db, {"MUG": {"store-001": 1}})
    args = [
        "staff",
        "create",
        "--email",
        "Mo@Example.com",
        "--role",
        "store_associate",
        "--location",
        "store-001",
    ]
    made = cli.invoke(app, args, input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    assert "store_associate at store-001" in made.output and PASSWORD not in made.output
    staff_id = made.output.split()[1]
    assert staff_id.startswith("stf_")

    with db.uow() as uow:  # the password read from stdin is the one that signs in
        tokens = service.sign_in(uow, email="mo@example.com", password=PASSWORD, settings=settings)
        uow.commit()
    assert (tokens.staff.role, tokens.staff.location, tokens.staff.channel) == (
        "store_associate",
        "store-001",
        "pos",
    )

    listed = cli.invoke(app, ["staff", "list", "--location", "store-001"])
    assert listed.exit_code == 0 and "mo@example.com" in listed.output and "yes" in listed.output
    assert cli.invoke(app, ["staff", "disable", staff_id]).exit_code == 0
    assert "no" in cli.invoke(app, ["staff", "list"]).output.split("mo@example.com", 1)[1]
    with db.uow() as uow, pytest.raises(Unauthorized):
        service.sign_in(uow, email="mo@example.com", password=PASSWORD, settings=settings)


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--role", "store_associate"], PASSWORD, "must be bound to a location"),
        (["--role", "store_associate", "--location", "store-404"], PASSWORD, "store-404"),
        (["--role", "owner"], PASSWORD, "role"),
        (["--role", "analyst"], "short", "at least 12"),
        (["--role", "analyst"], "", "no password given"),
    ],
)
def test_bad_input_exits_2_with_the_reason(
    cli: CliRunner, db: Database, args: list[str], password: str, message: str
) -> None:
    res = cli.invoke(app, ["staff", "create", "--email", "x@example.com", *args], input=password + "\n")
    assert res.exit_code == 2, res.output
    assert message in res.output and (not password or password not in res.output)
    assert "x@example.com" not in cli.invoke(app, ["staff", "list"]).output


def test_a_taken_email_is_refused(cli: CliRunner, db: Database) -> None:
    first = cli.invoke(
        app, ["staff", "create", "--email", "a@example.com", "--role", "admin"], input=PASSWORD
    )
    assert first.exit_code == 0, first.output
    again = cli.invoke(
        app, ["staff", "create", "--email", "A@example.com", "--role", "analyst"], input=PASSWORD
    )
    assert again.exit_code == 2 and "exists" in again.output
