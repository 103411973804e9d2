"""``omni relay`` and ``omni worker``: the event stream's processes, and ``omni webhooks``."""

from __future__ import annotations

import importlib
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console

from omnicommerce.platform.config import Settings, get_settings

app = typer.Typer(no_args_is_help=True)
console = Console()


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM, so the loops finish their batch and exit cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _settings() -> Settings:
    """The settings, with logging set up as in the API (JSON or text, redacted)."""
    from omnicommerce.platform.observability import configure_logging

    settings = get_settings()
    configure_logging(settings)
    return settings


def _redact(url: str) -> str:
    from omnicommerce.cli.main import _redact as redact  # main registers this module: import late

    return ",".join(redact(u) for u in url.split(","))


@app.command()
def relay() -> None:
    """Publish committed outbox events: to NATS JetStream when OMNI_NATS_URL is set, otherwise to
    the in-process subscribers. Run as many as you like (PostgreSQL: SKIP LOCKED claims)."""
    from omnicommerce.platform.db import Database
    from omnicommerce.platform.outbox import load_subscribers
    from omnicommerce.platform.stream import make_relay

    settings = _settings()
    db = Database(settings.database_url, pool_size=4)
    outbox_relay = make_relay(db, settings, load_subscribers())
    stop = _stop_on_signals()
    target = _redact(settings.nats_url) if settings.nats_url else "in-process subscribers"
    console.print(f"[green]relay[/] outbox → {target} (every {settings.relay_interval_seconds}s)")
    outbox_relay.start()
    stop.wait()
    outbox_relay.stop()
    db.dispose()


@app.command()
def worker(
    imports: Annotated[
        list[str] | None,
        typer.Option("--import", help="Extra module registering @subscriber functions (repeatable)"),
    ] = None,
    consumers: Annotated[
        list[str] | None,
        typer.Option("--consumer", help="Run only this subscriber (repeatable; default: all)"),
    ] = None,
    batch: Annotated[int, typer.Option(help="Messages pulled per fetch")] = 50,
    webhooks: Annotated[bool, typer.Option(help="Also deliver due webhooks")] = True,
    scheduler: Annotated[
        bool, typer.Option(help="Also run the periodic jobs (off as well with OMNI_SCHEDULER_ENABLED=false)")
    ] = True,
) -> None:
    """Run every subscriber on durable JetStream pull consumers (needs OMNI_NATS_URL).

    Acks after the handler's transaction commits; failures are retried with backoff and
    dead-lettered to <prefix>.dlq.<consumer> after OMNI_WORKER_MAX_DELIVER tries.
    """
    from omnicommerce.integrations.jobs import WebhookDispatcher
    from omnicommerce.platform.db import Database
    from omnicommerce.platform.outbox import load_subscribers
    from omnicommerce.platform.scheduler import Scheduler
    from omnicommerce.platform.stream import StreamSettings, Worker, durable_name

    settings = _settings()
    if not settings.nats_url:
        console.print(
            "[red]OMNI_NATS_URL is not set[/]: without NATS, `omni serve`/`omni relay` run the subscribers"
        )
        raise typer.Exit(2)
    for module in imports or []:
        importlib.import_module(module)
    db = Database(settings.database_url, pool_size=8)
    subscriptions = [s for s in load_subscribers() if not consumers or s.consumer in consumers]
    if not subscriptions:
        console.print("[red]no subscriber to run[/] (check --consumer)")
        raise typer.Exit(2)
    the_worker = Worker(db, StreamSettings.from_settings(settings), subscriptions, batch=batch)
    stop = _stop_on_signals()
    dispatcher = WebhookDispatcher(db, settings) if webhooks else None
    jobs = Scheduler(db, settings) if scheduler and settings.scheduler_enabled else None
    for sub in subscriptions:
        console.print(f"  consumer [bold]{durable_name(sub)}[/] ← {sub.event_type}")
    console.print(f"[green]worker[/] on {_redact(settings.nats_url)} stream {settings.nats_stream}")
    if dispatcher is not None:
        dispatcher.start()
    if jobs is not None:
        jobs.start()
    try:
        the_worker.run(stop)
    finally:
        if jobs is not None:
            jobs.stop()
        if dispatcher is not None:
            dispatcher.stop()
        db.dispose()
    stats = the_worker.stats
    console.print(
        f"worker stopped: handled={stats.handled} duplicates={stats.duplicates} skipped={stats.skipped} "
        f"failures={stats.failures} dead_lettered={stats.dead_lettered}"
    )
