"""``omni fulfillment …``: the sweeper (pickup expiry, refunds to retry) and batch re-planning
of open orders run once by hand (the scheduler runs both periodically), and routing an order by
hand (what the ``order.paid`` subscriber does)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from omnicommerce.platform.config import get_settings

app = typer.Typer(help="Fulfillment: sweeper, batch re-planning, routing by hand.", no_args_is_help=True)
console = Console()


@app.command("sweep")
def sweep() -> None:
    """Cancel pickups past their window (units back, orders refunded); retry returns' refunds.
    Once, now: the scheduler runs it every OMNI_PICKUP_SWEEP_SECONDS inside `omni serve`/`omni worker`."""
    from omnicommerce.fulfillment import jobs
    from omnicommerce.platform.db import Database

    settings = get_settings()
    db = Database(settings.database_url, pool_size=2)
    try:
        console.print(jobs.scheduled_sweep(db, settings))
    finally:
        db.dispose()


@app.command("route")
def route(order_id: str) -> None:
    """Route a paid order now (normally done on `order.paid`); prints its fulfillment orders."""
    from omnicommerce.fulfillment import service
    from omnicommerce.platform.db import Database, transaction
    from omnicommerce.platform.errors import DomainError

    db = Database(get_settings().database_url, pool_size=1)
    try:
        with transaction(db) as uow:
            fos = service.route_paid_order(uow, order_id)
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(2) from exc
    finally:
        db.dispose()
    for fo in fos:
        console.print(f"{fo.id}  {fo.kind:6} {fo.location_id:20} {fo.status:10} {fo.units}")
    if not fos:
        console.print("nothing to route (not paid, already cancelled, or nothing allocated)")


@app.command("reoptimize")
def reoptimize(
    channel: Annotated[str, typer.Option(help="Whose open orders (routing rules are per channel)")] = "web",
    limit: Annotated[int, typer.Option(help="At most this many open orders", min=1)] = 500,
    seconds: Annotated[float, typer.Option(help="Solver time budget", min=1)] = 30,
) -> None:
    """Re-plan the channel's routed orders no location has started on, together (batch MILP)."""
    from omnicommerce.fulfillment import jobs
    from omnicommerce.platform.db import Database

    db = Database(get_settings().database_url, pool_size=2)
    try:
        outcome = jobs.reoptimize(db, channel=channel, limit=limit, time_budget_s=seconds)
    finally:
        db.dispose()
    if outcome is None:
        console.print("[yellow]stock moved while planning; nothing changed: run again[/]")
        return
    console.print(
        f"{outcome.orders} open orders, {outcome.changed} re-planned; cost {outcome.cost:.2f}, "
        f"lower bound {outcome.bound:.2f}; {outcome.dropped_for_distance} re-planned alone (distance filter)"
    )
