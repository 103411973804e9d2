"""``omni staff …``: create, list and disable console users (the first admin comes from here)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from omnicommerce.platform.config import get_settings
from omnicommerce.platform.db import UnitOfWork

app = typer.Typer(help="Staff users of the console: create, list, disable.", no_args_is_help=True)
console = Console()
T = TypeVar("T")


def _in_transaction(work: Callable[[UnitOfWork], T]) -> T:
    """Run ``work`` in one committed unit of work; a domain error exits with its detail (code 2)."""
    from omnicommerce.platform.db import Database, transaction
    from omnicommerce.platform.errors import DomainError

    db = Database(get_settings().database_url, pool_size=1)
    try:
        with transaction(db) as uow:
            return work(uow)
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        raise typer.Exit(2) from exc
    finally:
        db.dispose()


def _read_password(from_stdin: bool) -> str:
    # Piped (scripts, CI) or asked for twice without echo; never an option: it would stay in the
    # shell history and the process list.
    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    if not password:
        console.print("[red]error:[/] no password given (type it when asked, or pipe it on stdin)")
        raise typer.Exit(2)
    return password


@app.command("create")
def create(
    email: Annotated[str, typer.Option(help="Sign-in e-mail")],
    role: Annotated[str, typer.Option(help="admin | store_associate | service_agent | marketer | analyst")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the e-mail)")] = None,
    location: Annotated[str | None, typer.Option(help="A store associate's store (e.g. store-007)")] = None,
    channel: Annotated[
        str | None, typer.Option(help="A store associate's sales channel (default: the store channel)")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
) -> None:
    """Create a staff user; the password is prompted for (or read from stdin), never an argument."""
    from pydantic import ValidationError

    from omnicommerce.api.staff import check_location
    from omnicommerce.platform.auth import SYSTEM
    from omnicommerce.platform.staff import service
    from omnicommerce.platform.staff.schemas import StaffCreate

    try:
        cmd = StaffCreate(
            email=email,
            name=name or email,
            role=role,  # validated into a Role
            password=_read_password(password_stdin),  # becomes a SecretStr
            location=location,
            channel=channel,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        console.print(f"[red]error:[/] {problems}")
        raise typer.Exit(2) from exc

    def work(uow: UnitOfWork) -> str:
        check_location(uow, cmd.location)
        return service.create_staff(uow, SYSTEM, cmd).id

    staff_id = _in_transaction(work)
    console.print(f"created {staff_id} ({cmd.role.value}{' at ' + location if location else ''})")


@app.command("list")
def list_staff(
    role: Annotated[str | None, typer.Option(help="Only this role")] = None,
    location: Annotated[str | None, typer.Option(help="Only this store")] = None,
) -> None:
    """List staff users (never their password hashes)."""
    from omnicommerce.platform.staff import service
    from omnicommerce.platform.staff.schemas import Staff

    def work(uow: UnitOfWork) -> list[Staff]:
        found: list[Staff] = []
        cursor = None
        while True:
            page = service.list_staff(uow, limit=200, cursor=cursor, role=role, location=location)
            found += page.items
            if (cursor := page.next_cursor) is None:
                return found

    table = Table("id", "email", "name", "role", "location", "channel", "active", "last sign-in")
    for s in _in_transaction(work):
        signed_in = s.last_sign_in_at.isoformat(timespec="seconds") if s.last_sign_in_at else ""
        table.add_row(
            s.id,
            s.email,
            s.name,
            s.role.value,
            s.location or "",
            s.channel or "",
            "yes" if s.active else "no",
            signed_in,
        )
    console.print(table)


@app.command("disable")
def disable(staff_id: Annotated[str, typer.Argument(help="A staff id (stf_…)")]) -> None:
    """Disable a staff user: no more sign-ins, and their tokens stop working."""
    from omnicommerce.platform.auth import SYSTEM
    from omnicommerce.platform.staff import service

    _in_transaction(lambda uow: service.disable_staff(uow, SYSTEM, staff_id))
    console.print(f"disabled {staff_id}")
