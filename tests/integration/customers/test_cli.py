"""``omni customers rules | merges | unmerge`` against the test database."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnicommerce.cli.main import app
from omnicommerce.customers import ingestion
from omnicommerce.platform.auth import Principal, Scope
from omnicommerce.platform.config import get_settings
from omnicommerce.platform.db import Database

WEB = Principal("api_key", "key_web", frozenset({Scope.EVENTS_WRITE}))


@pytest.fixture
def cli(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("OMNI_DATABASE_URL", db.url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _identify(db: Database, message_id: str, **fields) -> str | None:
    with db.uow() as uow:
        result = ingestion.ingest(uow, WEB, [{"type": "identify", "messageId": message_id, **fields}])
        uow.commit()
    return result.results[0].customer_id


def test_rules_show_and_set(cli: CliRunner, tmp_path: Path) -> None:
    shown = cli.invoke(app, ["customers", "rules"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["limits"]["device_id"] == 5
    doc = tmp_path / "rules.json"
    doc.write_text(json.dumps({"limits": {"device_id": 2}}))
    saved = cli.invoke(app, ["customers", "rules", "--set", str(doc)])
    assert saved.exit_code == 0, saved.output
    assert json.loads(saved.output)["limits"]["device_id"] == 2
    doc.write_text(json.dumps({"limits": {"device_id": 0}}))
    assert cli.invoke(app, ["customers", "rules", "--set", str(doc)]).exit_code != 0


def test_merges_and_unmerge(cli: CliRunner, db: Database) -> None:
    b = _identify(db, "b1", anonymousId="anon-b", traits={"phone": "+14155550123"})
    a = _identify(db, "a1", anonymousId="anon-b", traits={"email": "ada@example.com"})
    assert a == b  # the anonymous id found B; the email joined it (no second profile)
    d = _identify(db, "d1", userId="u-d")
    _identify(db, "d2", userId="u-d", anonymousId="anon-b")  # B into D (user id outranks)
    listed = cli.invoke(app, ["customers", "merges", str(d)])
    assert listed.exit_code == 0, listed.output
    [merge] = json.loads(listed.output)
    assert (merge["survivor_id"], merge["merged_id"]) == (d, b)
    assert merge["evidence"]["merged_matched_by"] == ["anonymous_id"]
    res = cli.invoke(app, ["customers", "unmerge", str(b)])
    assert res.exit_code == 0, res.output
    assert f"{b} split from {d}" in res.output
    assert cli.invoke(app, ["customers", "unmerge", str(b)]).exit_code == 2


def test_import_with_a_yaml_mapping_then_export_matches(cli: CliRunner, db: Database, tmp_path: Path) -> None:
    from tests.integration.customers.people import MAPPING, people

    data = people(150, duplicates=4, households=2)
    data.rows[0]["E-mail"] = "broken@"
    file = tmp_path / "crm.csv"
    file.write_text(data.csv())
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(
        "columns:\n" + "".join(f"  {col}: {target}\n" for col, target in MAPPING["columns"].items())
    )
    res = cli.invoke(app, ["customers", "import", str(file), "--mapping", str(mapping), "--source", "crm"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["rejected"] == 1 and report["rejected_rows"][0]["row"] == 1
    assert report["merged_probabilistic"] == 4 and report["created"] == 155
    exported = cli.invoke(app, ["customers", "matches", "--format", "jsonl"])
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    merges = [r for r in records if r["kind"] == "merge"]
    assert len(merges) == 4 and all(
        r["method"] == "probabilistic" and r["probability"] >= 0.95 for r in merges
    )
    assert len([r for r in records if r["kind"] == "review"]) == report["queued_for_review"]
    as_csv = cli.invoke(app, ["customers", "matches", "--format", "csv"])
    header, *lines = as_csv.stdout.splitlines()
    assert header.startswith("kind,id,left_id,right_id,method,probability") and len(lines) == len(records)


def test_import_refuses_an_unknown_format(cli: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "crm.xlsx"
    file.write_text("x")
    res = cli.invoke(app, ["customers", "import", str(file)])
    assert res.exit_code == 2 and "CSV" in res.output
