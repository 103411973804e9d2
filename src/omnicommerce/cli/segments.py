"""``omni segments …``: re-evaluate windowed segments (once or every N seconds), so members age
out of "in the last N days" rules without waiting for an event of theirs."""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from rich.console import Console

from omnicommerce.platform.config import get_settings

app = typer.Typer(help="Customer segments: windowed re-evaluation.", no_args_is_help=True)
console = Console()


@app.command("refresh")
def refresh(
    every: Annotated[float, typer.Option(help="Repeat every N seconds (0: run once)", min=0)] = 0,
) -> None:
    """Re-evaluate every segment with a within_days condition as of now."""
    from omnicommerce.customers.segments import jobs
    from omnicommerce.platform.db import Database

    db = Database(get_settings().database_url, pool_size=2)
    stop = threading.Event()  # a pause that Ctrl-C interrupts
    try:
        while True:
            result = jobs.refresh_windowed_segments(db)
            console.print(
                f"windowed segments {result.segments}: members added {result.added}, removed {result.removed}"
            )
            if every <= 0 or stop.wait(every):
                break
    except KeyboardInterrupt:
        pass
    finally:
        db.dispose()
