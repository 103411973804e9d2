"""Staff accounts against the real databases: two admins demoting each other at the same moment
cannot leave the console without an admin."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from argon2 import PasswordHasher

from omnicommerce.platform import passwords
from omnicommerce.platform.auth import SYSTEM
from omnicommerce.platform.db import Database, transaction
from omnicommerce.platform.errors import DomainError
from omnicommerce.platform.staff import repository, service
from omnicommerce.platform.staff.domain import LastAdmin
from omnicommerce.platform.staff.schemas import StaffCreate, StaffUpdate


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    with transaction(db) as uow:
        ids = [
            service.create_staff(
                uow, SYSTEM, StaffCreate(email=f"{n}@example.com", name=n, role="admin", password="x" * 12)
            ).id
            for n in ("ada", "grace")
        ]
    # Each demotion pauses after counting the admins until the other has counted too (or 1 s passed):
    # without a lock both would count two and both go through.
    both_counted = threading.Barrier(2)
    count = repository.active_admins

    def count_then_wait(conn: Any) -> int:
        admins = count(conn)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_counted.wait(timeout=1.0)
        return admins

    monkeypatch.setattr(repository, "active_admins", count_then_wait)
    outcomes: dict[str, str] = {}

    def demote(staff_id: str) -> None:
        try:
            with transaction(db) as uow:
                service.update_staff(uow, SYSTEM, staff_id, StaffUpdate(role="analyst"))
            outcomes[staff_id] = "demoted"
        except DomainError as exc:
            outcomes[staff_id] = type(exc).__name__

    threads = [threading.Thread(target=demote, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes.values()) == sorted(["demoted", LastAdmin.__name__])
    with db.uow(readonly=True) as uow:
        roles = [service.get_staff(uow, i).role for i in ids]
    assert sorted(roles) == ["admin", "analyst"]
