"""``omni customers …``: the identity rules, a profile's merge journal, and undoing a merge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from omnicommerce.platform.config import get_settings

app = typer.Typer(help="Customer data platform: identity rules, merges, unmerge.", no_args_is_help=True)
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
