"""Staff passwords are hashed with real argon2id here too, with the cheapest parameters: the
production ones cost ~0.1-0.3 s a hash by design, and these tests hash dozens of times."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from omnicommerce.platform import passwords


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
