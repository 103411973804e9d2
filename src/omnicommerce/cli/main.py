"""The ``omni`` command: serve, demo data, migrations, keys, benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from omnicommerce.platform.config import Settings, get_settings

app = typer.Typer(help="Omnicommerce: one system of record behind every sales channel.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
console = Console()


def _settings() -> Settings:
    return get_settings()


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Apply migrations up to REVISION (default: heads, the latest of every context's branch)."""
    from omnicommerce.platform.migrate import upgrade

    url = _settings().database_url
    upgrade(url, revision)
    console.print(f"[green]database at {revision}[/] ({_redact(url)})")


@db_app.command("current")
def db_current() -> None:
    """Show the applied migration revision."""
    from omnicommerce.platform.migrate import current

    console.print(current(_settings().database_url) or "(empty database)")


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[str], typer.Option("--scope", "-s", help="Repeat for each scope, e.g. carts:write")
    ],
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
    channel: Annotated[str | None, typer.Option(help="Bind to one channel (e.g. pos)")] = None,
    location: Annotated[str | None, typer.Option(help="Bind to one location (e.g. store-007)")] = None,
) -> None:
    """Create an API key; its secret is printed once and stored only as a hash."""
    from omnicommerce.platform.auth import create_api_key
    from omnicommerce.platform.db import Database, transaction
    from omnicommerce.platform.errors import DomainError

    db = Database(_settings().database_url, pool_size=1)
    try:
        with transaction(db) as uow:
            issued = create_api_key(uow.conn, name=name, scopes=scope, channel=channel, location=location)
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    console.print(f"key id: {issued.id}")
    console.print(f"secret (shown once): [bold]{issued.secret}[/]")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (prefixes only)."""
    from omnicommerce.platform.auth import list_api_keys
    from omnicommerce.platform.db import Database

    db = Database(_settings().database_url, pool_size=1)
    table = Table("id", "name", "prefix", "scopes", "channel", "location", "active")
    with db.engine.connect() as conn:
        for r in list_api_keys(conn):
            table.add_row(
                r.id,
                r.name,
                r.prefix + "…",
                r.scopes,
                r.channel_id or "",
                r.location_id or "",
                "yes" if r.active else "no",
            )
    db.dispose()
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key (other processes stop accepting it within OMNI_API_KEY_CACHE_SECONDS)."""
    from omnicommerce.platform.auth import revoke_api_key
    from omnicommerce.platform.db import Database, transaction
    from omnicommerce.platform.errors import DomainError

    db = Database(_settings().database_url, pool_size=1)
    try:
        with transaction(db) as uow:
            revoke_api_key(uow.conn, key_id)
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    console.print(f"revoked {key_id}")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same retailer")] = 42,
    customers: Annotated[int, typer.Option(help="Number of customers")] = 2000,
    orders: Annotated[int, typer.Option(help="Number of historical orders")] = 4000,
) -> None:
    """Load the demo retailer (channels, locations, catalog, prices, stock, customers, orders)."""
    from omnicommerce.demo.loader import load_demo
    from omnicommerce.platform.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    summary = load_demo(settings, seed=seed, customers=customers, orders=orders, console=console)
    _print_demo_summary(summary)


def _print_demo_summary(summary: dict[str, object]) -> None:
    table = Table("what", "count / value", title="Demo retailer")
    for k, v in summary.items():
        table.add_row(k, str(v))
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="API processes (PostgreSQL for more than 1; 1.5 to 2 per core with OMNI_API_INLINE_HANDLERS)"
        ),
    ] = 1,
    with_demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo retailer first if the database is empty")
    ] = False,
) -> None:
    """Run the API (migrating the database first). Open /docs for the API reference."""
    import uvicorn

    from omnicommerce.cli import serving
    from omnicommerce.platform.migrate import upgrade

    settings = _settings()
    serving.ensure_port_free(host, port)  # before migrating and printing where to open it
    if workers > 1 and settings.database_url.startswith("sqlite"):
        console.print(
            "[yellow]SQLite serialises writers; use PostgreSQL (OMNI_DATABASE_URL) for --workers > 1[/]"
        )
    upgrade(settings.database_url)
    if with_demo:
        from omnicommerce.demo.loader import demo_keys, is_loaded, load_demo

        if not is_loaded(settings):
            _print_demo_summary(load_demo(settings, seed=42, customers=2000, orders=4000, console=console))
        keys = Table("demo API key", "secret (new on every start)", title="Try it")
        issued = demo_keys(settings)
        for name, secret in issued.items():
            keys.add_row(name, secret)
        console.print(keys)
        env_file = Path("omnicommerce-demo-keys.env")
        env_file.write_text("".join(f"{n.upper().replace('-', '_')}={s}\n" for n, s in issued.items()))
        env_file.chmod(0o600)
        console.print(f"(also written to {env_file}: `source {env_file}` for the README tour)")
    console.print(f"[green]Omnicommerce[/] on {_redact(settings.database_url)}")
    console.print(f"  API docs:  http://{host}:{port}/docs")
    console.print(f"  OpenAPI:   http://{host}:{port}/openapi.json")
    console.print(f"  Health:    http://{host}:{port}/readyz")
    if workers > 1 and serving.reuse_port_supported():
        serving.serve_workers(host=host, port=port, workers=workers, log_level=settings.log_level.lower())
        return
    uvicorn.run(
        serving.APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        http=serving.OneWritePerAnswer,
    )


app.add_typer(__import__("omnicommerce.cli.stream", fromlist=["app"]).app)  # omni relay / worker
app.add_typer(__import__("omnicommerce.cli.fulfillment", fromlist=["app"]).app, name="fulfillment")
app.add_typer(__import__("omnicommerce.cli.customers", fromlist=["app"]).app, name="customers")
app.add_typer(__import__("omnicommerce.cli.segments", fromlist=["app"]).app, name="segments")
app.add_typer(__import__("omnicommerce.cli.scheduler", fromlist=["app"]).app, name="jobs")
app.add_typer(__import__("omnicommerce.cli.staff", fromlist=["app"]).app, name="staff")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Benchmark name: a file bench/NAME.py")],
) -> None:
    """Run a benchmark from bench/ (each prints figures, their baselines and ratios).

    Options after NAME go to the benchmark: `omni bench checkout --seconds 10`.
    """
    script = _find_bench(name)
    raise typer.Exit(subprocess.call([sys.executable, str(script), *ctx.args], env=dict(os.environ)))


@app.command("config-doc")
def config_doc() -> None:
    """Print the configuration reference (docs/configuration.md) generated from the settings."""
    from omnicommerce.api.configdoc import render

    sys.stdout.write(render())


@app.command("events-doc")
def events_doc() -> None:
    """Print the event catalogue (docs/events.md) generated from the code."""
    from omnicommerce.api.eventdoc import render

    sys.stdout.write(render())


def _find_bench(name: str) -> Path:
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = root / "bench" / f"{name.replace('-', '_')}.py"
        if candidate.exists():
            return candidate
    console.print(f"[red]no benchmark named {name!r}[/] (looked for bench/{name}.py)")
    raise typer.Exit(2)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


def main() -> None:
    """The ``omni`` entry point: the app, with a plain answer for a database not migrated yet."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        app()
    except (OperationalError, ProgrammingError) as exc:
        if "no such table" not in str(exc) and "does not exist" not in str(exc):
            raise
        console.print("[red]error:[/] the database has no schema yet: run `omni db upgrade` first")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
