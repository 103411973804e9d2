"""``omni jobs …``: the periodic jobs — their state, one run by hand, the scheduler on its own."""

from __future__ import annotations

import signal
import threading

import typer
from rich.console import Console
from rich.table import Table

from omnicommerce.platform.config import get_settings

app = typer.Typer(
    help="Periodic jobs (sweepers, batch re-planning) and their scheduler.", no_args_is_help=True
)
console = Console()


@app.command("list")
def list_jobs() -> None:
    """Every periodic job: interval, setting, when it last ran, with what outcome, when it is next due."""
    from omnicommerce.platform.db import Database
    from omnicommerce.platform.scheduler import Scheduler, describe, load_jobs

    settings = get_settings()
    db = Database(settings.database_url, pool_size=1)
    try:
        states = {s.name: s for s in Scheduler(db, settings).states()}
    finally:
        db.dispose()
    table = Table("job", "every", "setting", "last finished", "outcome", "next run")
    for name, every, setting, _ in describe(load_jobs(), settings):
        s = states.get(name)
        table.add_row(
            name,
            f"{every:g}s" if every > 0 else "off",
            setting,
            f"{s.last_finished_at:%Y-%m-%d %H:%M:%S}" if s and s.last_finished_at else "-",
            (s.last_outcome or "-") if s else "-",
            f"{s.next_run_at:%Y-%m-%d %H:%M:%S}" if s else "-",
        )
    console.print(table)


@app.command("run")
def run(name: str) -> None:
    """Run one job now, unless another process is running it."""
    from omnicommerce.platform.db import Database
    from omnicommerce.platform.scheduler import JOBS, Scheduler, load_jobs

    load_jobs()
    if name not in JOBS:
        console.print(f"[red]no job {name!r}[/]; one of {', '.join(sorted(JOBS))}")
        raise typer.Exit(2)
    settings = get_settings()
    db = Database(settings.database_url, pool_size=2)
    try:
        scheduler = Scheduler(db, settings, [JOBS[name]])
        if not scheduler.run_job(name):
            console.print(f"[yellow]{name} is running in another process[/]")
            raise typer.Exit(1)
        [state] = [s for s in scheduler.states() if s.name == name]
    finally:
        db.dispose()
    console.print(f"{name}: {state.last_outcome}")


@app.command("scheduler")
def scheduler() -> None:
    """Run the scheduler alone (`omni serve` and `omni worker` already run one each)."""
    from omnicommerce.platform.db import Database
    from omnicommerce.platform.scheduler import Scheduler

    settings = get_settings()
    db = Database(settings.database_url, pool_size=2)
    loop = Scheduler(db, settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"[green]scheduler[/] {', '.join(sorted(loop.jobs)) or 'no job enabled'}")
    loop.start()
    stop.wait()
    loop.stop()
    db.dispose()
