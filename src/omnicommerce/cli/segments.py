"""``omni segments refresh``: re-evaluate windowed segments now, so members age out of "in the
last N days" rules without waiting for an event of theirs (the scheduler also runs it every
``OMNI_SEGMENTS_REFRESH_SECONDS``)."""

from __future__ import annotations

import typer
from rich.console import Console

from omnicommerce.platform.config import get_settings

app = typer.Typer(help="Customer segments: windowed re-evaluation.", no_args_is_help=True)
console = Console()


@app.command("refresh")
def refresh() -> None:
    """Re-evaluate every segment with a within_days condition as of now."""
    from omnicommerce.customers.segments import jobs
    from omnicommerce.platform.db import Database

    db = Database(get_settings().database_url, pool_size=2)
    try:
        result = jobs.refresh_windowed_segments(db)
    finally:
        db.dispose()
    console.print(
        f"windowed segments {result.segments}: members added {result.added}, removed {result.removed}"
    )
