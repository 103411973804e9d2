"""``omni customers …``: the identity rules, a profile's merge journal, undoing a merge, bulk
imports and the export of every merge and proposal."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from omnicommerce.platform.config import get_settings

app = typer.Typer(
    help="Customer data platform: identity rules, merges, unmerge, imports.", no_args_is_help=True
)
console = Console()


@app.command("rules")
def rules(
    set_from: Annotated[
        Path | None, typer.Option("--set", help="Replace the rules with this JSON document", exists=True)
    ] = None,
) -> None:
    """Show the identity resolution rules, or replace them from a JSON file."""
    from omnicommerce.customers import identity
    from omnicommerce.customers.schemas import IdentityRulesDoc
    from omnicommerce.platform.auth import SYSTEM
    from omnicommerce.platform.db import Database, transaction
    from omnicommerce.platform.errors import DomainError

    db = Database(get_settings().database_url, pool_size=1)
    try:
        with transaction(db) as uow:
            if set_from is not None:
                doc = IdentityRulesDoc.model_validate_json(set_from.read_text())
                out = identity.set_rules(uow, SYSTEM, doc)
            else:
                out = identity.get_rules(uow, SYSTEM)
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    typer.echo(json.dumps(out.model_dump(), indent=2))


@app.command("merges")
def merges(customer_id: Annotated[str, typer.Argument(help="A profile id (cus_…)")]) -> None:
    """The merge journal of a profile (JSON), with the evidence of each merge."""
    from omnicommerce.customers import identity
    from omnicommerce.platform.auth import SYSTEM
    from omnicommerce.platform.db import Database

    db = Database(get_settings().database_url, pool_size=1)
    try:
        with db.uow(readonly=True) as uow:
            journal = identity.merges(uow, SYSTEM, customer_id)
    finally:
        db.dispose()
    typer.echo(json.dumps([m.model_dump(mode="json") for m in journal], indent=2))


@app.command("unmerge")
def unmerge(customer_id: Annotated[str, typer.Argument(help="The profile to split back out")]) -> None:
    """Split a wrongly merged profile back out of the one it was merged into."""
    from omnicommerce.customers import identity
    from omnicommerce.platform.auth import SYSTEM
    from omnicommerce.platform.db import Database, transaction
    from omnicommerce.platform.errors import DomainError

    db = Database(get_settings().database_url, pool_size=1)
    try:
        with transaction(db) as uow:
            result = identity.unmerge(uow, SYSTEM, customer_id)
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    console.print(
        f"{result.customer_id} split from {result.survivor_id}: {result.identities_moved} identities, "
        f"{result.events_moved} events, {result.profiles_moved} profiles moved back"
    )


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="CSV (.csv) or JSON Lines (.jsonl, .ndjson)", exists=True)],
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Column mapping, YAML or JSON", exists=True)
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="Where the file comes from (trust rules)")
    ] = "import",
) -> None:
    """Import customers from CSV or JSON Lines; prints the report as JSON.

    Creates profiles, merges duplicates (by identifier, then by the matcher) and queues
    uncertain pairs for review, in one transaction."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from omnicommerce.customers import importing
    from omnicommerce.platform.auth import SYSTEM
    from omnicommerce.platform.db import Database, transaction
    from omnicommerce.platform.errors import DomainError

    try:
        fmt = importing.format_of(file.name)
        columns = importing.load_mapping(mapping.read_text()) if mapping else importing.ColumnMapping()
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(2) from exc
    text = file.read_text(encoding="utf-8-sig")
    total = sum(1 for line in text.splitlines() if line.strip()) - (1 if fmt == "csv" else 0)
    db = Database(get_settings().database_url, pool_size=1)
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    try:
        with progress, transaction(db) as uow:
            task = progress.add_task("rows", total=max(total, 0))
            report = importing.import_rows(
                uow,
                SYSTEM,
                importing.read_rows(text, fmt),
                mapping=columns,
                source=source,
                progress=lambda done: progress.update(task, completed=done),
            )
            importing.record_import(uow, report, actor=SYSTEM, fmt=fmt, mapping=columns)
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    typer.echo(report.model_dump_json(indent=2))


@app.command("matches")
def matches(
    output_format: Annotated[
        Literal["csv", "jsonl"], typer.Option("--format", help="csv or jsonl")
    ] = "jsonl",
) -> None:
    """Export every applied and proposed merge (CSV or JSON Lines) to standard output.

    Record ids, probability, weight and decision of each journaled merge and each review."""
    from omnicommerce.customers import reviews
    from omnicommerce.customers.schemas import MatchRecord
    from omnicommerce.platform.auth import SYSTEM
    from omnicommerce.platform.db import Database

    db = Database(get_settings().database_url, pool_size=1)
    try:
        with db.uow(readonly=True) as uow:
            writer = None
            if output_format == "csv":
                writer = csv.DictWriter(sys.stdout, fieldnames=list(MatchRecord.model_fields))
                writer.writeheader()
            for record in reviews.export_matches(uow, SYSTEM):
                if writer is not None:
                    writer.writerow(record.model_dump(mode="json"))
                else:
                    sys.stdout.write(record.model_dump_json() + "\n")
    finally:
        db.dispose()
